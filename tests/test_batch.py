"""Batch scoring: ``cli.py --input`` through CliRunner, real subprocesses and a real terminal."""

from __future__ import annotations

import csv
import io
import math
import os
import pty
import select
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlib
from cli import predictcli
from cookbook.core.errors import InvalidInput
from cookbook.core.validation import validate_number
from cookbook.lifecycle import batch, batch_format

ROOT = Path(__file__).resolve().parent.parent  # the project, where cli.py is

HEADER = ["Weight", "height_inches", "height_human_readable", "extrapolation"]


@pytest.fixture
def predictor(trained_model):
    return mlib.load_predictor(trained_model)


@pytest.fixture
def score(trained_model, tmp_path):
    """Run ``cli.py --input FILE [args]`` on *text*; return (exit code, rows, stderr)."""

    def run(text: str, *args: str):
        source = tmp_path / "weights.csv"
        source.write_text(text)
        result = CliRunner().invoke(
            predictcli, ["--model", str(trained_model), "--input", str(source), *args]
        )
        return result.exit_code, list(csv.reader(io.StringIO(result.stdout))), result.stderr

    return run


def expected_row(predictor, text: str) -> list[str]:
    """The output row for an accepted cell: what the single-prediction path answers."""
    answer = predictor.prediction({"Weight": float(text)})
    weight = float(text)
    shown = str(int(weight)) if weight.is_integer() else repr(weight)
    flag = "true" if "warning" in answer else "false"
    return [shown, repr(answer["height_inches"]), answer["height_human_readable"], flag]


def test_scores_every_row_in_order_as_the_api_does(score, predictor):
    weights = ["250", "180", "200.0", "0.5", "1000", "77.25", "199.5", "1e2", " 190 "]
    code, rows, stderr = score("Weight\n" + "\n".join(weights) + "\n")
    assert code == 0
    assert rows[0] == HEADER
    assert rows[1:] == [expected_row(predictor, w) for w in weights]
    assert rows[2][1:3] == ["72.4", "6 foot, 0 inches"]  # the cookbook's 180 lb
    assert [row[3] for row in rows[1:5]] == ["false", "false", "false", "true"]
    assert stderr == "Scored 9 rows, rejected 0.\n"


def test_rejects_are_reported_with_line_and_reason_and_exit_3(score, predictor):
    text = "Weight\n180\n\nabc\nNaN\n-5\n1000.5\ninf\n0\n   \nNA\nTrue\n200\n"
    code, rows, stderr = score(text)
    assert code == batch.EXIT_SOME_REJECTED == 3
    assert [row[0] for row in rows[1:]] == ["180", "200"]
    lines = stderr.splitlines()
    assert lines[:-1] == [
        "line 3: Weight is empty (blank line or empty cell)",
        "line 4: Weight is not a number: 'abc'",
        "line 5: Weight must be a finite number of pounds, got nan",
        "line 6: Weight must be greater than 0 and at most 1000 lb, got -5.0",
        "line 7: Weight must be greater than 0 and at most 1000 lb, got 1000.5",
        "line 8: Weight must be a finite number of pounds, got inf",
        "line 9: Weight must be greater than 0 and at most 1000 lb, got 0.0",
        "line 10: Weight is empty (blank line or empty cell)",
        "line 11: Weight is not a number: 'NA'",
        "line 12: Weight is not a number: 'True'",
    ]
    assert lines[-1] == (
        "Scored 2 rows, rejected 10 (empty: 2, not a number: 3, not finite: 2, "
        "out of range: 3; listed above)."
    )


def test_a_chunk_of_numbers_is_validated_in_bulk_too(score):
    # Every cell parses as a number, so pandas hands back floats: the fast path.
    code, rows, stderr = score("Weight\n180\n-1\n1e400\n1001\n200\n")
    assert code == 3
    assert [row[0] for row in rows[1:]] == ["180", "200"]
    assert [line.split(":")[0] for line in stderr.splitlines()[:-1]] == [
        "line 3",
        "line 4",
        "line 5",
    ]


