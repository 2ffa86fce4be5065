"""``utilscli.py score``: CSV and Parquet files scored on a real Dask cluster of two processes."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from helpers import ROOT, break_model, run_script

import mlib
from app import create_app
from cookbook.lifecycle import distributed_scoring

POSITION_MODEL = ROOT / "examples" / "height-by-position" / "model.joblib"
GBM_MODEL = ROOT / "examples" / "height-gbm" / "model.joblib"  # served from its ONNX form
ANSWER_COLUMNS = ["height_inches", "height_human_readable", "extrapolation"]
# Every kind of bad cell cli.py --input rejects, between two good rows (and a blank line).
BAD_ROWS_CSV = (
    "id,Weight\n1,180\n\n3,abc\n4,NaN\n5,-5\n6,1000.5\n7,inf\n8,0\n9,   \n10,NA\n11,True\n12,200\n"
)


@pytest.fixture
def score(dask_client, trained_model):
    """Run ``utilscli.py score ARGS --scheduler <the cluster>`` with a model (default: trained)."""

    def run(*args: str, model=trained_model, scheduler: bool = True):
        where = ["--scheduler", dask_client.scheduler.address] if scheduler else []
        return run_script("utilscli.py", "score", *args, *where, env={"MODEL_PATH": str(model)})

    return run


def read_parts(folder, output_format: str = "parquet") -> pd.DataFrame:
    """Return every part file in *folder*, in order, as one frame (CSV cells as text)."""
    files = sorted(folder.glob(f"part-*.{output_format}"))
    assert files, f"no part files in {folder}"
    if output_format == "parquet":
        frames = [pd.read_parquet(path) for path in files]
    else:
        frames = [pd.read_csv(path, dtype=str, keep_default_na=False) for path in files]
    return pd.concat(frames, ignore_index=True)


def api_answers(model_file, rows: dict[str, list]) -> list[dict]:
    """Return what ``POST /predict`` answers for a batch of *rows* (one list per feature)."""
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    response = client.post("/predict", json=rows)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["predictions"]


def assert_scored_as_the_api(frame: pd.DataFrame, model_file, features: list[str]) -> None:
    """Assert that *frame*'s answer columns are exactly what /predict answers for its rows."""
    answers = api_answers(model_file, {name: frame[name].tolist() for name in features})
    assert frame["height_inches"].tolist() == [a["height_inches"] for a in answers]
    assert frame["height_human_readable"].tolist() == [a["height_human_readable"] for a in answers]
    assert frame["extrapolation"].tolist() == ["warning" in a for a in answers]


def cli_rejects(model_file, source, tmp_path) -> tuple[list[list[str]], str]:
    """Return ``cli.py --input``'s rejects (line, value, reason) for *source*, and its summary."""
    rejects = tmp_path / "cli-rejects.csv"
    result = run_script("cli.py", "--model", str(model_file), "--input", str(source),
                        "--output", str(tmp_path / "cli-out.csv"), "--rejects", str(rejects),
                        env={})  # fmt: skip
    assert result.returncode == 3, result.stderr
    with open(rejects, newline="") as stream:
        return list(csv.reader(stream))[1:], result.stderr.splitlines()[-1]


def test_a_folder_of_csv_and_parquet_keeps_every_column_and_adds_the_answers(score, trained_model,
                                                                             tmp_path):  # fmt: skip
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.csv").write_text("id,Weight,team\n007,180,NYY\n008,250.5,BOS\n")
    pd.DataFrame({"id": [1, 2, 3], "Weight": [200, 140, 300], "team": ["LAD", "SF", "SD"]}
                 ).to_parquet(source / "b.parquet")  # fmt: skip
    (source / "notes.txt").write_text("not scored: a folder gives its .csv and .parquet files")
    output = tmp_path / "scored"

    result = score("--input", str(source), "--output", str(output))

    assert result.returncode == 0, result.stderr
    assert result.stderr == f"Scored 5 rows, rejected 0; output in {output}.\n"
    assert sorted(p.name for p in output.iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "rejects",
    ]  # fmt: skip
    assert list((output / "rejects").iterdir()) == []
    from_csv = pd.read_parquet(output / "part-00000.parquet")
    from_parquet = pd.read_parquet(output / "part-00001.parquet")
    assert list(from_csv.columns) == ["id", "Weight", "team", *ANSWER_COLUMNS]
    assert from_csv["id"].tolist() == ["007", "008"]  # a CSV's cells as written, not inferred
    assert from_csv["Weight"].tolist() == [180.0, 250.5]  # the numbers scored
    assert from_parquet["id"].tolist() == [1, 2, 3]  # a Parquet file's types kept
    assert from_parquet["team"].tolist() == ["LAD", "SF", "SD"]
    both = pd.concat([from_csv, from_parquet], ignore_index=True)
    assert_scored_as_the_api(both, trained_model, ["Weight"])
    assert both["extrapolation"].tolist() == [False, False, False, True, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "scored"]  # no staging left


