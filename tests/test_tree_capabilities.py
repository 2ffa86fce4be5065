"""The web capabilities with tree models served from ONNX: capture, feedback and quality,
a tree shadow beside a tree champion, and a tree canary.

The champion is the committed example ``examples/height-gbm`` (hist-gradient boosting on
Weight, Age and Position); the second model is a hist-gradient-boosting model of the same
columns trained here on another split. Figures are checked against each joblib estimator
within the parity tolerance its model.json records for its ONNX form.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import wait_for_rows

import mlib
from app import create_app
from cookbook.lifecycle import model_spec, training
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.lifecycle.capture_store import open_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "height-gbm" / "model.joblib"
ROWS = [
    {"Weight": 180, "Age": 24.0, "Position": "Catcher"},
    {"Weight": 200, "Age": 28.5, "Position": "Outfielder"},
    {"Weight": 240, "Age": 33.0, "Position": "First_Baseman"},
]
ACTUAL = [72.0, 74.0, 76.0]


@pytest.fixture
def champion(tmp_path) -> Path:
    """A copy of the committed example: its joblib, model.json and ONNX file."""
    folder = tmp_path / "champion"
    folder.mkdir()
    for suffix in (".joblib", ".json", ".onnx"):
        shutil.copy2(EXAMPLE.with_suffix(suffix), folder / f"model{suffix}")
    return folder / "model.joblib"


@pytest.fixture(scope="module")
def second_tree(tmp_path_factory, data_file) -> Path:
    """Another hist-gradient-boosting model of the example's columns (a 20% split)."""
    spec = model_spec.spec_for("Height", ("Weight", "Age"), ("Position",))
    spec = dataclasses.replace(spec, estimator="hist-gradient-boosting")
    model_file = tmp_path_factory.mktemp("second") / "model.joblib"
    training.train(data_file, model_file, spec=spec, test_size=0.2)
    return model_file


def tolerance_of(model_file: Path) -> float:
    return mlib.read_metadata(model_file)["onnx"]["parity"]["tolerance"]


def expected(model_file: Path) -> list[float]:
    """Return the joblib estimator's predictions of ``ROWS``."""
    return load_estimator(model_file).predict(pd.DataFrame(ROWS)).tolist()


def batch_body() -> dict[str, list]:
    return {name: [row[name] for row in ROWS] for name in ROWS[0]}


def app_with(champion: Path, tmp_path: Path, **config):
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    app = create_app({"MODEL_PATH": str(champion), "TESTING": True,
                      "CAPTURE_ENV": {"CAPTURE_URL": url}, **config})  # fmt: skip
    return app.test_client(), open_store(url)


def test_the_models_are_trees_served_from_onnx(champion, second_tree):
    for model_file in (champion, second_tree):
        meta = mlib.read_metadata(model_file)
        assert meta["hyperparameters"]["estimator"] == "hist-gradient-boosting"
        assert type(load_predictor(model_file)).__name__ == "OnnxPredictor"
    assert (
        mlib.read_metadata(champion)["model_version"]
        != (mlib.read_metadata(second_tree)["model_version"])
    )


