"""A classifier's model card: its classes, rule, metrics and prediction set, and the reliability
diagram and confusion matrix drawn as SVG beside it from model.json alone.

Classifiers trained here on scikit-learn's breast_cancer (binary) and iris (multiclass, its
labels renamed to carry characters that Markdown and XML must escape).
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import CANCER_FEATURES, IRIS_FEATURES, cancer_frame, iris_frame

import mlib
from cookbook.lifecycle import class_scoring, model_spec, modelcard, training
from cookbook.lifecycle.artifacts import load_estimator
from cookbook.lifecycle.classifying import estimator_outputs
from utilscli import cli

SVG = "{http://www.w3.org/2000/svg}"
# Labels a card must show as they are: markup, an ampersand and a table's bar.
FLOWERS = {"setosa": "setosa", "versicolor": "versi<color> & co", "virginica": "virginica|v"}


def retrain(data_file: Path, model_file: Path, *args: str) -> None:
    args = ("--data", str(data_file), "--model-name", str(model_file), *args)
    result = CliRunner().invoke(cli, ["retrain", "--task", "classification", *args])
    assert result.exit_code == 0, result.output


def write_card(model_file: Path, *args: str):
    return CliRunner().invoke(cli, ["card", *args], env={"MODEL_PATH": str(model_file)})


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> tuple[Path, Path]:
    """A logistic regression of breast_cancer's diagnosis: (model file, data file)."""
    folder = tmp_path_factory.mktemp("cancer-card")
    cancer_frame().to_csv(folder / "cancer.csv", index=False)
    retrain(folder / "cancer.csv", folder / "model.joblib", "--target", "diagnosis",
            "--features", ",".join(CANCER_FEATURES), "--positive-class", "malignant",
            "--baseline-features", "mean_radius")  # fmt: skip
    return folder / "model.joblib", folder / "cancer.csv"


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> tuple[Path, Path]:
    """A gradient-boosted iris classifier whose labels need escaping: (model file, data file)."""
    folder = tmp_path_factory.mktemp("iris-card")
    flowers = iris_frame()
    flowers["species"] = flowers["species"].map(FLOWERS)
    flowers.to_csv(folder / "iris.csv", index=False)
    retrain(folder / "iris.csv", folder / "model.joblib", "--target", "species", "--features",
            ",".join(IRIS_FEATURES), "--estimator", "hist-gradient-boosting",
            "--tsize", "0.3")  # fmt: skip
    return folder / "model.joblib", folder / "iris.csv"


def pictures(card: Path) -> dict[str, Path]:
    return {
        name: card.with_name(f"{card.stem}.{name}.svg") for name in ("reliability", "confusion")
    }


def svg_texts(path: Path) -> list[str]:
    """Return the texts drawn in an SVG file (parsing it proves it is well-formed XML)."""
    return [element.text for element in ET.parse(path).getroot().iter(f"{SVG}text")]


def test_a_binary_card_shows_its_rule_metrics_baseline_and_set(binary):
    model_file, _data = binary
    result = write_card(model_file)
    assert result.exit_code == 0, result.output
    card_file = model_file.with_name("MODEL_CARD.md")
    assert str(pictures(card_file)["reliability"]) in result.output
    card = card_file.read_text(encoding="utf-8")
    metadata = mlib.verified_metadata(model_file)
    held_out, golden = metadata["metrics"]["held_out"], metadata["metrics"]["golden"]
    assert ("- Predicts `diagnosis`, one of `benign`, `malignant` (binary), from `mean_radius`, "
            "`mean_texture`, `mean_concavity`, `mean_smoothness`: answers `malignant` when its "
            "probability is at least 0.5, else `benign`") in card  # fmt: skip
    assert "- Served as p(`malignant`) = logistic(" in card  # the second class's log-odds
    assert "| Rows | Count | Log loss | Brier | Accuracy | ROC AUC | ECE |" in card
    row = (f"| Held-out rows of the training data | {held_out['rows']} | {held_out['log_loss']:.4f}"
           f" | {held_out['brier']:.4f} | {held_out['accuracy']:.3f} | {held_out['roc_auc']:.3f}"
           f" | {held_out['ece']:.3f} |")  # fmt: skip
    assert row in card and f"| Golden evaluation set | {golden['rows']} |" in card
    baseline = metadata["metrics"]["baselines"]["logistic-regression(mean_radius)"]
    assert (f"| Baseline: logistic regression on `mean_radius`, same rows | {baseline['rows']} "
            f"| {baseline['log_loss']:.4f} |") in card  # fmt: skip
    calibration = metadata["prediction_set"]
    floor = 1 - calibration["quantile"]
    assert (f"carries a `set` of the classes whose probability is at least {floor:.4f}, "
            "meant to hold the true class for 90.0%") in card  # fmt: skip
    assert f"- Held-out coverage: {calibration['held_out_coverage']:.1%}" in card
    assert f"- Golden-set coverage: {calibration['golden_coverage']:.1%}" in card
    assert "![Reliability diagram" in card and "](MODEL_CARD.reliability.svg)" in card
    assert "](MODEL_CARD.confusion.svg)" in card
    assert "R²" not in card and "Prediction interval" not in card