def test_rejects_file_holds_line_value_and_reason(score, tmp_path):
    rejects = tmp_path / "rejects.csv"
    code, rows, stderr = score("Weight\n180\nheavy\n\n2000\n", "--rejects", str(rejects))
    assert code == 3 and len(rows) == 2
    with open(rejects, newline="") as stream:
        assert list(csv.reader(stream)) == [
            ["line", "value", "reason"],
            ["3", "heavy", "Weight is not a number: 'heavy'"],
            ["4", "", "Weight is empty (blank line or empty cell)"],
            ["5", "2000", "Weight must be greater than 0 and at most 1000 lb, got 2000.0"],
        ]
    assert stderr.strip().endswith(f"listed in {rejects}).")
    assert "line 3" not in stderr


def test_an_empty_rejects_file_when_all_rows_score(score, tmp_path):
    rejects = tmp_path / "rejects.csv"
    code, _rows, _stderr = score("Weight\n180\n", "--rejects", str(rejects))
    assert code == 0 and rejects.read_text() == "line,value,reason\n"


def test_column_option_picks_the_weights_from_a_wide_file(trained_model, data_file, tmp_path):
    output = tmp_path / "predictions.csv"
    result = CliRunner().invoke(
        predictcli,
        ["--model", str(trained_model), "--input", str(data_file), "--column", "Weight",
         "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = mlib.data(data_file)
    with open(output, newline="") as stream:
        rows = list(csv.reader(stream))
    assert len(rows) == len(frame) + 1
    assert [float(row[0]) for row in rows[1:]] == frame["Weight"].tolist()
    assert result.stderr == f"Scored {len(frame):,} rows, rejected 0.\n"


def test_custom_column_name_is_kept_in_the_output(score):
    code, rows, _ = score("id,lbs\n7,180\n8,200\n", "--column", "lbs")
    assert code == 0 and rows[0][0] == "lbs" and [r[0] for r in rows[1:]] == ["180", "200"]


def test_several_chunks_keep_order_and_line_numbers(score, predictor):
    cells = [str(100 + (i % 300) + (i % 7) / 4) for i in range(10_007)]
    bad = {0: "", 999: "x", 1000: "-1", 1001: "nan", 5000: "", 10_006: "1e9"}
    for index, cell in bad.items():
        cells[index] = cell
    code, rows, stderr = score("Weight\n" + "\n".join(cells) + "\n", "--chunk-rows", "1000")
    assert code == 3
    good = [cell for i, cell in enumerate(cells) if i not in bad]
    assert rows[1:] == [expected_row(predictor, cell) for cell in good]
    reported = [int(line.split(":")[0].removeprefix("line ")) for line in stderr.splitlines()[:-1]]
    assert reported == [index + 2 for index in sorted(bad)]  # header is line 1
    assert stderr.splitlines()[-1].startswith(f"Scored {len(good):,} rows, rejected 6 ")


@pytest.mark.parametrize(
    "cell",
    ["1", "0.0001", "1000", "1000.0000000000001", "999.9999999999999", "5e-324", "1e3",
     "-0", "+180", "180.", ".5", "1_000", "0x10", "Infinity", "-inf", "nan", "true", "1,5"],
)  # fmt: skip
def test_accepts_exactly_what_validate_number_accepts(score, predictor, cell):
    try:
        validate_number(predictor.schema.feature("Weight"), float(cell))
        accepted = True
    except (ValueError, InvalidInput):  # float() or validate_number
        accepted = False
    # A chunk of that cell alone, and the same cell among text, take both parsing paths.
    for text in (f"Weight\n{cell}\n", f"Weight\n{cell}\nabc\n"):
        code, rows, _stderr = score(text.replace("1,5", '"1,5"'))
        assert (len(rows) == 2) is accepted, text
        if accepted:
            assert float(rows[1][0]) == float(cell)


def test_half_tenths_round_like_the_api(score, predictor):
    # Weights whose height lands on or near x.x5 inches, where np.rint and round() may part.
    slope, intercept = predictor.linear.coefficients["Weight"], predictor.linear.intercept
    weights = [((k + 0.5) / 10 - intercept) / slope for k in range(700, 760)]
    weights = [w for w in weights if 0 < w <= 1000]
    code, rows, _ = score("Weight\n" + "\n".join(map(repr, weights)) + "\n")
    assert code == 0
    assert rows[1:] == [expected_row(predictor, repr(w)) for w in weights]


def test_header_only_scores_nothing_and_exits_0(score):
    code, rows, stderr = score("Weight\n")
    assert code == 0 and rows == [HEADER] and "Scored 0 rows" in stderr


def run_cli(*args: str, env: dict[str, str], stdin: bytes | None = None):
    return subprocess.run(
        [sys.executable, "cli.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def model_env(trained_model):
    return {"MODEL_PATH": str(trained_model)}


def test_stdin_to_stdout_with_dashes(model_env):
    result = run_cli("--input", "-", "--output", "-", env=model_env, stdin=b"Weight\n180\n\n200\n")
    assert result.returncode == 3
    assert result.stdout.decode().splitlines() == [
        ",".join(HEADER),
        '180,72.4,"6 foot, 0 inches",false',
        '200,73.6,"6 foot, 2 inches",false',
    ]
    assert result.stderr.decode().splitlines()[0] == (
        "line 3: Weight is empty (blank line or empty cell)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"Name,Height\nx,74\n", "Error: Input has no column 'Weight' (its columns: 'Name', "
                                 "'Height'); choose one with --column."),
        (b"", "Error: Input is empty: expected a header line with a 'Weight' column."),
    ],
)  # fmt: skip
def test_an_unusable_input_is_one_line_and_leaves_no_output(model_env, tmp_path, text, message):
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(text)
    output.write_text("previous predictions\n")
    rejects = tmp_path / "rejects.csv"
    result = run_cli("--input", str(source), "--output", str(output), "--rejects", str(rejects),
                     env=model_env)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [message]
    assert output.read_text() == "previous predictions\n"  # replaced atomically or not at all
    assert not rejects.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--input", "-", "--weight", "180"], "either --weight/--set or --input"),
        (["--input", "-", "--set", "Weight=180"], "either --weight/--set or --input"),
        (["--input", "-", "--json"], "--json is for a single --weight"),
        (["--weight", "180", "--column", "lbs"], "--column only applies with --input"),
        (["--input", "missing.csv"], "does not exist"),
        (["--input", "-", "--chunk-rows", "0"], "--chunk-rows"),
    ],
)
def test_option_mixes_that_mean_nothing_are_usage_errors(model_env, args, words):
    result = run_cli(*args, env=model_env, stdin=b"Weight\n180\n")
    assert result.returncode == 2 and words in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_progress_bar_only_on_a_terminal(model_env, tmp_path):
    source = tmp_path / "weights.csv"
    source.write_text("Weight\n" + "180\n" * 5000)
    piped = run_cli("--input", str(source), "--output", str(tmp_path / "out.csv"), env=model_env)
    assert piped.stderr.decode() == "Scored 5,000 rows, rejected 0.\n"

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "cli.py", "--input", str(source), "--output", str(tmp_path / "tty.csv"),
         "--chunk-rows", "1000"],
        cwd=ROOT, env={**os.environ, **model_env}, stderr=follower, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        try:
            chunk = os.read(leader, 4096) if ready else b""
        except OSError:  # the terminal closes when the child exits
            chunk = b""
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    assert b"Scoring" in seen and b"100%" in seen
    assert b"Scored 5,000 rows, rejected 0." in seen


