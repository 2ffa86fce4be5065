"""mlib: validation, formatting, folding, training, verification and atomic writes."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from helpers import ANSWER_180_LBS, ANSWER_200_LBS, TRAINING_ROWS, break_model

import mlib
from cookbook.core.files import sha256_file
from cookbook.core.loading import installed_version, schema_of
from cookbook.core.psi import PSI_ALERT, bin_index, drift_verdict, psi_from_counts
from cookbook.core.validation import validate_number
from cookbook.lifecycle.artifacts import save_model
from cookbook.lifecycle.folding import fold_linear
from cookbook.lifecycle.model_spec import ModelSpec
from cookbook.lifecycle.training import load_labelled
from cookbook.lifecycle.vectorized import predict_frame


@pytest.fixture(scope="module")
def weight_feature(trained_model):
    """The Weight feature of the trained model's schema: what requests are checked against."""
    return schema_of(mlib.read_metadata(trained_model)).feature("Weight")


def weight_feature_of(metadata):
    """Return the Weight feature as ``model.json`` stores it."""
    (feature,) = [f for f in metadata["schema"]["features"] if f["name"] == "Weight"]
    return feature


@pytest.mark.parametrize("weight", [1, 150, 200.5, 1000, np.float64(180), np.int64(200)])
def test_validate_weight_accepts_real_numbers(weight_feature, weight):
    assert validate_number(weight_feature, weight) == float(weight)