def test_the_pictures_are_the_held_out_rows_own(binary):
    model_file, data_file = binary
    assert write_card(model_file).exit_code == 0
    metadata = mlib.verified_metadata(model_file)
    rows = training.held_out_rows(data_file, model_spec.ModelSpec.of_metadata(metadata))
    schema = mlib.load_predictor(model_file).schema
    probabilities = estimator_outputs(load_estimator(model_file), rows[CANCER_FEATURES], schema)
    computed = class_scoring.diagnostics_of(schema.target, rows["diagnosis"].tolist(),
                                            probabilities)  # fmt: skip
    stored = metadata["diagnostics"]
    assert stored == json.loads(json.dumps(computed))
    matrix = np.array(stored["confusion"])
    assert matrix.sum() == stored["rows"] == len(rows) == metadata["metrics"]["held_out"]["rows"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(
        metadata["metrics"]["held_out"]["accuracy"]
    )

    card_file = model_file.with_name("MODEL_CARD.md")
    reliability = svg_texts(pictures(card_file)["reliability"])
    ece = metadata["metrics"]["held_out"]["ece"]
    assert f"Reliability on {len(rows)} held-out rows: ECE {ece:.3f}" in reliability
    # Each bin's rows are written at its foot; together they are every held-out row.
    assert sum(int(t) for t in reliability if t.isdigit()) == len(rows)
    confusion = svg_texts(pictures(card_file)["confusion"])
    assert [int(t) for t in confusion if t.isdigit()] == matrix.ravel().tolist()
    card = card_file.read_text(encoding="utf-8")
    assert f"| `benign` | {matrix[0, 0]} | {matrix[0, 1]} |" in card


def test_a_multiclass_card_escapes_its_labels_in_markdown_and_svg(multiclass):
    model_file, _data = multiclass
    assert write_card(model_file).exit_code == 0
    card_file = model_file.with_name("MODEL_CARD.md")
    card = card_file.read_text(encoding="utf-8")
    assert "(multiclass)" in card and "answers the most probable class" in card
    assert "ROC AUC:" not in card and "| n/a |" in card  # no AUC for three classes
    assert "Served from `model.onnx` by onnxruntime" in card
    assert "| true \\ answered | `setosa` | `versi<color> & co` | `virginica\\|v` |" in card
    confusion = svg_texts(pictures(card_file)["confusion"])
    assert "versi<color> & co" in confusion and "virginica|v" in confusion  # escaped, parsed back
    assert len([t for t in confusion if t.isdigit()]) == 9


def test_the_pictures_are_the_same_bytes_every_time_and_go_beside_the_card(binary, tmp_path):
    model_file, _data = binary
    first = tmp_path / "first" / "card.md"
    first.parent.mkdir()
    assert write_card(model_file, "--output", str(first)).exit_code == 0
    assert "](card.reliability.svg)" in first.read_text(encoding="utf-8")
    assert write_card(model_file).exit_code == 0
    for name, path in pictures(first).items():
        assert (
            path.read_bytes() == pictures(model_file.with_name("MODEL_CARD.md"))[name].read_bytes()
        )
    on_stdout = write_card(model_file, "--output", "-")
    assert on_stdout.exit_code == 0
    assert on_stdout.output == modelcard.render_card(mlib.verified_metadata(model_file))
    assert "](MODEL_CARD.reliability.svg)" in on_stdout.output


def test_a_regression_card_written_over_a_classifiers_removes_its_pictures(binary, trained_model,
                                                                          tmp_path):  # fmt: skip
    model_file, _data = binary
    card_file = tmp_path / "MODEL_CARD.md"
    assert write_card(model_file, "--output", str(card_file)).exit_code == 0
    assert all(path.is_file() for path in pictures(card_file).values())
    result = write_card(trained_model, "--output", str(card_file))
    assert result.exit_code == 0
    assert not any(path.exists() for path in pictures(card_file).values())
    assert not any(str(path) in result.output for path in pictures(card_file).values())
    assert "R²" in card_file.read_text(encoding="utf-8")


def test_a_classifier_saved_before_diagnostics_has_no_pictures_and_says_why(binary, tmp_path):
    model_file, _data = binary
    for suffix in (".joblib", ".json"):
        shutil.copy2(model_file.with_suffix(suffix), tmp_path / f"model{suffix}")
    older = tmp_path / "model.joblib"
    metadata = json.loads(older.with_suffix(".json").read_text())
    del metadata["diagnostics"]  # model.json is not hashed: the pair still verifies
    older.with_suffix(".json").write_text(json.dumps(metadata))
    assert write_card(older).exit_code == 0
    card = (tmp_path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "retrain to draw them" in card
    assert not any(
        f"{path.name})" in card or path.exists()
        for path in pictures(tmp_path / "MODEL_CARD.md").values()
    )


def test_a_card_that_cannot_be_written_is_one_line(binary, tmp_path):
    model_file, _data = binary
    (tmp_path / "a-file").write_text("not a folder")
    result = write_card(model_file, "--output", str(tmp_path / "a-file" / "card.md"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: Cannot write ") and result.output.count("\n") == 1
