"""Golden sets for every model: a first version pins its own rows in its registry, and
`retrain` and `ct --golden` gate a model that is not the cookbook's without htwtmlb.csv."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run_script

from cookbook.lifecycle import gate, registry
from utilscli import cli

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def invoke(model: Path, *args: str, data: Path):
    # DATA_PATH names a file that is not there: nothing may fall back on the MLB data.
    env = {"MODEL_PATH": str(model), "DATA_PATH": str(data.parent / "no-such.csv")}
    return CliRunner().invoke(cli, list(args), env=env)


def retrain_args(model: Path, data: Path, *extra: str) -> list[str]:
    return ["retrain", "--data", str(data), "--target", "target", "--features",
            ",".join(FEATURES), "--model-name", str(model), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_diabetes

    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.fixture
def served(tmp_path, diabetes_csv) -> Path:
    model = tmp_path / "served" / "model.joblib"
    result = invoke(model, *retrain_args(model, diabetes_csv), data=diabetes_csv)
    assert result.exit_code == 0, result.output
    return model


def test_a_first_retrain_pins_its_own_held_out_rows(served, diabetes_csv):
    pin = json.loads((served.parent / "models" / "golden.json").read_text())
    assert pin["kind"] == "held_out" and pin["source_file"] == "diabetes.csv"
    assert pin["columns"] == [*FEATURES, "target"] and pin["rows"] == 45  # 10% of 442
    metadata = json.loads(served.with_suffix(".json").read_text())
    assert metadata["metrics"]["golden"]["rows"] == 45
    assert metadata["golden_set"]["kind"] == "held_out"


def test_retrain_of_another_model_is_gated_on_its_own_golden_set(served, diabetes_csv):
    result = invoke(served, *retrain_args(served, diabetes_csv, "--tsize", "0.2", "--json"),
                    data=diabetes_csv)  # fmt: skip
    report = json.loads(result.output)
    assert result.exit_code in (0, 1), result.output
    held_out, golden = report["comparisons"]
    assert golden["rows"] == "golden: held-out rows of diabetes.csv"
    assert golden["candidate"]["rows"] == golden["served"]["rows"] == 45
    assert report["promoted"] == (held_out["passed"] and golden["passed"])


def test_a_golden_file_without_the_models_columns_is_named(served, diabetes_csv, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("age,target\n0.1,100\n0.2,120\n")
    result = invoke(served, *retrain_args(served, diabetes_csv, "--golden", str(other)),
                    data=diabetes_csv)  # fmt: skip
    assert result.exit_code == 1
    assert f"Golden set {other} lacks column(s) sex, bmi" in result.output
    assert "htwtmlb" not in result.output and "Training data" not in result.output


def test_a_pin_of_other_columns_refuses_a_gated_retrain(served, tmp_path):
    pin = served.parent / "models" / "golden.json"
    frame = gate.load_golden(registry.Registry(served), spec=_spec()).frame
    frame.rename(columns={"age": "years"}).to_csv(tmp_path / "renamed.csv", index=False)
    renamed = tmp_path / "renamed.csv"
    args = ["retrain", "--data", str(renamed), "--target", "target", "--features",
            ",".join(("years", *FEATURES[1:])), "--model-name", str(served)]  # fmt: skip
    result = invoke(served, *args, data=renamed)
    assert result.exit_code == 1 and "give another --model-name, or --force" in result.output
    forced = invoke(served, *args, "--force", data=renamed)
    assert forced.exit_code == 0, forced.output
    assert f"Golden set replaced: The golden set pinned in {pin}" in forced.output
    assert json.loads(pin.read_text())["columns"][0] == "years"


def _spec():
    from cookbook.lifecycle.model_spec import ModelSpec

    return ModelSpec("target", FEATURES)


def test_ct_retrains_another_model_on_its_pinned_golden_set(served, diabetes_csv, tmp_path):
    import pandas as pd

    new = tmp_path / "new.csv"
    pd.read_csv(diabetes_csv).iloc[::-1].to_csv(new, index=False)  # the same rows, reordered
    env = {"MODEL_PATH": str(served), "DATA_PATH": str(tmp_path / "no-such.csv")}
    pr_file = tmp_path / "pr.md"
    result = run_script("utilscli.py", "ct", "--data-url", new.as_uri(), "--pr-file",
                        str(pr_file), env=env)  # fmt: skip
    assert result.returncode in (0, 4), result.stderr
    assert "golden: held-out rows of diabetes.csv" in result.stdout


def test_ct_golden_compares_on_that_file(served, diabetes_csv, tmp_path):
    import pandas as pd

    frame = pd.read_csv(diabetes_csv)
    new, golden = tmp_path / "new.csv", tmp_path / "golden-rows.csv"
    frame.iloc[::-1].to_csv(new, index=False)
    frame.iloc[::4].to_csv(golden, index=False)
    env = {"MODEL_PATH": str(served), "DATA_PATH": str(tmp_path / "no-such.csv")}
    result = run_script("utilscli.py", "ct", "--data-url", new.as_uri(), "--golden", str(golden),
                        "--pr-file", str(tmp_path / "pr.md"), env=env)  # fmt: skip
    assert result.returncode in (0, 4), result.stderr
    line = next(row for row in result.stdout.splitlines() if "golden-rows.csv" in row)
    assert line.split()[1] == "111"  # every row of the file: 442 / 4, rounded up


def test_the_card_says_what_the_golden_set_is(served):
    result = invoke(served, "card", "--output", "-", data=served)
    assert result.exit_code == 0, result.output
    assert "golden set: the held-out rows pinned with the model's first version" in result.output


def test_a_format_1_pin_of_any_columns_is_rebuilt_with_the_models_columns(tmp_path, data_file):
    """A format-1 pin names the split and the rows' sha256, not the columns: the rows rebuilt
    with the model's own columns are proven by that sha256, whichever columns they are."""
    from cookbook.lifecycle.model_spec import DEFAULT_SPEC, spec_for
    from cookbook.lifecycle.training import held_out_rows

    spec = spec_for("Height", ["Weight"], ["Position"])
    rows = held_out_rows(data_file, spec, test_size=0.1, random_state=3)
    root = tmp_path / "models"
    root.mkdir()
    (root / "golden.json").write_text(json.dumps({
        "kind": "held_out", "source_file": data_file.name,
        "source_sha256": hashlib.sha256(data_file.read_bytes()).hexdigest(),
        "test_size": 0.1, "random_state": 3, "rows": len(rows),
        "rows_sha256": gate.rows_sha256(rows, spec.columns), "pinned_at": "2026-12-01T00:00:00",
    }))  # fmt: skip
    pinned = registry.Registry(tmp_path / "model.joblib")
    golden = gate.load_golden(pinned, source=data_file, spec=spec)
    assert golden.sha256 == gate.rows_sha256(rows, spec.columns) and len(golden.frame) == 104
    with pytest.raises(gate.GateError, match="were other columns pinned"):
        gate.load_golden(pinned, source=data_file, spec=DEFAULT_SPEC)