@pytest.mark.parametrize(
    ("weight", "words"),
    [
        ("200", "number of pounds, got a string"),
        (None, "got null"),
        (True, "got a boolean"),
        ([200], "got a list"),
        ({"lbs": 200}, "got an object"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (10**400, "finite"),
        (0, "greater than 0"),
        (-5, "greater than 0"),
        (1000.001, "at most 1000"),
    ],
)
def test_validate_weight_rejects_with_a_reason(weight_feature, weight, words):
    with pytest.raises(mlib.InvalidWeight, match=words):
        validate_number(weight_feature, weight)


@pytest.mark.parametrize(
    ("inches", "text"),
    [
        (71.5, "6 foot, 0 inches"),
        (71.9, "6 foot, 0 inches"),
        (71.4, "5 foot, 11 inches"),
        (70.5, "5 foot, 11 inches"),
        (72.0, "6 foot, 0 inches"),
        (73.61, "6 foot, 2 inches"),
        (83.5, "7 foot, 0 inches"),
        (60.0, "5 foot, 0 inches"),
    ],
)
def test_height_human_rounds_once(inches, text):
    assert mlib.height_human(inches) == text


def test_human_readable_payload_takes_the_cookbook_arrays():
    assert mlib.human_readable_payload(np.array([[73.61105]])) == {
        "height_inches": 73.6,
        "height_human_readable": "6 foot, 2 inches",
    }


def test_training_writes_the_pair_with_full_metadata(trained_model, data_file):
    metadata = json.loads(mlib.metadata_path(trained_model).read_text())
    assert metadata["model_sha256"] == sha256_file(trained_model)
    assert metadata["model_version"] == metadata["model_sha256"][:12]
    assert metadata["data"]["sha256"] == sha256_file(data_file)
    assert metadata["data"]["rows"] == TRAINING_ROWS
    assert metadata["data"]["rows_train"] + metadata["data"]["rows_test"] == TRAINING_ROWS
    assert set(metadata["libraries"]) == {"python", "numpy", "scikit-learn", "joblib"}
    schema = metadata["schema"]
    assert [f["name"] for f in schema["features"]] == ["Weight"]
    assert schema["target"]["name"] == "Height"
    weight = weight_feature_of(metadata)
    stats = weight["stats"]
    assert stats["min"] < stats["quantiles"]["p50"] < stats["max"]
    assert weight["unit"] == "lb"
    assert weight["training_range"] == [stats["min"], stats["max"]]
    held_out = metadata["metrics"]["held_out"]
    assert 0.1 < held_out["r2"] < 0.3 and 1.5 < held_out["rmse"] < 2.5
    assert sum(weight["histogram"]["counts"]) == metadata["data"]["rows_train"]
    assert metadata["chart"]["feature"] == "Weight"
    assert sum(b["count"] for b in metadata["chart"]["bins"]) == TRAINING_ROWS


def test_estimator_holds_every_step(trained_model):
    estimator = mlib.load_model(trained_model)
    names = [type(step).__name__ for _, step in estimator.regressor_.steps]
    assert type(estimator).__name__ == "TransformedTargetRegressor"
    assert names == ["StandardScaler", "Ridge"]
    assert type(estimator.transformer_).__name__ == "StandardScaler"


def test_folded_line_equals_the_estimator_everywhere(trained_model):
    estimator = mlib.load_model(trained_model)
    predictor = mlib.load_predictor(trained_model)
    assert predictor.is_folded
    weights = np.concatenate(
        [np.linspace(1e-3, 1000, 50_001), np.random.default_rng(0).uniform(0, 1000, 10_000)]
    )
    expected = estimator.predict(pd.DataFrame({"Weight": weights}))
    folded = predict_frame(predictor, pd.DataFrame({"Weight": weights}))
    assert np.max(np.abs(folded - expected) / np.abs(expected)) <= 1e-9
    single = np.array([predictor.predict_row((float(w),)) for w in weights[::97]])
    assert np.max(np.abs(single - expected[::97]) / np.abs(expected[::97])) <= 1e-9


def save_tree(folder, data_file, trained_model, *, log_target=False):
    """Save a decision tree (a model that cannot fold) beside *trained_model*'s schema.

    With *log_target* it learns the log of the target (a TransformedTargetRegressor, which
    skl2onnx cannot convert), so it has no ONNX form either.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.tree import DecisionTreeRegressor

    frame = mlib.data(data_file)
    tree = DecisionTreeRegressor(max_depth=3, random_state=0)
    if log_target:
        tree = TransformedTargetRegressor(tree, func=np.log, inverse_func=np.exp)
    tree = tree.fit(frame[["Weight"]], frame["Height"])
    meta = json.loads(mlib.metadata_path(trained_model).read_text())
    assert fold_linear(tree, schema_of(meta)) is None
    model_file = folder / "tree.joblib"
    for key in ("model_version", "model_file", "model_sha256"):
        meta.pop(key)
    meta["folded"] = None
    save_model(tree, meta, model_file)
    return model_file


def test_an_estimator_that_cannot_fold_is_served_from_its_onnx_form(
    tmp_path, data_file, trained_model
):
    model_file = save_tree(tmp_path, data_file, trained_model)
    meta = json.loads(mlib.metadata_path(model_file).read_text())
    assert meta["serving"] == {"form": "onnx"}
    assert meta["onnx"]["file"] == "tree.onnx" and model_file.with_suffix(".onnx").is_file()
    predictor = mlib.load_predictor(model_file)
    assert not predictor.is_folded and type(predictor).__name__ == "OnnxPredictor"
    rows = pd.DataFrame({"Weight": [180.0, 250.0]})
    expected = mlib.load_model(model_file).predict(rows)
    tolerance = meta["onnx"]["parity"]["tolerance"]
    assert np.max(np.abs(predict_frame(predictor, rows) - expected)) <= tolerance
    assert predictor.prediction({"Weight": 180})["height_inches"] == round(float(expected[0]), 1)


def test_an_estimator_without_an_onnx_form_is_served_unpickled(tmp_path, data_file, trained_model):
    model_file = save_tree(tmp_path, data_file, trained_model, log_target=True)
    meta = json.loads(mlib.metadata_path(model_file).read_text())
    assert meta["serving"]["form"] == "joblib" and "TransformedTargetRegressor" in str(
        meta["serving"]["reason"]
    )
    assert "onnx" not in meta and not model_file.with_suffix(".onnx").exists()
    predictor = mlib.load_predictor(model_file)
    assert not predictor.is_folded and type(predictor).__name__ == "EstimatorPredictor"
    rows = pd.DataFrame({"Weight": [180.0, 250.0]})
    expected = mlib.load_model(model_file).predict(rows)
    assert predict_frame(predictor, rows).tolist() == expected.tolist()


def test_batch_matches_single_predictions(trained_model):
    predictor = mlib.load_predictor(trained_model)
    weights = [150, 180.5, 200, 290, 999]
    batch = predictor.answer({"Weight": weights})["predictions"]
    assert batch == [predictor.prediction({"Weight": w}) for w in weights]


def test_batch_names_the_bad_weight(trained_model):
    predictor = mlib.load_predictor(trained_model)
    with pytest.raises(mlib.InvalidWeight, match=r"Weight\[2\]"):
        predictor.answer({"Weight": [180, 200, "x"]})


def test_extrapolation_carries_a_warning(trained_model):
    predictor = mlib.load_predictor(trained_model)
    low, high = predictor.schema.feature("Weight").training_range
    assert "warning" not in predictor.prediction({"Weight": (low + high) / 2})
    assert "extrapolation" in predictor.prediction({"Weight": high + 1})["warning"]
    assert "extrapolation" in predictor.prediction({"Weight": low - 1})["warning"]


class RunsACommand:
    """A pickle whose unpickling would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_tampered_model_is_refused_and_never_unpickled(model_copy, tmp_path):
    marker = tmp_path / "pwned"
    model_copy.write_bytes(pickle.dumps(RunsACommand(marker)))
    for load in (mlib.load_model, mlib.load_predictor):
        with pytest.raises(mlib.ModelError, match="does not match its metadata"):
            load(model_copy)
    assert not marker.exists()


def with_sklearn(model_file, version):
    meta_file = mlib.metadata_path(model_file)
    meta = json.loads(meta_file.read_text())
    meta["libraries"]["scikit-learn"] = version
    meta_file.write_text(json.dumps(meta))


def test_a_pickle_from_another_scikit_learn_is_not_unpickled(model_copy):
    with_sklearn(model_copy, "0.24.2")
    with pytest.raises(mlib.ModelError, match=r"scikit-learn 0\.24\.2 .* retrain"):
        mlib.load_model(model_copy)


def test_a_folded_model_from_another_scikit_learn_is_served(model_copy):
    # Its folded form is plain numbers: no pickle is loaded, so the version cannot matter.
    expected = mlib.load_predictor(model_copy).prediction({"Weight": 200})
    with_sklearn(model_copy, "0.24.2")
    predictor = mlib.load_predictor(model_copy)
    assert predictor.is_folded and predictor.prediction({"Weight": 200}) == expected


def test_an_unfolded_model_from_another_scikit_learn_is_refused(tmp_path, data_file, trained_model):
    model_file = save_tree(tmp_path, data_file, trained_model, log_target=True)
    with_sklearn(model_file, "0.24.2")
    with pytest.raises(mlib.ModelError, match=r"scikit-learn 0\.24\.2"):
        mlib.load_predictor(model_file)


def test_an_onnx_model_from_another_scikit_learn_is_served(tmp_path, data_file, trained_model):
    model_file = save_tree(tmp_path, data_file, trained_model)
    with_sklearn(model_file, "0.24.2")  # nothing is unpickled: the ONNX file serves it
    assert mlib.load_predictor(model_file).prediction({"Weight": 200})["height_inches"] > 60


def test_installed_version_reads_the_wheel_metadata():
    import sklearn

    assert installed_version("scikit-learn") == sklearn.__version__
    assert installed_version("no-such-distribution") is None


@pytest.mark.parametrize(
    "fault", ["missing", "directory", "empty", "truncated", "metadata missing"]
)
def test_broken_model_files_are_one_line_errors(model_copy, fault):
    with pytest.raises(mlib.ModelError) as caught:
        mlib.load_predictor(break_model(model_copy, fault))
    assert "\n" not in str(caught.value)


def test_a_version_1_model_json_without_a_schema_is_refused(model_copy):
    # The v1 loader is gone (docs/changelog.md, "Removed"): such metadata, with its folded
    # slope and weight histogram but no schema, is refused in one line, never guessed at.
    metadata_file = model_copy.with_suffix(".json")
    metadata = json.loads(metadata_file.read_text())
    del metadata["schema"]
    metadata["slope"], metadata["weight_histogram"] = 0.1, {"edges": [0, 1], "counts": [1]}
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(mlib.ModelError, match="lacks required fields") as caught:
        mlib.load_predictor(model_copy)
    assert "\n" not in str(caught.value)


def test_a_failed_save_leaves_the_old_pair_untouched(model_copy, monkeypatch, data_file):
    import joblib

    before = {p.name: p.read_bytes() for p in model_copy.parent.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        mlib.train(data_file, model_copy)
    after = {p.name: p.read_bytes() for p in model_copy.parent.iterdir()}
    assert after == before  # same files, same bytes, no temporary left behind


def test_retraining_the_same_data_gives_the_same_version(trained_model, data_file, tmp_path):
    report = mlib.train(data_file, tmp_path / "again.joblib")
    assert (
        report.version == json.loads(mlib.metadata_path(trained_model).read_text())["model_version"]
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "is empty"),
        ("Weight,Age\n200,30\n", "lacks column.*Height"),
        ("Weight,Height\n200,tall\n", "column Height must be numeric, found 'tall'"),
        ("Weight,Height\n,70\n", "no rows with all of Weight, Height"),
        ('Weight,Height\n"200,70\n', "not a valid CSV"),
    ],
)
def test_bad_training_data_is_a_clear_error(tmp_path, content, words):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(mlib.DataError, match=words):
        load_labelled(csv, ModelSpec())