def test_a_glob_scores_only_its_files_into_csv_parts(score, trained_model, tmp_path):
    (tmp_path / "day-1.csv").write_text('Weight,note\n180,a\n200,"b, c"\n')
    (tmp_path / "day-2.csv").write_text("Weight,note\n250,d\n")
    (tmp_path / "other.csv").write_text("Name\nnot matched by the glob\n")
    output = tmp_path / "scored"

    result = score("--input", str(tmp_path / "day-*.csv"), "--output", str(output),
                   "--format", "csv")  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in output.iterdir()) == ["part-00000.csv", "part-00001.csv",
                                                        "rejects"]  # fmt: skip
    assert (output / "part-00000.csv").read_text() == (
        "Weight,note,height_inches,height_human_readable,extrapolation\n"
        '180.0,a,72.4,"6 foot, 0 inches",false\n'
        '200.0,"b, c",73.6,"6 foot, 2 inches",false\n'
    )
    frame = read_parts(output, "csv")
    assert frame["note"].tolist() == ["a", "b, c", "d"]
    answers = api_answers(trained_model, {"Weight": [180, 200, 250]})
    assert frame["height_inches"].tolist() == [repr(a["height_inches"]) for a in answers]
    assert frame["height_human_readable"].tolist() == [a["height_human_readable"] for a in answers]


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_rejected_rows_keep_their_columns_and_cli_reasons(score, trained_model, tmp_path,
                                                          output_format):  # fmt: skip
    source = tmp_path / "players.csv"
    source.write_text(BAD_ROWS_CSV)
    output = tmp_path / "scored"

    result = score("--input", str(source), "--output", str(output), "--format", output_format)

    assert result.returncode == 3, result.stderr
    expected, cli_summary = cli_rejects(trained_model, source, tmp_path)
    kinds = cli_summary[cli_summary.index("(") + 1 : cli_summary.index(";")]
    assert result.stderr == f"Scored 2 rows, rejected 10 ({kinds}); output in {output}.\n"
    assert kinds == "empty: 2, not a number: 3, not finite: 2, out of range: 3"
    rejects = read_parts(output / "rejects", output_format)
    assert list(rejects.columns) == ["id", "Weight", "reason"]
    assert rejects["reason"].tolist() == [reason for _line, _value, reason in expected]
    weights = rejects["Weight"].fillna("").tolist()  # an empty cell is missing in Parquet
    assert weights == [value for _line, value, _reason in expected]
    assert rejects["id"].fillna("").tolist() == ["", *map(str, range(3, 12))]  # line 3: blank
    scored = read_parts(output, output_format)
    assert scored["id"].tolist() == ["1", "12"]


def test_scores_equal_the_api_answers_for_a_sample(score, trained_model, data_file, tmp_path):
    weights = mlib.data(data_file)["Weight"].sample(500, random_state=7).tolist()
    weights += [0.5, 120.25, 149.9, 290.1, 999.99, 1000]  # extrapolations at both ends
    source = tmp_path / "sample.parquet"
    pd.DataFrame({"Weight": weights}).to_parquet(source)
    output = tmp_path / "scored"

    result = score("--input", str(source), "--output", str(output))

    assert result.returncode == 0, result.stderr
    frame = read_parts(output)
    assert frame["Weight"].tolist() == weights
    assert_scored_as_the_api(frame, trained_model, ["Weight"])


@pytest.mark.parametrize(
    "model, features",
    [(POSITION_MODEL, ["Weight", "Position"]), (GBM_MODEL, ["Weight", "Age", "Position"])],
    ids=["ridge", "gradient-boosting"],
)
def test_a_model_with_a_categorical_feature(score, tmp_path, model, features):
    source = tmp_path / "players.csv"
    source.write_text("Weight,Age,Position,name\n200,28.5,Catcher,a\n180,24,Shortstop,b\n"
                      "300,30,Pitcher,c\n,27,Catcher,d\n240,33.1,Relief_Pitcher,e\n")  # fmt: skip
    output = tmp_path / "scored"

    result = score("--input", str(source), "--output", str(output), model=model)

    assert result.returncode == 3, result.stderr
    frame = read_parts(output)
    assert list(frame.columns) == ["Weight", "Age", "Position", "name", *ANSWER_COLUMNS]
    assert frame["name"].tolist() == ["a", "b", "e"]
    assert_scored_as_the_api(frame, model, features)
    expected, _summary = cli_rejects(model, source, tmp_path)
    rejects = read_parts(output / "rejects")
    assert rejects["reason"].tolist() == [reason for _line, _value, reason in expected]
    assert rejects["name"].tolist() == ["c", "d"]


