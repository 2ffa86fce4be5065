"""`utilscli.py models import` of a fitted classifier: recognised by itself, scored with the
classification metrics and calibrated on the labelled rows given, folded or served from ONNX,
and gated like a retrain.

Classifiers are fitted here on part of scikit-learn's breast_cancer (binary) and iris
(multiclass); the rest of each is the labelled data given at import.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import CANCER_FEATURES, IRIS_FEATURES, cancer_frame, iris_frame

import mlib
from app import create_app
from cookbook.lifecycle import registry
from cookbook.lifecycle.vectorized import predict_frame
from utilscli import cli


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    """breast_cancer split in two: rows to fit on, and the rest as a CSV given at import."""
    from sklearn.model_selection import train_test_split

    folder = tmp_path_factory.mktemp("cancer-import")
    fit_rows, given_rows = train_test_split(cancer_frame(), test_size=0.3, random_state=0)
    given_rows.to_csv(folder / "given.csv", index=False)
    return fit_rows, folder / "given.csv"


def fitted(folder: Path, name: str, estimator, rows, target: str) -> Path:
    """Fit *estimator* on *rows* and dump it to *folder*/*name*.joblib; return the path."""
    path = folder / f"{name}.joblib"
    joblib.dump(estimator.fit(rows.drop(columns=target), rows[target]), path)
    return path


def logistic_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def import_model(fitted_file: Path, data: Path, model: Path, target: str, *extra: str):
    args = ["models", "import", str(fitted_file), "--data", str(data), "--target", target,
            "--model-name", str(model), *extra]  # fmt: skip
    return CliRunner().invoke(cli, args)


def written(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def scores_by_sklearn(labels, probabilities, classes, positive: str | None) -> dict:
    """The metrics as scikit-learn computes them, to check ours against."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    predicted = [classes[i] for i in np.argmax(probabilities, axis=1)]
    scores = {"log_loss": log_loss(labels, probabilities, labels=classes),
              "accuracy": accuracy_score(labels, predicted)}  # fmt: skip
    if positive is not None:
        column = probabilities[:, classes.index(positive)]
        scores["roc_auc"] = roc_auc_score([label == positive for label in labels], column)
    return scores


def test_an_imported_logistic_pipeline_is_a_folded_binary_classifier(tmp_path, cancer):
    fit_rows, given = cancer
    estimator_file = fitted(tmp_path, "logistic", logistic_pipeline(), fit_rows, "diagnosis")
    model = tmp_path / "served" / "model.joblib"
    result = import_model(estimator_file, given, model, "diagnosis")  # no --task: recognised
    assert result.exit_code == 0, result.output
    assert "Log loss:" in result.output and "Rows given:    171" in result.output
    metadata = mlib.read_metadata(model)
    target = metadata["schema"]["target"]
    assert target["task"] == "binary" and target["classes"] == ["benign", "malignant"]
    assert target["positive_class"] == "malignant" and target["threshold"] == 0.5  # the second
    assert metadata["folded"]["link"] == "logistic" and metadata["origin"]["kind"] == "import"
    estimator = joblib.load(estimator_file)
    rows = pd.read_csv(given)
    expected = estimator.predict_proba(rows[CANCER_FEATURES])
    predictor = mlib.load_predictor(model)
    assert predictor.is_folded  # served from plain numbers, never unpickled
    assert np.abs(predict_frame(predictor, rows) - expected).max() <= 1e-9
    held_out = metadata["metrics"]["held_out"]
    ours = scores_by_sklearn(rows["diagnosis"].tolist(), expected, ["benign", "malignant"],
                             "malignant")  # fmt: skip
    assert {key: held_out[key] for key in ours} == pytest.approx(ours, rel=1e-9)
    calibration = metadata["prediction_set"]
    assert calibration["calibration"] == "rows given at import"
    assert calibration["calibration_rows"] == held_out["rows"] == 171
    assert sum(map(sum, metadata["diagnostics"]["confusion"])) == 171
    pin = json.loads((model.parent / "models" / "golden.json").read_text())
    assert pin["kind"] == "import" and pin["columns"] == [*CANCER_FEATURES, "diagnosis"]

    client = create_app({"MODEL_PATH": str(model), "TESTING": True}).test_client()
    row = rows[CANCER_FEATURES].iloc[0].to_dict()
    answer = client.post("/predict", json=row).get_json()["prediction"]
    own = dict(zip(["benign", "malignant"], expected[0], strict=True))
    assert answer["probabilities"] == pytest.approx(own, abs=1e-9)
    assert math.isclose(sum(answer["probabilities"].values()), 1, abs_tol=1e-6)
    assert answer["label"] in ("benign", "malignant") and "set" in answer
    card = CliRunner().invoke(cli, ["card"], env={"MODEL_PATH": str(model)})
    assert card.exit_code == 0, card.output
    text = model.with_name("MODEL_CARD.md").read_text(encoding="utf-8")
    assert "calibrate its prediction set and are its golden set" in text
    assert "Drawn from the 171 rows given at import" in text
    assert model.with_name("MODEL_CARD.confusion.svg").is_file()


def test_an_imported_boosted_classifier_is_served_from_onnx(tmp_path, cancer):
    from sklearn.ensemble import HistGradientBoostingClassifier

    fit_rows, given = cancer
    boosted = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    estimator_file = fitted(tmp_path, "boosted", boosted, fit_rows, "diagnosis")
    model = tmp_path / "model.joblib"
    result = import_model(estimator_file, given, model, "diagnosis", "--task", "classification",
                          "--positive-class", "benign")  # fmt: skip
    assert result.exit_code == 0, result.output
    metadata = mlib.read_metadata(model)
    assert metadata["schema"]["target"]["positive_class"] == "benign"
    assert metadata["serving"] == {"form": "onnx"} and model.with_suffix(".onnx").is_file()
    parity = metadata["onnx"]["parity"]
    assert parity["max_abs_difference"] <= parity["tolerance"] == pytest.approx(1e-3)
    rows = pd.read_csv(given)
    expected = joblib.load(estimator_file).predict_proba(rows[CANCER_FEATURES])
    predictor = mlib.load_predictor(model)
    assert type(predictor).__name__ == "OnnxPredictor"
    assert np.abs(predict_frame(predictor, rows) - expected).max() <= parity["tolerance"]
    auc = scores_by_sklearn(rows["diagnosis"].tolist(), expected, ["benign", "malignant"],
                            "benign")["roc_auc"]  # fmt: skip
    assert metadata["metrics"]["held_out"]["roc_auc"] == pytest.approx(auc, rel=1e-9)


def test_an_iris_classifier_is_imported_as_multiclass(tmp_path):
    from sklearn.model_selection import train_test_split

    fit_rows, given_rows = train_test_split(iris_frame(), test_size=0.4, random_state=0)
    given = tmp_path / "given.csv"
    given_rows.to_csv(given, index=False)
    estimator_file = fitted(tmp_path, "iris", logistic_pipeline(), fit_rows, "species")
    model = tmp_path / "model.joblib"
    result = import_model(estimator_file, given, model, "species", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["roc_auc"] is None and report["rows"] == 60
    metadata = mlib.read_metadata(model)
    target = metadata["schema"]["target"]
    assert target["task"] == "multiclass" and "positive_class" not in target
    assert target["classes"] == ["setosa", "versicolor", "virginica"]
    assert metadata["folded"]["link"] == "softmax" and len(metadata["folded"]["logits"]) == 3
    expected = joblib.load(estimator_file).predict_proba(given_rows[IRIS_FEATURES])
    ours = scores_by_sklearn(given_rows["species"].tolist(), expected, target["classes"], None)
    held_out = metadata["metrics"]["held_out"]
    assert {key: held_out[key] for key in ours} == pytest.approx(ours, rel=1e-9)
    assert np.abs(predict_frame(mlib.load_predictor(model), given_rows) - expected).max() <= 1e-9


def test_a_classifier_import_over_a_served_one_is_gated_on_log_loss(tmp_path, cancer):
    from sklearn.dummy import DummyClassifier

    fit_rows, given = cancer
    model = tmp_path / "model.joblib"
    good = fitted(tmp_path, "logistic", logistic_pipeline(), fit_rows, "diagnosis")
    assert import_model(good, given, model, "diagnosis").exit_code == 0
    first = mlib.load_predictor(model).version
    prior = fitted(tmp_path, "prior", DummyClassifier(strategy="prior"), fit_rows, "diagnosis")
    refused = import_model(prior, given, model, "diagnosis", "--json")
    assert refused.exit_code == 1
    report = json.loads(refused.output)
    assert [c["metric"] for c in report["comparisons"]] == ["log_loss", "log_loss"]
    assert not report["promoted"] and report["comparisons"][0]["change"] < -0.05
    assert mlib.load_predictor(model).version == first
    assert registry.Registry(model).history() == [first]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("unknown labels", "diagnosis holds labels the classifier in"),
        ("unknown positive class", "--positive-class 'sick' is not a class of diagnosis"),
        ("a regressor asked to classify", "is not a classifier: it has no predict_proba"),
    ],
)
def test_a_refused_classifier_import_is_one_line_and_writes_nothing(tmp_path, cancer, case,
                                                                    words):  # fmt: skip
    from sklearn.linear_model import LinearRegression

    fit_rows, given = cancer
    estimator_file = fitted(tmp_path, "logistic", logistic_pipeline(), fit_rows, "diagnosis")
    extra: list[str] = []
    if case == "unknown labels":
        rows = pd.read_csv(given)
        rows.loc[rows.index[:3], "diagnosis"] = ["Malignant", "unsure", "Malignant"]
        given = tmp_path / "mislabelled.csv"
        rows.to_csv(given, index=False)
    elif case == "unknown positive class":
        extra = ["--positive-class", "sick"]
    else:
        numbers = fit_rows.assign(diagnosis=(fit_rows["diagnosis"] == "malignant").astype(float))
        estimator_file = fitted(tmp_path, "linear", LinearRegression(), numbers, "diagnosis")
        extra = ["--task", "classification"]
    model = tmp_path / "served" / "model.joblib"
    result = import_model(estimator_file, given, model, "diagnosis", *extra)
    assert result.exit_code == 1
    assert words in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    if case == "unknown labels":
        assert "('Malignant', 'unsure'); its classes are benign, malignant" in result.stderr
    assert written(tmp_path / "served") == []
