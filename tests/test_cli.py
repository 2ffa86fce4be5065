"""cli.py and utilscli.py through CliRunner and as real subprocesses."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import ANSWER_200_LBS, run_script

import mlib
from cli import predictcli
from utilscli import cli


@pytest.fixture
def model_env(trained_model, monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(trained_model))
    return {"MODEL_PATH": str(trained_model)}


def test_cli_prints_the_height_in_colour(model_env):
    result = CliRunner().invoke(predictcli, ["--weight", "180"], color=True)
    assert result.exit_code == 0
    assert "6 foot, 0 inches" in result.output
    assert "\x1b[41m" in result.output  # red background: not taller than 72 inches


def test_cli_is_green_when_taller_than_72_inches(model_env):
    result = CliRunner().invoke(predictcli, ["--weight", "200"], color=True)
    assert "6 foot, 2 inches" in result.output and "\x1b[42m" in result.output


def test_cli_prompts_for_a_missing_weight(model_env):
    result = CliRunner().invoke(predictcli, [], input="180\n")
    assert result.exit_code == 0
    # The prompt names the model's only feature (from its schema, not a literal).
    assert "Weight" in result.output and "6 foot, 0 inches" in result.output


def test_cli_json(model_env):
    result = CliRunner().invoke(predictcli, ["--weight", "200", "--json"])
    assert json.loads(result.output) == ANSWER_200_LBS


@pytest.mark.parametrize("weight", ["abc", "nan", "inf", "-5", "0", "1001"])
def test_cli_rejects_bad_weights_in_one_line(model_env, weight):
    result = run_script("cli.py", "--weight", weight, env=model_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error: Invalid value for '--weight'" in result.stderr


def test_cli_subprocess_end_to_end(model_env):
    result = run_script("cli.py", "--weight", "180", env=model_env)
    assert result.returncode == 0 and result.stdout.strip() == "6 foot, 0 inches"


def test_cli_subprocess_prompt(model_env):
    result = run_script("cli.py", env=model_env, stdin="250\n")
    assert result.returncode == 0 and "6 foot, 5 inches" in result.stdout


@pytest.mark.parametrize("fault", ["missing", "tampered"])
def test_cli_refuses_a_broken_model_without_a_traceback(model_copy, fault):
    if fault == "missing":
        model_copy.unlink()
    else:
        model_copy.write_bytes(b"tampered")
    result = run_script("cli.py", "--weight", "180", env={"MODEL_PATH": str(model_copy)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: Model file")


def test_single_prediction_imports_neither_sklearn_nor_pandas(model_env):
    heavy = ("sklearn", "pandas", "numpy", "joblib", "requests", "flask")
    code = (
        "import sys, runpy; sys.argv = ['cli.py', '--weight', '180'];\n"
        "try: runpy.run_path('cli.py', run_name='__main__')\n"
        "except SystemExit: pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = run_script("-c", code, env=model_env)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_utilscli_does_not_load_the_cli_script():
    code = "import sys, utilscli; print('cli' in sys.modules)"
    result = run_script("-c", code, env={})
    assert result.returncode == 0 and result.stdout.strip() == "False"


def test_utilscli_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and mlib.__version__ in result.output


def test_retrain_into_a_temporary_folder(tmp_path, data_file):
    target = tmp_path / "fresh.joblib"
    result = CliRunner().invoke(
        cli, ["retrain", "--tsize", "0.2", "--model-name", str(target), "--data", str(data_file)]
    )
    assert result.exit_code == 0, result.output
    metadata = mlib.read_metadata(target)
    assert metadata["model_version"] in result.output
    for label in ("R²", "RMSE", "MAE"):
        assert label in result.output
    assert metadata["hyperparameters"]["test_size"] == 0.2


def test_retrain_json_report(tmp_path, data_file):
    target = tmp_path / "m.joblib"
    result = CliRunner().invoke(
        cli, ["retrain", "--json", "--model-name", str(target), "--data", str(data_file)]
    )
    report = json.loads(result.output)
    assert set(report) >= {"model_version", "r2", "rmse", "mae"}


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--tsize", "1.5"], "--tsize"), (["--data", "nowhere.csv"], "does not exist")],
)
def test_retrain_rejects_bad_options(tmp_path, args, words):
    result = run_script("utilscli.py", "retrain", "--model-name", str(tmp_path / "m.joblib"),
                        *args, env={})  # fmt: skip
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.joblib").exists()


def test_retrain_on_bad_data_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Weight,Age\n1,2\n")
    result = run_script("utilscli.py", "retrain", "--data", str(bad),
                        "--model-name", str(tmp_path / "m.joblib"), env={})  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "lacks column(s) Height" in result.stderr