def test_missing_values_are_dropped_and_counted(tmp_path):
    csv = tmp_path / "gaps.csv"
    csv.write_text("Weight,Height,Position\n200,74,C\n,72,C\n180,,P\n190,73,P\n")
    frame, dropped = load_labelled(csv, ModelSpec())
    assert (len(frame), dropped) == (2, 2)


def test_cookbook_functions_give_the_cookbook_answers(model_copy, monkeypatch, tmp_path, data_file):
    monkeypatch.setenv("MODEL_PATH", str(model_copy))
    monkeypatch.setenv("DATA_PATH", str(data_file))
    mlib.forget_loaded_models()
    one = np.array(1).reshape(-1, 1)
    assert mlib.format_input(2).shape == one.shape
    # The cookbook's int(array([[x]])) no longer works on numpy 2; .item() is the same check.
    scaled = mlib.scale_input(one)
    assert scaled.shape == (1, 1) and int(scaled.item()) == -9
    assert scaled.item() == pytest.approx(-9.5, abs=0.1)
    assert mlib.scale_target([[0.0]]).shape == (1, 1)
    assert mlib.predict(200) == ANSWER_200_LBS
    assert mlib.predict(180)["height_human_readable"] == "6 foot, 0 inches"
    assert mlib.data().shape[0] == TRAINING_ROWS
    score, name = mlib.retrain(tsize=0.1, model_name=tmp_path / "retrained.joblib")
    assert 0.1 < score < 0.3 and name == str(tmp_path / "retrained.joblib")
    batch = pd.DataFrame({"Weight": [180, 200]})
    assert predict_frame(mlib.default_predictor(), batch).shape == (2,)
    assert [p["height_inches"] for p in mlib.predict_batch([180, 200])] == [
        ANSWER_180_LBS["height_inches"],
        ANSWER_200_LBS["height_inches"],
    ]
    mlib.forget_loaded_models()


def test_psi_is_zero_for_the_training_distribution_and_grows_with_shift(trained_model):
    histogram = weight_feature_of(mlib.read_metadata(trained_model))["histogram"]
    edges, counts = histogram["edges"], histogram["counts"]
    assert psi_from_counts(counts, counts) == 0.0
    assert drift_verdict(0.0) == "ok"
    shifted = [0] * len(counts)
    shifted[bin_index(1000, edges)] = 100  # everything beyond the last edge
    assert bin_index(1, edges) == 0
    psi = psi_from_counts(counts, shifted)
    assert psi > PSI_ALERT and drift_verdict(psi) == "alert"
    assert drift_verdict(0.15) == "warn"
