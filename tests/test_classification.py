"""Classifiers end to end: trained by retrain --task classification, served by every family.

scikit-learn's bundled breast_cancer (binary) and iris (multiclass) data sets, written as
CSVs with text labels. The folded logistic regression is served with plain Python, the
tree families from ONNX: each must answer what its estimator's predict_proba says.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import CANCER_FEATURES, IRIS_FEATURES, run_script
from helpers import retrain_classifier as retrain

from app import create_app
from cookbook.core.errors import MlibError
from cookbook.core.schema import Schema, Target
from cookbook.lifecycle import model_spec
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.lifecycle.classifying import LOGISTIC, estimator_outputs
from utilscli import cli

FAMILIES = [LOGISTIC, *model_spec.TREE_FAMILIES]


@pytest.fixture(scope="module")
def data(classification_data) -> dict[str, Path]:
    return classification_data


@pytest.fixture(scope="module", params=FAMILIES)
def binary(request, classifier) -> Path:
    return classifier("binary", request.param)


@pytest.fixture(scope="module", params=[LOGISTIC, "hist-gradient-boosting"])
def multiclass(request, classifier) -> Path:
    return classifier("multiclass", request.param)


def rows_of(data_file: Path, features: list[str], count: int = 40) -> pd.DataFrame:
    return pd.read_csv(data_file)[features].sample(count, random_state=1)


# ------------------------------------------------------------------ training


def test_a_binary_model_records_its_task_classes_and_calibration(binary):
    metadata = json.loads(binary.with_name("model.json").read_text())
    target = metadata["schema"]["target"]
    assert target["task"] == "binary" and target["classes"] == ["benign", "malignant"]
    assert target["positive_class"] == "malignant" and target["threshold"] == 0.5
    assert metadata["schema"]["answer"]["format"] == "class"
    held_out = metadata["metrics"]["held_out"]
    assert set(held_out) >= {"log_loss", "brier", "accuracy", "roc_auc", "ece", "rows"}
    assert held_out["accuracy"] > 0.85 and held_out["roc_auc"] > 0.9
    calibration = metadata["prediction_set"]
    assert calibration["coverage"] == 0.9 and 0 <= calibration["quantile"] <= 1
    assert calibration["held_out_coverage"] >= 0.9  # calibrated on these rows: at least 90%


def test_the_linear_classifier_is_folded_and_the_trees_are_served_from_onnx(binary):
    metadata = json.loads(binary.with_name("model.json").read_text())
    family = metadata["hyperparameters"]["estimator"]
    predictor = load_predictor(binary)
    if family == LOGISTIC:
        assert metadata["folded"]["link"] == "logistic" and predictor.is_folded
    else:
        assert metadata["serving"] == {"form": "onnx"}
        assert metadata["onnx"]["parity"]["max_abs_difference"] <= 1e-3
        assert hasattr(predictor, "session")


def test_served_probabilities_equal_the_estimators(binary, multiclass, data):
    for model_file, data_file, features in ((binary, data["cancer"], CANCER_FEATURES),
                                            (multiclass, data["iris"], IRIS_FEATURES)):  # fmt: skip
        predictor = load_predictor(model_file)
        rows = rows_of(data_file, features)
        expected = estimator_outputs(load_estimator(model_file), rows, predictor.schema)
        served = np.array(predictor.predict_rows([tuple(r) for r in rows.itertuples(index=False)]))
        tolerance = 1e-9 if predictor.is_folded else 1e-3
        assert np.abs(served - expected).max() <= tolerance
        assert np.abs(served.sum(axis=1) - 1).max() <= 1e-6


def test_ridge_cannot_classify_and_logistic_regression_cannot_regress(data, tmp_path):
    refused = CliRunner().invoke(cli, ["retrain", "--task", "classification", "--estimator",
                                       "ridge", "--data", str(data["iris"]), "--target", "species",
                                       "--features", ",".join(IRIS_FEATURES), "--model-name",
                                       str(tmp_path / "m.joblib")])  # fmt: skip
    assert refused.exit_code == 1 and "ridge is a regressor" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    refused = CliRunner().invoke(cli, ["retrain", "--estimator", LOGISTIC, "--data",
                                       str(data["iris"]), "--target", "sepal_length",
                                       "--features", "sepal_width", "--model-name",
                                       str(tmp_path / "m.joblib")])  # fmt: skip
    assert refused.exit_code == 1 and "add --task classification" in refused.output
    assert not (tmp_path / "m.joblib").exists()


def test_an_unknown_positive_class_is_refused_in_one_line(data, tmp_path):
    refused = CliRunner().invoke(cli, ["retrain", "--task", "classification", "--data",
                                       str(data["cancer"]), "--target", "diagnosis",
                                       "--features", "mean_radius", "--positive-class", "sick",
                                       "--model-name", str(tmp_path / "m.joblib")])  # fmt: skip
    assert refused.exit_code == 1
    assert "'sick' is not a class of diagnosis: its classes are benign, malignant" in refused.output


def test_a_schema_refuses_classes_that_do_not_fit_its_task():
    with pytest.raises(MlibError, match="binary target lists classes"):
        Target.from_dict({"name": "y", "task": "binary", "classes": ["a", "b", "c"]})
    with pytest.raises(MlibError, match="positive class"):
        Target.from_dict({"name": "y", "task": "binary", "classes": ["a", "b"],
                          "positive_class": "c"})  # fmt: skip
    with pytest.raises(MlibError, match="task 'ranking' is unknown"):
        Target.from_dict({"name": "y", "task": "ranking"})
    with pytest.raises(MlibError, match="does not fit its regression target"):
        Schema.from_dict({"name": "m", "answer": {"format": "class"}, "target": {"name": "y"},
                          "features": [{"name": "x", "kind": "category",
                                        "categories": ["a"]}]})  # fmt: skip


def test_the_gate_compares_log_loss(data, tmp_path):
    model_file = tmp_path / "model.joblib"
    args = ("--target", "species", "--features", ",".join(IRIS_FEATURES))
    retrain(data["iris"], model_file, *args)
    again = retrain(data["iris"], model_file, *args, "--estimator", "random-forest")
    (held_out, golden) = again["comparisons"]
    assert held_out["metric"] == golden["metric"] == "log_loss"
    change = held_out["served"]["log_loss"] - held_out["candidate"]["log_loss"]
    assert held_out["change"] == pytest.approx(change)
    assert held_out["r2_change"] is None
    listed = CliRunner().invoke(cli, ["models", "list"], env={"MODEL_PATH": str(model_file)})
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].split()[2:4] == ["log", "loss"]
    assert again["model_version"] in listed.output


# ------------------------------------------------------------------ answers


def serve(monkeypatch, model_file: Path):
    monkeypatch.setenv("MODEL_PATH", str(model_file))
    return create_app().test_client()


def test_predict_answers_the_label_every_probability_and_the_set(binary, data, monkeypatch):
    client = serve(monkeypatch, binary)
    predictor = load_predictor(binary)
    row = rows_of(data["cancer"], CANCER_FEATURES, 1).iloc[0].to_dict()
    answer = client.post("/predict", json=row).get_json()["prediction"]
    probabilities = answer["probabilities"]
    assert list(probabilities) == ["benign", "malignant"]
    assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-6)
    assert answer["label"] == ("malignant" if probabilities["malignant"] >= 0.5 else "benign")
    assert answer["probabilities"] == dict(zip(["benign", "malignant"],
                                               predictor.predict_row(tuple(row.values())),
                                               strict=True))  # fmt: skip
    quantile = predictor.prediction_set.quantile
    assert set(answer["set"]) == {c for c, p in probabilities.items() if p >= 1 - quantile}
    assert answer["set_coverage"] == 0.9


def test_a_threshold_in_the_body_or_the_query_moves_the_binary_label(binary, data, monkeypatch):
    client = serve(monkeypatch, binary)
    rows = rows_of(data["cancer"], CANCER_FEATURES, 30)
    batch = {name: rows[name].tolist() for name in CANCER_FEATURES}
    answers = client.post("/predict", json=batch).get_json()["predictions"]
    chances = [a["probabilities"]["malignant"] for a in answers]
    middle = sorted(chances)[len(chances) // 2]  # a threshold that splits these rows

    def labels(threshold: float, in_query: bool) -> list[str]:
        if in_query:
            answer = client.post(f"/predict?threshold={threshold!r}", json=batch)
        else:
            answer = client.post("/predict", json={**batch, "threshold": threshold})
        assert answer.status_code == 200, answer.get_json()
        return [a["label"] for a in answer.get_json()["predictions"]]

    for threshold in (1e-9, middle, 0.5, 0.999999999):
        expected = ["malignant" if p >= threshold else "benign" for p in chances]
        assert labels(threshold, in_query=False) == labels(threshold, in_query=True) == expected
    assert [a["label"] for a in answers] == labels(0.5, in_query=False)  # the model's default
    assert len(set(labels(middle, in_query=False))) == 2
    # The body wins over the query, as for every option.
    body_wins = client.post("/predict?threshold=0.999999999", json={**batch, "threshold": middle})
    assert [a["label"] for a in body_wins.get_json()["predictions"]] == labels(middle, False)


def test_output_asks_for_only_the_label_or_only_the_probabilities(multiclass, data, monkeypatch):
    client = serve(monkeypatch, multiclass)
    row = rows_of(data["iris"], IRIS_FEATURES, 1).iloc[0].to_dict()
    label = client.post("/predict", json={**row, "output": "label"}).get_json()["prediction"]
    assert list(label) == ["label"]
    only = client.post("/predict?output=probabilities", json=row).get_json()["prediction"]
    assert "label" not in only and list(only["probabilities"]) == ["setosa", "versicolor",
                                                                  "virginica"]  # fmt: skip
    full = client.post("/predict", json=row).get_json()["prediction"]
    best = max(full["probabilities"], key=full["probabilities"].get)
    assert full["label"] == best == label["label"]


@pytest.mark.parametrize(
    ("extra", "query", "message"),
    [
        ({"threshold": 1.5}, "", '"threshold" must be a number between 0 and 1 (exclusive)'),
        ({"threshold": True}, "", '"threshold" must be a number between 0 and 1'),
        ({}, "?threshold=abc", "\"threshold\" must be a number between 0 and 1, got 'abc'"),
        ({"output": "logits"}, "", '"output" must be "label" or "probabilities"'),
        ({"output": ["label"]}, "", "got a list"),
    ],
)
def test_bad_answer_options_are_400s_that_name_them(binary, data, monkeypatch, extra, query,
                                                     message):  # fmt: skip
    client = serve(monkeypatch, binary)
    row = rows_of(data["cancer"], CANCER_FEATURES, 1).iloc[0].to_dict()
    answer = client.post(f"/predict{query}", json={**row, **extra})
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]


def test_a_threshold_for_a_multiclass_model_is_refused(multiclass, data, monkeypatch):
    client = serve(monkeypatch, multiclass)
    row = rows_of(data["iris"], IRIS_FEATURES, 1).iloc[0].to_dict()
    answer = client.post("/predict", json={**row, "threshold": 0.3})
    assert answer.status_code == 400
    assert "applies to binary models only" in answer.get_json()["error"]


def test_ready_and_metrics_speak_of_classes(binary, data, monkeypatch):
    client = serve(monkeypatch, binary)
    ready = client.get("/ready").get_json()
    assert set(ready["probe_value"]) == {"benign", "malignant"}
    rows = rows_of(data["cancer"], CANCER_FEATURES, 10)
    answers = client.post("/predict", json={n: rows[n].tolist() for n in CANCER_FEATURES})
    labels = [a["label"] for a in answers.get_json()["predictions"]]
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("benign", "malignant"):
        line = f'model_predicted_class_total{{class="{name}"}} {float(labels.count(name))}'
        assert line in text


def test_cli_prints_the_label_and_the_probabilities(multiclass):
    args = ["--set", "sepal_length=5.1", "--set", "sepal_width=3.5", "--set",
            "petal_length=1.4", "--set", "petal_width=0.2"]  # fmt: skip
    shown = run_script("cli.py", "--model", str(multiclass), *args, env={})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "label: setosa"
    as_json = run_script("cli.py", "--model", str(multiclass), *args, "--json", env={})
    answer = json.loads(as_json.stdout)
    assert answer["label"] == "setosa" and set(answer["probabilities"]) == {
        "setosa", "versicolor", "virginica"}  # fmt: skip


def test_a_tree_classifier_is_scored_beside_the_logistic_regression(data, tmp_path):
    args = ("--target", "diagnosis", "--features", ",".join(CANCER_FEATURES))
    linear = retrain(data["cancer"], tmp_path / "linear" / "model.joblib", *args)
    trees = retrain(data["cancer"], tmp_path / "trees" / "model.joblib", *args,
                    "--estimator", "random-forest")  # fmt: skip
    metadata = json.loads((tmp_path / "trees" / "model.json").read_text())
    baseline = metadata["metrics"]["baselines"][f"{LOGISTIC}({', '.join(CANCER_FEATURES)})"]
    for key in ("log_loss", "brier", "accuracy", "roc_auc", "ece", "rows"):
        assert baseline[key] == pytest.approx(linear[key], abs=1e-12)
    assert trees["rows"] == baseline["rows"]
