"""The worked example ``examples/pitcher-classifier``: a binary classifier of the MLB data,
served through MODEL_PATH as any model is, and reproduced by its README's own commands."""

from __future__ import annotations

import json
import math
import re
import shlex

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import ROOT, run_script, same_fit

import mlib
from app import create_app
from cookbook.core.files import sha256_file
from cookbook.lifecycle import modelcard
from cookbook.lifecycle.artifacts import load_estimator
from cookbook.lifecycle.card_pictures import picture_paths
from utilscli import cli

EXAMPLE = ROOT / "examples" / "pitcher-classifier"
MODEL = EXAMPLE / "model.joblib"
FEATURES = ["Height", "Weight", "Age"]
ROW = {"Height": 76, "Weight": 210, "Age": 27}


def readme_commands() -> list[list[str]]:
    """Return the README's shell commands, each split into its words."""
    text = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]


def retrain_arguments() -> list[str]:
    """Return the README's ``utilscli.py retrain`` command, from ``retrain`` on."""
    for words in readme_commands():
        if "utilscli.py" in words and words[words.index("utilscli.py") + 1] == "retrain":
            return words[words.index("utilscli.py") + 1 :]
    raise AssertionError("the README has no utilscli.py retrain command")


def replaced(args: list[str], **values: str) -> list[str]:
    """Return *args* with each ``--option``'s value replaced by ``values["option"]``."""
    args = list(args)
    for option, value in values.items():
        args[args.index(f"--{option.replace('_', '-')}") + 1] = value
    return args


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(MODEL))
    return create_app().test_client()


def test_the_example_answers_a_label_its_probabilities_and_its_set(client):
    metadata = mlib.verified_metadata(MODEL)
    response = client.post("/predict", json=ROW)
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-Model-Version"] == metadata["model_version"]
    answer = response.get_json()["prediction"]
    probabilities = answer["probabilities"]
    assert list(probabilities) == ["no", "yes"]
    own = load_estimator(MODEL).predict_proba(pd.DataFrame([ROW]))[0]
    assert [probabilities["no"], probabilities["yes"]] == pytest.approx(own, abs=1e-9)
    assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-6)
    assert answer["label"] == ("yes" if probabilities["yes"] >= 0.5 else "no")
    floor = 1 - metadata["prediction_set"]["quantile"]
    assert answer["set"] == [c for c in ("yes", "no") if probabilities[c] >= floor]
    assert answer["set_coverage"] == 0.9
    # A stricter threshold on the positive class (yes) turns this pitcher's answer to no.
    strict = client.post("/predict?threshold=0.99", json=ROW).get_json()["prediction"]
    assert strict["label"] == "no" and strict["probabilities"] == probabilities
    batch = client.post("/predict", json={name: [ROW[name], ROW[name] - 4] for name in FEATURES})
    assert [a["label"] for a in batch.get_json()["predictions"]][0] == answer["label"]
    refused = client.post("/predict", json={"Height": 76, "Weight": 210})
    assert refused.status_code == 400 and "Age" in refused.get_json()["error"]


def test_the_readme_commands_reproduce_the_committed_example(tmp_path, data_file):
    committed = mlib.verified_metadata(MODEL)
    pitchers = tmp_path / "pitchers.csv"
    made = run_script("examples/pitcher-classifier/make_data.py", str(data_file), str(pitchers),
                      env={})  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert sha256_file(pitchers) == committed["data"]["sha256"]  # the same bytes

    fresh = tmp_path / "served" / "model.joblib"
    args = retrain_arguments()
    result = CliRunner().invoke(cli, replaced(args, data=str(pitchers), model_name=str(fresh)))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pitchers)[FEATURES]
    assert same_fit(MODEL, fresh, frame)  # to the last bits
    ours = mlib.read_metadata(fresh)
    for key in ("schema", "hyperparameters", "data"):
        assert ours[key] == committed[key], key
    assert ours["diagnostics"]["confusion"] == committed["diagnostics"]["confusion"]
    assert ours["metrics"]["held_out"] == pytest.approx(committed["metrics"]["held_out"], rel=1e-9)
    baselines = ours["metrics"]["baselines"]
    assert list(baselines) == list(committed["metrics"]["baselines"]) == [
        "logistic-regression(Height)"]  # fmt: skip
    golden = json.loads((fresh.parent / "models" / "golden.json").read_text())
    pinned = json.loads((EXAMPLE / "models" / "golden.json").read_text())
    assert golden["rows_sha256"] == pinned["rows_sha256"] and golden["rows"] == 104


def test_the_committed_card_and_pictures_are_the_models_own():
    metadata = mlib.verified_metadata(MODEL)
    card = EXAMPLE / "MODEL_CARD.md"
    assert card.read_text(encoding="utf-8") == modelcard.render_card(metadata)
    drawn = modelcard.pictures_of(metadata)
    for name, path in picture_paths(card).items():
        # A picture the card does not draw (the importance chart of a model that records
        # none) is not left beside it.
        assert path.read_text(encoding="utf-8") == drawn[name] if name in drawn else (
            not path.exists()), name  # fmt: skip
    held_out = metadata["metrics"]["held_out"]
    text = card.read_text(encoding="utf-8")
    assert f"| {held_out['roc_auc']:.3f} | {held_out['ece']:.3f} |" in text
    # The figures the README reports are the model's own, to three places.
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    for key in ("log_loss", "brier", "accuracy", "roc_auc", "ece"):
        assert f"{held_out[key]:.3f}" in readme, key
    assert metadata["model_version"] in readme


def test_make_data_refuses_a_file_that_is_not_the_mlb_data(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    result = run_script("examples/pitcher-classifier/make_data.py", str(other),
                        str(tmp_path / "out.csv"), env={})  # fmt: skip
    assert result.returncode == 1 and "has no column 'Position'" in result.stderr
    assert result.stderr.count("\n") == 1