def test_formatter_matches_single_predictions_over_the_whole_range(predictor):
    weights = [w / 8 for w in range(1, 8001)]
    lines = batch_format.ChunkFormatter(predictor).format(
        {"Weight": __import__("numpy").array(weights)}
    )
    rows = list(csv.reader(io.StringIO(lines.decode())))
    assert rows == [expected_row(predictor, repr(w)) for w in weights]
    assert not any(math.isnan(float(row[1])) for row in rows)


def test_output_to_a_fifo_is_written_in_place_not_renamed_over(model_env, tmp_path):
    # The same rule keeps --output /dev/null a device: only regular files are replaced.
    fifo = tmp_path / "predictions.fifo"
    os.mkfifo(fifo)
    source = tmp_path / "weights.csv"
    source.write_text("Weight\n180\n")
    process = subprocess.Popen(
        [sys.executable, "cli.py", "--input", str(source), "--output", str(fifo)],
        cwd=ROOT, env={**os.environ, **model_env}, stderr=subprocess.PIPE,
    )  # fmt: skip
    with open(fifo, "rb") as reader:
        received = reader.read()
    assert process.wait(timeout=60) == 0
    process.stderr.close()
    assert received.decode().splitlines()[1] == '180,72.4,"6 foot, 0 inches",false'
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.fifo", "weights.csv"]


