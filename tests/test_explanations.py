"""Exact explanations of folded models: base + contributions equal the served prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cookbook.core.classes import label_index
from cookbook.core.explanations import FoldedExplainer
from cookbook.lifecycle.artifacts import load_predictor
from utilscli import cli

ROOT = Path(__file__).resolve().parent.parent


def explain_all(model_file: Path, frame: pd.DataFrame) -> tuple[list[dict], list]:
    predictor = load_predictor(model_file)
    explainer = FoldedExplainer.of(predictor.linear, predictor.schema)
    rows = [tuple(r) for r in frame[list(predictor.schema.feature_names)].itertuples(index=False)]
    values = [predictor.predict_row(row) for row in rows]
    answered = [
        label_index(predictor.schema.target, v, None) if predictor.is_classifier else 0
        for v in values
    ]
    return [explainer.explain(r, a) for r, a in zip(rows, answered, strict=True)], values


def test_the_committed_model_explains_each_height_exactly():
    frame = pd.DataFrame({"Weight": np.linspace(100, 400, 301)})
    explanations, values = explain_all(ROOT / "model.joblib", frame)
    for explanation, value in zip(explanations, values, strict=True):
        assert explanation["prediction"] == value  # the served, unrounded value
        total = explanation["base"] + sum(explanation["contributions"].values())
        assert abs(total - value) <= 1e-6
    # At the training mean weight, the whole prediction is the base.
    metadata = json.loads((ROOT / "model.json").read_text())
    mean = metadata["schema"]["features"][0]["stats"]["mean"]
    (at_mean,), _ = explain_all(ROOT / "model.joblib", pd.DataFrame({"Weight": [mean]}))
    assert abs(at_mean["contributions"]["Weight"]) <= 1e-12


def test_a_category_contributes_its_offset_against_the_frequency_weighted_mean(tmp_path):
    data = tmp_path / "mlb.csv"
    data.write_bytes((ROOT / "htwtmlb.csv").read_bytes())
    model_file = tmp_path / "model.joblib"
    trained = CliRunner().invoke(cli, ["retrain", "--data", str(data), "--features", "Weight,Age",
                                       "--categorical", "Position", "--model-name",
                                       str(model_file)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    frame = pd.read_csv(data).dropna().head(200)
    explanations, values = explain_all(model_file, frame)
    worst = max(abs(e["base"] + sum(e["contributions"].values()) - v)
                for e, v in zip(explanations, values, strict=True))  # fmt: skip
    assert worst <= 1e-9
    # Over the training data, category contributions average out to zero (by construction).
    contributions = pd.DataFrame([e["contributions"] for e in explanations])
    assert set(contributions.columns) == {"Weight", "Age", "Position"}


@pytest.mark.parametrize("data_set", ["breast_cancer", "iris"])
def test_a_folded_classifier_explains_the_logit_of_the_class_it_answered(data_set, tmp_path):
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{data_set}")(as_frame=True)
    frame = loaded.frame.rename(columns=lambda c: c.replace(" ", "_").replace("(cm)", "cm"))
    features = [c for c in frame.columns if c != "target"][:4]
    frame["label"] = [str(loaded.target_names[t]) for t in frame["target"]]
    data = tmp_path / "data.csv"
    frame[[*features, "label"]].to_csv(data, index=False)
    model_file = tmp_path / "model.joblib"
    trained = CliRunner().invoke(cli, ["retrain", "--task", "classification", "--data", str(data),
                                       "--target", "label", "--features", ",".join(features),
                                       "--model-name", str(model_file)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    explanations, values = explain_all(model_file, frame)
    for explanation, probabilities in zip(explanations, values, strict=True):
        total = explanation["base"] + sum(explanation["contributions"].values())
        assert abs(total - explanation["prediction"]) <= 1e-6
        if len(probabilities) == 2:  # the log-odds of the answered class
            answered = max(probabilities)
            assert explanation["prediction"] == pytest.approx(
                np.log(answered / (1 - answered)), abs=1e-6, rel=1e-6)  # fmt: skip


# ------------------------------------------------------------------ on the contracts


def serve(monkeypatch, model_file: Path):
    from app import create_app

    monkeypatch.setenv("MODEL_PATH", str(model_file))
    return create_app().test_client()


def additive(explanation: dict) -> float:
    """Return |base + Σ contributions - prediction|."""
    total = explanation["base"] + sum(explanation["contributions"].values())
    return abs(total - explanation["prediction"])


def test_predict_explains_when_asked_in_the_body_or_the_query(monkeypatch):
    from cookbook.core.answers import round_tenth

    client = serve(monkeypatch, ROOT / "model.joblib")
    plain = client.post("/predict", json={"Weight": 200}).get_json()["prediction"]
    assert "explanation" not in plain
    asked = client.post("/predict", json={"Weight": 200, "explain": True}).get_json()
    explanation = asked["prediction"]["explanation"]
    assert set(explanation) == {"base", "contributions", "prediction"}
    assert list(explanation["contributions"]) == ["Weight"]
    assert additive(explanation) <= 1e-6
    assert round_tenth(explanation["prediction"]) == plain["height_inches"]
    batch = client.post("/predict?explain=true", json={"Weight": [180, 200, 250]}).get_json()
    assert [additive(a["explanation"]) <= 1e-6 for a in batch["predictions"]] == [True] * 3
    declined = client.post("/predict?explain=0", json={"Weight": 200}).get_json()["prediction"]
    assert declined == plain


def test_the_lambda_handler_explains_with_the_standard_library():
    from cookbook.web import lambda_handler

    answer = lambda_handler.handler({"Weight": 200, "explain": True}, None)
    assert additive(answer["prediction"]["explanation"]) <= 1e-6


def test_a_classifier_explains_the_class_it_answered_at_the_requests_threshold(
    monkeypatch, tmp_path
):
    model_file = ROOT / "examples" / "pitcher-classifier" / "model.joblib"
    client = serve(monkeypatch, model_file)
    row = {"Height": 74, "Weight": 200, "Age": 28.5}
    for threshold in (0.3, 0.7):
        answer = client.post(
            "/predict", json={**row, "explain": True, "threshold": threshold}
        ).get_json()["prediction"]
        explanation = answer["explanation"]
        assert additive(explanation) <= 1e-6
        p = answer["probabilities"][answer["label"]]
        assert explanation["prediction"] == pytest.approx(np.log(p / (1 - p)), rel=1e-9)


@pytest.mark.parametrize(
    ("body", "query", "status", "message"),
    [
        (
            {"Weight": 200, "explain": "yes"},
            "",
            400,
            "\"explain\" must be true or false, got 'yes'",
        ),
        ({"Weight": 200, "explain": 1}, "", 400, '"explain" must be true or false, got a number'),
        ({"Weight": 200}, "?explain=maybe", 400, '"explain" must be true or false'),
        ({"Weight": [180.0] * 1001, "explain": True}, "", 413, "at most 1000 rows per request"),
    ],
)
def test_bad_explain_requests_are_refused_naming_the_problem(monkeypatch, body, query, status,
                                                             message):  # fmt: skip
    client = serve(monkeypatch, ROOT / "model.joblib")
    answer = client.post(f"/predict{query}", json=body)
    assert answer.status_code == status
    assert message in answer.get_json()["error"]


def test_the_committed_tree_example_explains_its_onnx_answers(monkeypatch):
    client = serve(monkeypatch, ROOT / "examples" / "height-gbm" / "model.joblib")
    row = {"Weight": 200, "Age": 28.5, "Position": "Catcher"}
    plain = client.post("/predict", json=row).get_json()["prediction"]
    asked = client.post("/predict", json={**row, "explain": True}).get_json()
    explanation = asked["prediction"]["explanation"]
    assert list(explanation["contributions"]) == ["Weight", "Age", "Position"]
    assert additive(explanation) <= 1e-6
    assert round(explanation["prediction"], 1) == plain["height_inches"]


def test_a_model_without_an_explainer_says_why(monkeypatch, tmp_path):
    import shutil

    example = ROOT / "examples" / "height-gbm" / "model.joblib"
    for suffix in (".joblib", ".json", ".onnx"):  # a copy without its trees file
        shutil.copy2(example.with_suffix(suffix), tmp_path / f"model{suffix}")
    client = serve(monkeypatch, tmp_path / "model.joblib")
    row = {"Weight": 200, "Age": 28.5, "Position": "Catcher"}
    refused = client.post("/predict", json={**row, "explain": True})
    assert refused.status_code == 400
    message = refused.get_json()["error"]
    assert "cannot explain its answers: its trees file model.trees.npz is missing" in message


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        # Found by the schema fuzzer: a body's null was read as "not given" and the query's
        # true applied; a bad query value was ignored when the body had the field.
        ({"Weight": 200, "explain": None}, "explain=true", "must be true or false, got null"),
        ({"Weight": 200, "explain": False}, "explain=AAA", "must be true or false, got 'AAA'"),
        # A body's option has JSON's own type; text is the query's.
        ({"Weight": 200, "explain": "true"}, "", "must be true or false, got 'true'"),
    ],
)  # fmt: skip
def test_an_option_is_checked_wherever_it_is_given(body, query, message):
    from app import create_app

    client = create_app({"TESTING": True}).test_client()
    for path in ("/predict", "/invocations"):
        response = client.post(f"{path}?{query}", json=body)
        assert response.status_code == 400, (path, response.get_json())
        assert message in response.get_json()["error"]