def test_capture_feedback_and_quality_with_a_tree_model(champion, tmp_path):
    client, store = app_with(champion, tmp_path)
    version = mlib.read_metadata(champion)["model_version"]
    answer = client.post("/predict", json=batch_body(), headers={"X-Request-ID": "t1"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["X-Model-Version"] == version
    predictions = answer.get_json()["predictions"]
    rows = sorted(wait_for_rows(store, 3), key=lambda r: r["row_index"])
    assert [(r["request_id"], r["row_index"], r["model_version"]) for r in rows] == [
        ("t1", i, version) for i in range(3)
    ]
    tolerance = tolerance_of(champion)
    for row, answered, estimated in zip(rows, predictions, expected(champion), strict=True):
        assert row["prediction"] == pytest.approx(estimated, abs=tolerance)
        # The answer's interval is what was captured, and it holds the prediction.
        interval = answered["interval"]
        assert (row["interval_low"], row["interval_high"]) == (interval["low"], interval["high"])
        assert row["interval_low"] < row["prediction"] < row["interval_high"]

    joined = client.post("/feedback", json=[
        {"request_id": "t1", "index": i, "actual": actual} for i, actual in enumerate(ACTUAL)
    ])  # fmt: skip
    assert joined.status_code == 200 and joined.get_json()["joined"] == ["t1"] * 3
    assert client.post("/feedback", json={"request_id": "t1", "actual": 70.0}).status_code == 409
    report = client.get("/quality").get_json()["versions"][version]
    errors = [abs(p - a) for p, a in zip(expected(champion), ACTUAL, strict=True)]
    inside = [r["interval_low"] <= a <= r["interval_high"]
              for r, a in zip(rows, ACTUAL, strict=True)]  # fmt: skip
    assert report["labelled"] == 3
    assert report["mae"] == pytest.approx(sum(errors) / 3, abs=tolerance)
    assert report["interval_coverage"] == pytest.approx(sum(inside) / 3)


def test_a_tree_shadow_beside_a_tree_champion(champion, second_tree, tmp_path):
    client, store = app_with(champion, tmp_path, SHADOW_MODEL_PATH=str(second_tree),
                             ROLLOUT_TOLERANCE=0.05)  # fmt: skip
    champion_version = mlib.read_metadata(champion)["model_version"]
    shadow_version = mlib.read_metadata(second_tree)["model_version"]
    answer = client.post("/predict", json=batch_body(), headers={"X-Request-ID": "s1"})
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == champion_version
    roles = sorted((r["role"], r["model_version"]) for r in wait_for_rows(store, 6, seconds=2.0))
    assert roles == [("champion", champion_version)] * 3 + [("shadow", shadow_version)] * 3
    joined = client.post("/feedback", json=[
        {"request_id": "s1", "index": i, "actual": actual} for i, actual in enumerate(ACTUAL)
    ])  # fmt: skip
    assert joined.status_code == 200
    report = client.get("/rollout").get_json()
    assert report["champion"]["version"] == champion_version
    shadow = report["shadow"]
    assert shadow["version"] == shadow_version and shadow["n"] == 3 and shadow["labelled"] == 3
    ours, theirs = expected(champion), expected(second_tree)
    tolerance = tolerance_of(champion) + tolerance_of(second_tree)
    assert shadow["mean_abs_difference"] == pytest.approx(
        sum(abs(a - b) for a, b in zip(ours, theirs, strict=True)) / 3, abs=tolerance)  # fmt: skip
    assert shadow["champion_mae"] == pytest.approx(
        sum(abs(p - a) for p, a in zip(ours, ACTUAL, strict=True)) / 3,
        abs=tolerance_of(champion))  # fmt: skip
    assert shadow["shadow_mae"] == pytest.approx(
        sum(abs(p - a) for p, a in zip(theirs, ACTUAL, strict=True)) / 3,
        abs=tolerance_of(second_tree))  # fmt: skip
    # Quality keeps to what was answered: the champion's version only.
    assert list(client.get("/quality").get_json()["versions"]) == [champion_version]


def test_a_tree_canary_answers_every_request_at_fraction_one(champion, second_tree, tmp_path):
    client, store = app_with(champion, tmp_path, CANARY_MODEL_PATH=str(second_tree),
                             CANARY_FRACTION=1.0)  # fmt: skip
    canary_version = mlib.read_metadata(second_tree)["model_version"]
    tolerance = tolerance_of(second_tree)
    for i, (row, estimated) in enumerate(zip(ROWS, expected(second_tree), strict=True)):
        answer = client.post("/predict", json=row, headers={"X-Canary-Key": f"user-{i}"})
        assert answer.status_code == 200, answer.get_json()
        assert answer.headers["X-Model-Version"] == canary_version
        # The answer is rounded to a tenth of an inch for people.
        height = answer.get_json()["prediction"]["height_inches"]
        assert height == pytest.approx(estimated, abs=0.05 + tolerance)
    captured = wait_for_rows(store, 3)
    assert {(r["role"], r["model_version"]) for r in captured} == {("canary", canary_version)}
    assert sorted(r["prediction"] for r in captured) == pytest.approx(
        sorted(expected(second_tree)), abs=tolerance)  # fmt: skip