def test_output_through_a_symlink_replaces_the_target(score, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, _rows, _ = score("Weight\n180\n", "--output", str(link))
    assert code == 0 and link.is_symlink()
    assert target.read_text().splitlines()[1] == '180,72.4,"6 foot, 0 inches",false'


def test_a_reader_that_stops_early_ends_the_run_quietly(model_env, tmp_path):
    source = tmp_path / "weights.csv"
    source.write_text("Weight\n" + "180\n" * 300_000)  # ~10 MB out: more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "cli.py", "--input", str(source)],
        cwd=ROOT, env={**os.environ, **model_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout.readline().decode() == ",".join(HEADER) + "\n"
    process.stdout.close()  # like `| head -1`
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == batch.EXIT_BROKEN_PIPE == 141
    assert stderr == b""


def test_a_repeated_column_name_scores_the_first_one(score):
    code, rows, _ = score("Weight,Weight\n180,1\n200,2\n")
    assert code == 0 and [row[0] for row in rows[1:]] == ["180", "200"]


def test_an_output_folder_that_does_not_exist_is_one_line(score, tmp_path):
    missing = tmp_path / "nowhere" / "predictions.csv"
    code, rows, stderr = score("Weight\n180\n", "--output", str(missing))
    assert code == 1 and rows == []
    assert stderr.startswith(f"Error: Cannot write {missing}: No such file or directory")
    assert len(stderr.strip().splitlines()) == 1


def test_weight_texts_are_the_shortest_exact_form(predictor):
    import numpy as np

    formatter = batch_format.ChunkFormatter(predictor)
    weights = np.array([k / 100 for k in range(1, 100_001)] + [0.001, 180.125, 1 / 3, 999.999])
    texts = [text.decode() for text in formatter.weight_texts(weights)]
    expected = [str(int(w)) if w.is_integer() else repr(w) for w in weights.tolist()]
    assert texts == expected


def test_both_parsing_paths_read_numbers_exactly_as_float_does(predictor):
    import numpy as np
    import pandas as pd

    values = np.random.default_rng(7).uniform(0, 1000, 3000).tolist()
    texts = (
        [repr(v) for v in values] + [f"{v:.20f}" for v in values] + [f"{v:.25e}" for v in values]
    )
    texts += ["1000.0000000000001", "1000.00000000000005", "1000.00000000000006", "5e-324"]
    expected = np.array([float(text) for text in texts])
    feature = predictor.schema.feature("Weight")
    for extra in ([], ["abc"]):  # all numbers: pandas' C parser; with text: to_numeric
        frame = pd.read_csv(io.StringIO("Weight\n" + "\n".join(texts + extra) + "\n"))
        weights, _rejects = batch.parse_numbers(frame["Weight"].to_numpy(), feature, "Weight", 2)
        valid = (expected > 0) & (expected <= 1000)
        assert np.array_equal(weights[: len(texts)][valid], expected[valid])
        assert np.isnan(weights[: len(texts)][~valid]).all()


def test_csv_lines_equal_the_csv_module_whatever_the_columns_repeat():
    import numpy as np

    from cookbook.lifecycle.csv_lines import answer_text, csv_lines, number_text

    rng = np.random.default_rng(3)
    rows = 5_000
    weights = rng.integers(150, 160, rows).astype(float)  # few: merged with what follows
    ages = rng.uniform(20, 40, rows)  # nearly all distinct: a piece of its own
    teams = rng.choice(np.array(["a,b", 'say "hi"', "plain", "two\nlines"], dtype=object), rows)
    flags = weights > 155
    columns = [(weights, number_text), (ages, number_text), (teams, str), (flags, answer_text)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    table = zip(weights.tolist(), ages.tolist(), teams.tolist(), flags.tolist(), strict=True)
    for w, a, t, f in table:
        writer.writerow([str(int(w)), repr(a), t, "true" if f else "false"])
    assert csv_lines(columns, rows).decode() == buffer.getvalue()
    assert csv_lines(columns, 0) == b""