@pytest.mark.parametrize("case", ["no such column", "no input files", "unreadable model",
                                  "output not empty"])  # fmt: skip
def test_nothing_scored_is_exit_1_with_one_line_and_no_output(score, model_copy, tmp_path, case):
    source = tmp_path / "in.csv"
    source.write_text("Weight\n180\n")
    output = tmp_path / "scored"
    args, model = ["--input", str(source), "--output", str(output)], model_copy
    if case == "no such column":
        source.write_text("Name,Height\nx,74\n")
        message = (f"Error: {source}: Input has no column 'Weight' (its columns: 'Name', "
                   "'Height'); the model's features are 'Weight'.")  # fmt: skip
    elif case == "no input files":
        args[1] = str(tmp_path / "nothing-*.parquet")
        message = f"Error: No .csv or .parquet files match {args[1]}."
    elif case == "unreadable model":
        model = break_model(model_copy, "tampered")
        message = f"Error: Model file {model} does not match its metadata (sha256 "
    else:
        output.mkdir()
        (output / "earlier.parquet").write_text("an earlier run's")
        message = (
            f"Error: {output} already exists and is not empty: give a new folder, or remove it."
        )
    before = sorted(p.name for p in tmp_path.iterdir())

    result = score(*args, model=model)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no staging folder
    if case == "output not empty":
        assert [p.name for p in output.iterdir()] == ["earlier.parquet"]


def test_a_run_that_fails_midway_leaves_no_output_and_no_staging(score, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for day in range(3):
        (source / f"day-{day}.csv").write_text("Weight\n" + "180\n200\n" * 1000)
    (source / "day-3.csv").write_text('Weight\n180\n"200\n')  # a quote that never closes

    result = score("--input", str(source), "--output", str(tmp_path / "scored"))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {source / 'day-3.csv'}: Input is not a readable CSV file: Error tokenizing "
        "data. C error: EOF inside string starting at row 1"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--output", "scored"], "Missing option '--input'"),
        (["--input", "in.csv"], "Missing option '--output'"),
        (["--input", "in.csv", "--output", "scored", "--workers", "0"], "--workers"),
        (["--input", "in.csv", "--output", "scored", "--format", "xml"], "--format"),
        (["--input", "in.csv", "--output", "scored", "--workers", "2", "--scheduler",
          "tcp://127.0.0.1:8786"], "--workers is for the local cluster"),
    ],
)  # fmt: skip
def test_usage_errors_are_exit_2(score, args, words):
    result = score(*args, scheduler=False)
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_scheduler_a_local_cluster_scores(score, trained_model, tmp_path):
    source = tmp_path / "players.csv"
    source.write_text("Weight\n180\nabc\n200\n")
    output = tmp_path / "scored"

    result = score("--input", str(source), "--output", str(output), "--workers", "2",
                   scheduler=False)  # fmt: skip

    assert result.returncode == 3, result.stderr
    assert result.stderr == (f"Scored 2 rows, rejected 1 (not a number: 1); output in {output}.\n")
    assert read_parts(output)["Weight"].tolist() == [180.0, 200.0]
    assert read_parts(output / "rejects")["Weight"].tolist() == ["abc"]


def test_large_parquet_files_are_split_and_each_worker_loads_the_model_once(dask_client,
                                                                            trained_model,
                                                                            tmp_path):  # fmt: skip
    source = tmp_path / "in"
    source.mkdir()
    for index in range(3):
        weights = [150.0 + (index * 250 + row) % 140 for row in range(250)]
        frame = pd.DataFrame({"row": range(index * 250, (index + 1) * 250), "Weight": weights})
        frame.to_parquet(source / f"part-{index}.parquet", row_group_size=50)
    predictor = mlib.load_predictor(trained_model)
    partitions = distributed_scoring.plan_partitions(
        distributed_scoring.find_inputs(str(source)), predictor.schema, partition_rows=100
    )
    assert [p.row_groups for p in partitions[:3]] == [(0, 1), (2, 3), (4,)]
    output = tmp_path / "scored"

    report = distributed_scoring.score_on(dask_client, partitions, predictor, output)

    assert (report.scored, report.rejected) == (750, 0)
    assert read_parts(output)["row"].tolist() == list(range(750))  # input order, part by part
    loads = dask_client.run(distributed_scoring.model_loads)
    assert len(loads) == 2
    assert all(counts[str(trained_model.resolve())] == 1 for counts in loads.values())
