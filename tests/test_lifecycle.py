"""Gated retrain, evaluation, offline drift and the model card, through the CLI."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import HELD_OUT_ROWS, TRAINING_ROWS

import mlib
from cookbook.core import psi
from cookbook.core.files import sha256_file
from cookbook.core.settings import DEFAULT_MODEL_PATH
from cookbook.lifecycle import describing, evaluation, gate, modelcard, registry, scoring
from cookbook.lifecycle import drift as offline_drift
from cookbook.lifecycle.vectorized import predict_frame
from utilscli import cli

ROOT = Path(__file__).resolve().parent.parent


def invoke(model: Path, *args: str, data: Path | None = None):
    env = {"MODEL_PATH": str(model)}
    if data is not None:
        env["DATA_PATH"] = str(data)
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture(scope="module")
def shuffled_csv(tmp_path_factory, data_file) -> Path:
    """The training data with its heights shuffled: broken labels, same weights."""
    frame = pd.read_csv(data_file)
    frame["Height"] = np.random.default_rng(7).permutation(frame["Height"].to_numpy())
    path = tmp_path_factory.mktemp("shuffled") / "shuffled.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def served_template(tmp_path_factory, data_file) -> Path:
    folder = tmp_path_factory.mktemp("served")
    result = gate.retrain(data_file, folder / "model.joblib")
    assert result.promoted and result.served_version is None
    return folder


@pytest.fixture
def served(tmp_path, served_template) -> Path:
    """A served model with its registry, in a private folder."""
    shutil.copytree(served_template, tmp_path / "p")
    return tmp_path / "p" / "model.joblib"


def test_first_retrain_promotes_and_keeps_the_issue_2_report(tmp_path, data_file):
    model = tmp_path / "model.joblib"
    result = invoke(model, "retrain", "--tsize", "0.1", "--model-name", str(model),
                    "--data", str(data_file))  # fmt: skip
    assert result.exit_code == 0, result.output
    version = mlib.load_predictor(model).version
    for words in (f"Model version: {version}", "R²:", "RMSE:", "MAE:", "Promoted"):
        assert words in result.output
    assert "Nothing is served yet" in result.output
    assert registry.Registry(model).history() == [version]
    pin = json.loads((tmp_path / "models" / "golden.json").read_text())
    assert pin["source_sha256"] == sha256_file(data_file) and pin["rows"] == HELD_OUT_ROWS


def test_broken_labels_pass_their_own_rows_but_fail_the_golden_set(served, shuffled_csv):
    before = mlib.load_predictor(served).version
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(shuffled_csv))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    held_out = next(line for line in lines if line.startswith("new data, held out"))
    golden = next(line for line in lines if line.startswith("golden: held-out rows"))
    assert held_out.split()[-1] == "ok" and golden.split()[-1] == "WORSE"
    assert "was not promoted" in result.output and "--force" in result.output
    assert mlib.load_predictor(served).version == before
    candidate = result.output.split("Model version: ")[1].split()[0]
    assert candidate in {e.version for e in registry.Registry(served).entries()}
    assert registry.Registry(served).history() == [before]


def test_json_report_of_a_rejected_candidate(served, shuffled_csv):
    result = invoke(served, "retrain", "--json", "--model-name", str(served),
                    "--data", str(shuffled_csv))  # fmt: skip
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["promoted"] is False
    held_out, golden = report["comparisons"]
    assert held_out["passed"] and not golden["passed"]
    assert golden["r2_change"] < -gate.DEFAULT_TOLERANCE
    assert golden["candidate"]["rows"] == golden["served"]["rows"] == HELD_OUT_ROWS


def test_force_promotes_a_worse_candidate_and_rollback_undoes_it(served, shuffled_csv):
    before = mlib.load_predictor(served).version
    result = invoke(served, "retrain", "--force", "--model-name", str(served),
                    "--data", str(shuffled_csv))  # fmt: skip
    assert result.exit_code == 0 and "Promoted (forced)" in result.output
    assert mlib.load_predictor(served).version != before
    assert invoke(served, "models", "rollback").exit_code == 0
    assert mlib.load_predictor(served).version == before


def test_a_generous_tolerance_lets_the_candidate_through(served, shuffled_csv):
    result = invoke(served, "retrain", "--tolerance", "0.5", "--model-name", str(served),
                    "--data", str(shuffled_csv))  # fmt: skip
    assert result.exit_code == 0 and "Promoted:" in result.output


def test_a_better_candidate_is_promoted(served, data_file):
    before = mlib.load_predictor(served).version
    result = invoke(served, "retrain", "--tsize", "0.2", "--model-name", str(served),
                    "--data", str(data_file))  # fmt: skip
    assert result.exit_code == 0, result.output
    after = mlib.load_predictor(served).version
    assert after != before and registry.Registry(served).history() == [before, after]


def test_golden_file_option_compares_on_that_file(served, data_file, tmp_path, shuffled_csv):
    golden = tmp_path / "golden.csv"
    pd.read_csv(data_file).iloc[::3].to_csv(golden, index=False)
    result = invoke(served, "retrain", "--json", "--model-name", str(served), "--data",
                    str(shuffled_csv), "--golden", str(golden))  # fmt: skip
    report = json.loads(result.output)
    assert report["comparisons"][1]["rows"] == "golden.csv"
    assert report["comparisons"][1]["candidate"]["rows"] == 345
    assert result.exit_code == 1
    entry = registry.Registry(served).entry(report["model_version"])
    assert entry.metadata["metrics"]["golden"]["sha256"] == sha256_file(golden)


def test_an_edited_golden_set_is_refused(served, data_file):
    pin_file = served.parent / "models" / "golden.json"
    pin = json.loads(pin_file.read_text())
    pin["data"]["Height"][0] += 1
    pin_file.write_text(json.dumps(pin))
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(data_file))
    assert result.exit_code == 1
    assert f"The rows in {pin_file} no longer match their sha256" in result.output
    assert "pass --golden FILE" in result.output


def test_the_golden_set_needs_no_data_file_once_pinned(served, data_file, tmp_path):
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(data_file),
                    "--json", data=tmp_path / "absent.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    golden = json.loads(result.output)["comparisons"][1]
    assert golden["rows"] == "golden: held-out rows of htwtmlb.csv"
    assert golden["candidate"]["rows"] == HELD_OUT_ROWS


def test_a_changed_source_of_the_cookbooks_format_1_pin_is_refused(tmp_path, shuffled_csv,
                                                                    data_file):  # fmt: skip
    for name in ("model.joblib", "model.json"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "models", tmp_path / "models")
    served = tmp_path / "model.joblib"
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(data_file),
                    data=shuffled_csv)  # fmt: skip
    assert result.exit_code == 1
    assert "The golden set is the held-out rows of htwtmlb.csv" in result.output
    assert "pass --golden FILE" in result.output


def test_cookbook_retrain_goes_through_the_registry(tmp_path, monkeypatch, data_file):
    monkeypatch.setenv("DATA_PATH", str(data_file))
    score, name = mlib.retrain(tsize=0.1, model_name=tmp_path / "m.joblib")
    assert 0.1 < score < 0.3 and name == str(tmp_path / "m.joblib")
    version = mlib.load_predictor(tmp_path / "m.joblib").version
    assert (tmp_path / "models" / version / "model.joblib").exists()


# ------------------------------------------------------------------ evaluate


def test_evaluate_by_position(served, data_file):
    result = invoke(served, "evaluate", "--data", str(data_file), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    frame = pd.read_csv(data_file)
    predicted = predict_frame(mlib.load_predictor(served), frame)
    assert report["overall"] == pytest.approx(scoring.score(frame["Height"], predicted))
    assert report["group_by"] == "Position"
    assert set(report["by_group"]) == set(frame["Position"].str.strip())
    assert sum(m["rows"] for m in report["by_group"].values()) == len(frame)
    table = invoke(served, "evaluate", "--data", str(data_file)).output
    assert "Catcher" in table and "Starting_Pitcher" in table


def test_evaluate_without_position_and_with_a_one_row_group(served, tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("Weight,Height\n180,72\n200,74\n220,75\n")
    report = json.loads(invoke(served, "evaluate", "--data", str(plain), "--json").output)
    assert report["by_group"] is None and report["group_by"] is None
    assert report["overall"]["rows"] == 3
    single = tmp_path / "single.csv"
    single.write_text("Weight,Height,Position\n180,72,C\n200,74,P\n220,75,P\n-5,70,P\n")
    result = invoke(served, "evaluate", "--data", str(single))
    assert result.exit_code == 0, result.output
    assert "Skipped 1 row" in result.output
    catcher = next(line for line in result.output.splitlines() if line.startswith("C "))
    assert catcher.split()[2] == "n/a"  # R² of one row is undefined, not a crash


def test_evaluate_groups_by_the_column_asked_for(served, tmp_path):
    teams = tmp_path / "teams.csv"
    teams.write_text("Weight,Height,Team,Position\n180,72,A,C\n200,74,B,C\n220,75,B,P\n")
    report = evaluation.evaluate(served, teams, group_by="Team")
    assert report["group_by"] == "Team"
    assert {team: m["rows"] for team, m in report["by_group"].items()} == {"A": 1, "B": 2}
    with pytest.raises(mlib.DataError, match="League"):
        evaluation.evaluate(served, teams, group_by="League")


def test_evaluate_bad_data_is_one_line(served, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Weight\n200\n")
    result = subprocess.run(
        [sys.executable, "utilscli.py", "evaluate", "--data", str(bad)], cwd=ROOT,
        capture_output=True, text=True, env={**os.environ, "MODEL_PATH": str(served)},
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "lacks column(s) Height" in result.stderr
    assert result.stderr.strip().count("\n") == 0


# ------------------------------------------------------------------ drift


def weight_feature(metadata: dict) -> dict:
    """Return the Weight feature's entry in model.json's schema."""
    return next(f for f in metadata["schema"]["features"] if f["name"] == "Weight")


def shifted_weights(data_file: Path, tmp_path: Path, pounds: float) -> Path:
    frame = pd.read_csv(data_file)[["Weight"]]
    frame["Weight"] += pounds
    path = tmp_path / f"shift{pounds:g}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("pounds", "verdict", "code"), [(0, "ok", 0), (7, "warn", 1),
                                                          (25, "alert", 2)])  # fmt: skip
def test_drift_exit_code_follows_psi(served, data_file, tmp_path, pounds, verdict, code):
    path = shifted_weights(data_file, tmp_path, pounds)
    result = invoke(served, "drift", "--data", str(path), "--json")
    assert result.exit_code == code, result.output
    report = json.loads(result.output)
    assert report["verdict"] == verdict and report["rows"] == TRAINING_ROWS
    # The service's own helpers on the same weights give the same PSI.
    histogram = weight_feature(mlib.read_metadata(served))["histogram"]
    counts = [0] * len(histogram["counts"])
    for weight in pd.read_csv(path)["Weight"]:
        counts[psi.bin_index(weight, histogram["edges"])] += 1
    assert report["psi"] == psi.psi_from_counts(histogram["counts"], counts)
    assert psi.drift_verdict(report["psi"]) == verdict
    assert (report["ks"] > report["ks_critical_5pct"]) == (pounds >= 7)


def test_drift_human_report(served, data_file):
    result = invoke(served, "drift", "--data", str(data_file))
    assert result.exit_code == 0
    assert "PSI:" in result.output and "KS:" in result.output and "150-164" in result.output


def test_drift_rejects_bad_rows_without_aborting(served, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("Weight\n200\nheavy\n\n-3\n1e309\n210\n")
    report = json.loads(invoke(served, "drift", "--data", str(path), "--json").output)
    assert report["rows"] == 2 and report["rows_rejected"] == 3  # pandas skips the blank line


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "is missing"), ("", "is empty"), ("Height\n70\n", "has no Weight column"),
     ("Weight\nx\n", "No valid values of Weight")],
)  # fmt: skip
def test_drift_that_cannot_run_exits_3(served, tmp_path, content, words):
    path = tmp_path / "weights.csv"
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        [sys.executable, "utilscli.py", "drift", "--data", str(path)], cwd=ROOT,
        capture_output=True, text=True, env={**os.environ, "MODEL_PATH": str(served)},
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


def brute_force_ks(reference: list[float], sample: list[float]) -> float:
    points = sorted(set(reference) | set(sample))
    return max(
        abs(sum(r <= x for r in reference) / len(reference) - sum(s <= x for s in sample)
            / len(sample))
        for x in points
    )  # fmt: skip


def test_ks_statistic_matches_its_definition():
    assert offline_drift.ks_statistic([1, 2, 3], [1, 1, 1], [2, 2, 4]) == pytest.approx(1 / 3)
    rng = random.Random(3)
    for _ in range(20):
        reference = [rng.choice(range(150, 200)) for _ in range(rng.randint(1, 60))]
        sample = [rng.choice(range(140, 210)) for _ in range(rng.randint(1, 60))]
        values, counts = np.unique(reference, return_counts=True)
        assert offline_drift.ks_statistic(values, counts, sample) == pytest.approx(
            brute_force_ks(reference, sample)
        )


def test_model_json_records_the_training_ecdf(trained_model):
    metadata = mlib.read_metadata(trained_model)
    weight = weight_feature(metadata)
    ecdf = weight["ecdf"]
    assert ecdf["exact"] and sum(ecdf["counts"]) == metadata["data"]["rows_train"]
    assert ecdf["values"] == sorted(ecdf["values"])
    assert (ecdf["values"][0], ecdf["values"][-1]) == tuple(weight["training_range"])


# ------------------------------------------------------------------ card


def test_card_is_written_beside_the_model(served):
    result = invoke(served, "card")
    assert result.exit_code == 0, result.output
    card = (served.parent / "MODEL_CARD.md").read_text()
    metadata = mlib.read_metadata(served)
    for words in (
        metadata["model_version"],
        "## Intended use",
        "## Limitations",
        "extrapolation",
        "150-290 lb",
        metadata["data"]["sha256"],
        f"scikit-learn: {metadata['libraries']['scikit-learn']}",
        "Golden evaluation set",
    ):
        assert words in card
    assert invoke(served, "card", "--output", "-").output == card


def test_the_gate_still_runs_after_a_library_upgrade(served, shuffled_csv):
    """A folded served model from another scikit-learn is not unpickled: it still compares."""
    meta_file = mlib.metadata_path(served)
    metadata = json.loads(meta_file.read_text())
    metadata["libraries"]["scikit-learn"] = "0.24.2"
    meta_file.write_text(json.dumps(metadata))
    with pytest.raises(mlib.ModelError, match="0.24.2"):
        mlib.load_model(served)
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(shuffled_csv))
    assert result.exit_code == 1 and "WORSE" in result.output
    assert mlib.load_predictor(served).version == metadata["model_version"]  # still served


def test_an_unloadable_served_model_is_replaced(served, data_file):
    served.write_bytes(b"garbage")
    result = invoke(served, "retrain", "--model-name", str(served), "--data", str(data_file))
    assert result.exit_code == 0 and "cannot be loaded" in result.output
    assert mlib.load_predictor(served).version == registry.Registry(served).history()[-1]


def test_held_out_rows_are_the_rows_train_held_out(trained_model, data_file):
    rows = mlib.held_out_rows(data_file)
    recorded = mlib.read_metadata(trained_model)["metrics"]["held_out"]
    scored = scoring.score_predictor(mlib.load_predictor(trained_model), rows)
    assert scored == pytest.approx(recorded, rel=1e-12)


def test_many_distinct_training_weights_are_stored_as_quantiles():
    weights = np.random.default_rng(5).normal(200, 20, 5000)
    ecdf = describing.ecdf(weights)
    assert not ecdf["exact"] and len(ecdf["values"]) == describing.ECDF_MAX_POINTS + 1
    assert offline_drift.ks_statistic(ecdf["values"], ecdf["counts"], weights) < 0.002


def test_the_committed_model_card_describes_the_committed_model():
    # MODEL_CARD.md is committed beside the served model: retraining without
    # `python utilscli.py card` would leave it describing another model.
    committed = DEFAULT_MODEL_PATH.parent / "MODEL_CARD.md"
    expected = modelcard.render_card(mlib.verified_metadata(DEFAULT_MODEL_PATH))
    assert committed.read_text(encoding="utf-8") == expected
