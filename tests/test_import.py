"""`utilscli.py models import`: a model fitted elsewhere, checked on labelled rows it did not
learn from, written as a verified pair that serves the estimator's own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import DATA, run_script

import mlib
from app import create_app
from cookbook.core.errors import ModelError
from cookbook.lifecycle import artifacts, registry, training
from cookbook.lifecycle.vectorized import predict_frame
from utilscli import cli


def invoke(model: Path, *args: str):
    return CliRunner().invoke(cli, list(args), env={"MODEL_PATH": str(model)})


def import_args(fitted: Path, data: Path, model: Path, *extra: str) -> list[str]:
    return ["models", "import", str(fitted), "--data", str(data), "--target", "target",
            "--model-name", str(model), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """The diabetes data split in two: rows to fit on, and rows given at import (a CSV)."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    folder = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True).frame
    fit_rows, given_rows = train_test_split(frame, test_size=0.25, random_state=0)
    given = folder / "given.csv"
    given_rows.to_csv(given, index=False)
    return folder, fit_rows, given


def fitted(folder: Path, name: str, estimator, rows) -> Path:
    """Fit *estimator* on *rows* and dump it to *folder*/*name*.joblib; return the path."""
    x, y = rows.drop(columns="target"), rows["target"]
    path = folder / f"{name}.joblib"
    joblib.dump(estimator.fit(x, y), path)
    return path


@pytest.fixture(scope="module")
def forest(diabetes):
    from sklearn.ensemble import RandomForestRegressor

    folder, rows, _given = diabetes
    return fitted(folder, "forest", RandomForestRegressor(n_estimators=20, random_state=0), rows)


@pytest.fixture(scope="module")
def ridge(diabetes):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder, rows, _given = diabetes
    return fitted(folder, "ridge", make_pipeline(StandardScaler(), Ridge(alpha=0.5)), rows)


def own_predictions(fitted_file: Path, data: Path) -> np.ndarray:
    estimator = joblib.load(fitted_file)
    frame = pd.read_csv(data)
    return estimator.predict(frame[list(estimator.feature_names_in_)])


def written(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_an_imported_forest_serves_its_own_predictions(tmp_path, diabetes, forest):
    _folder, _rows, given = diabetes
    model = tmp_path / "served" / "model.joblib"
    result = invoke(model, *import_args(forest, given, model))
    assert result.exit_code == 0, result.output
    assert "Promoted: " in result.output and "Rows given:    111" in result.output
    predictor = mlib.load_predictor(model)
    frame = pd.read_csv(given)
    expected = own_predictions(forest, given)
    metadata = json.loads(model.with_suffix(".json").read_text())
    # Served from its ONNX form: the estimator's own numbers, within the parity it passed.
    assert metadata["serving"]["form"] == "onnx"
    assert np.allclose(predict_frame(predictor, frame), expected, rtol=0,
                       atol=metadata["onnx"]["parity"]["tolerance"])  # fmt: skip
    assert metadata["folded"] is None and metadata["origin"]["file"] == "forest.joblib"
    assert metadata["schema"]["target"]["name"] == "target"
    assert [f["name"] for f in metadata["schema"]["features"]] == list(frame.columns[:-1])
    assert metadata["interval"]["calibration"] == "rows given at import"
    assert metadata["metrics"]["held_out"]["rows"] == metadata["metrics"]["golden"]["rows"] == 111
    pin = json.loads((model.parent / "models" / "golden.json").read_text())
    assert pin["kind"] == "import" and pin["source_file"] == "given.csv" and pin["rows"] == 111
    client = create_app({"MODEL_PATH": str(model), "TESTING": True}).test_client()
    response = client.post("/predict", json=frame.drop(columns="target").iloc[:3].to_dict("list"))
    assert response.status_code == 200, response.get_json()
    answers = [answer["target"] for answer in response.get_json()["predictions"]]
    assert answers == pytest.approx(expected[:3], abs=0.01)  # answers are rounded to 2 places


def test_ct_refuses_an_imported_model_in_one_line(tmp_path, diabetes, forest):
    _folder, _rows, given = diabetes
    model = tmp_path / "model.joblib"
    assert invoke(model, *import_args(forest, given, model)).exit_code == 0
    before = model.read_bytes(), model.with_suffix(".json").read_bytes()
    result = invoke(model, "ct", "--data-url", given.as_uri(), "--force",
                    "--pr-file", str(tmp_path / "pr.md"))  # fmt: skip
    assert result.exit_code == 4, result.output
    verdict = result.output.strip().splitlines()[-1]
    assert verdict.startswith("Refused: ct cannot retrain the served model: Model ")
    assert "was imported (fitted elsewhere)" in verdict and not verdict.endswith("..")
    assert (model.read_bytes(), model.with_suffix(".json").read_bytes()) == before
    assert not (tmp_path / "pr.md").exists()


def test_the_card_says_the_golden_set_is_the_data_given(tmp_path, diabetes, forest):
    _folder, _rows, given = diabetes
    model = tmp_path / "model.joblib"
    assert invoke(model, *import_args(forest, given, model)).exit_code == 0
    card = invoke(model, "card", "--output", "-")
    assert card.exit_code == 0, card.output
    assert "golden set: the data given at import, rows the model did not learn from" in card.output
    assert "imported from `forest.joblib`" in card.output
    assert "No baseline: the model was fitted elsewhere" in card.output
    assert "baselines" not in mlib.read_metadata(model)["metrics"]


def test_an_imported_ridge_pipeline_is_folded_and_reproduces_itself(tmp_path, diabetes, ridge):
    _folder, _rows, given = diabetes
    model = tmp_path / "model.joblib"
    result = invoke(model, *import_args(ridge, given, model, "--features",
                                        "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"))  # fmt: skip
    assert result.exit_code == 0, result.output
    predictor = mlib.load_predictor(model)
    assert predictor.linear is not None  # served from plain numbers, never unpickled
    expected = own_predictions(ridge, given)
    assert np.allclose(predict_frame(predictor, pd.read_csv(given)), expected, rtol=1e-9)


def test_a_model_of_a_category_and_a_number_is_imported_from_the_mlb_data(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.read_csv(DATA)[["Weight", "Position", "Height"]].dropna()
    fit_rows, given_rows = train_test_split(frame, test_size=0.2, random_state=1)
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    encode = ColumnTransformer([("position", one_hot, ["Position"])], remainder="passthrough")
    estimator = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=30, random_state=0))
    estimator.fit(fit_rows[["Weight", "Position"]], fit_rows["Height"])
    fitted_file, given = tmp_path / "boosted.joblib", tmp_path / "given.csv"
    joblib.dump(estimator, fitted_file)
    given_rows.to_csv(given, index=False)
    model = tmp_path / "served" / "model.joblib"
    args = ["models", "import", str(fitted_file), "--data", str(given), "--target", "Height",
            "--model-name", str(model)]  # fmt: skip
    result = invoke(model, *args)
    assert result.exit_code == 0, result.output
    schema = json.loads(model.with_suffix(".json").read_text())["schema"]
    assert [f.get("categories") is not None for f in schema["features"]] == [False, True]
    expected = estimator.predict(given_rows[["Weight", "Position"]])
    tolerance = json.loads(model.with_suffix(".json").read_text())["onnx"]["parity"]["tolerance"]
    assert np.allclose(predict_frame(mlib.load_predictor(model), given_rows), expected, rtol=0,
                       atol=tolerance)  # fmt: skip
    client = create_app({"MODEL_PATH": str(model), "TESTING": True}).test_client()
    response = client.post("/predict", json={"Weight": 200, "Position": "Catcher"})
    assert response.status_code == 200, response.get_json()
    own = estimator.predict(pd.DataFrame({"Weight": [200], "Position": ["Catcher"]}))[0]
    assert response.get_json()["prediction"]["height_inches"] == round(own, 1)


LIGHTGBM_COLUMNS = ["age", "bmi", "bp", "s5"]


@pytest.mark.parametrize("shape", ["bare", "pipeline"])
def test_an_imported_lgbm_regressor_is_served_from_onnx(tmp_path, diabetes, shape):
    from lightgbm import LGBMRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _folder, rows, given = diabetes
    estimator = LGBMRegressor(n_estimators=50, random_state=0, verbose=-1)
    if shape == "pipeline":
        estimator = make_pipeline(StandardScaler(), estimator)
    fitted_file = fitted(tmp_path, "lgbm", estimator, rows[[*LIGHTGBM_COLUMNS, "target"]])
    model = tmp_path / "served" / "model.joblib"
    result = invoke(model, *import_args(fitted_file, given, model))
    assert result.exit_code == 0, result.output
    metadata = mlib.read_metadata(model)
    assert [f["name"] for f in metadata["schema"]["features"]] == LIGHTGBM_COLUMNS
    summary = {"bare": "LGBMRegressor", "pipeline": "Pipeline(StandardScaler -> LGBMRegressor)"}
    assert metadata["estimator"] == summary[shape]
    assert metadata["serving"] == {"form": "onnx"} and model.with_suffix(".onnx").is_file()
    assert "onnxmltools" in metadata["onnx"]["converter"]  # LightGBM's own converter
    parity = metadata["onnx"]["parity"]
    assert parity["held_out_rows"] == 111 and parity["max_abs_difference"] <= parity["tolerance"]
    predictor = mlib.load_predictor(model)
    assert type(predictor).__name__ == "OnnxPredictor"
    assert np.allclose(predict_frame(predictor, pd.read_csv(given)),
                       own_predictions(fitted_file, given), rtol=0,
                       atol=parity["tolerance"])  # fmt: skip


def test_the_import_runs_in_a_real_process(tmp_path, diabetes, forest):
    _folder, _rows, given = diabetes
    model = tmp_path / "model.joblib"
    result = run_script("utilscli.py", *import_args(forest, given, model, "--json"), env={})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["promoted"] and report["model_version"] == mlib.load_predictor(model).version


# ------------------------------------------------------------------ refusals


def no_predict(folder: Path) -> Path:
    path = folder / "settings.joblib"
    joblib.dump({"alpha": 1.0}, path)
    return path


def other_columns(folder: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    path = folder / "unnamed.joblib"  # fitted on an array of three columns: no feature names
    joblib.dump(LinearRegression().fit(np.arange(30.0).reshape(10, 3), np.arange(10.0)), path)
    return path


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("a CSV, not joblib", "is not a joblib file of a fitted estimator"),
        ("joblib of a dict", "holds a dict, not an estimator that predicts"),
        ("cannot predict", "cannot predict the rows of"),
        ("a column missing", "lacks column(s) bmi, s3"),
        ("the target missing", "(target) lacks column(s) target"),
        ("features not its own", "was fitted on age, sex"),
    ],
)
def test_each_refusal_is_one_line_and_writes_nothing(tmp_path, diabetes, forest, case, words):
    _folder, _rows, given = diabetes
    data, fitted_file, extra = given, forest, []
    frame = pd.read_csv(given)
    if case == "a CSV, not joblib":
        fitted_file = given
    elif case == "joblib of a dict":
        fitted_file = no_predict(tmp_path)
    elif case == "cannot predict":
        fitted_file, extra = other_columns(tmp_path), ["--features", "age,sex,bmi,bp"]
    elif case == "a column missing":
        data = tmp_path / "short.csv"
        frame.drop(columns=["bmi", "s3"]).to_csv(data, index=False)
    elif case == "the target missing":
        data = tmp_path / "unlabelled.csv"
        frame.drop(columns=["target"]).to_csv(data, index=False)
    else:
        extra = ["--features", "age,sex"]
    model = tmp_path / "served" / "model.joblib"
    result = CliRunner().invoke(cli, import_args(fitted_file, data, model, *extra))
    assert result.exit_code == 1
    assert words in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    if case in ("a column missing", "the target missing"):
        assert str(data) in result.stderr  # the file that lacks them is named
    assert written(tmp_path / "served") == []


def test_a_folded_form_that_is_not_the_models_own_is_refused(
    tmp_path, diabetes, ridge, monkeypatch
):
    _folder, _rows, given = diabetes
    real_fold = training.fold_linear

    def off_by_a_little(estimator, schema):
        form = real_fold(estimator, schema)
        return type(form)(form.intercept + 0.01, form.coefficients, form.offsets)

    monkeypatch.setattr(training, "fold_linear", off_by_a_little)
    model = tmp_path / "served" / "model.joblib"
    result = CliRunner().invoke(cli, import_args(ridge, given, model))
    assert result.exit_code == 1
    assert "The folded form does not reproduce the estimator" in result.stderr
    assert written(tmp_path / "served") == []


def test_save_model_refuses_a_folded_form_without_rows_to_check(tmp_path, ridge):
    metadata = {"folded": {"intercept": 0.0, "coefficients": {}, "offsets": {}}}
    with pytest.raises(ModelError, match="only with rows to check it against"):
        artifacts.save_model(joblib.load(ridge), metadata, tmp_path / "m.joblib")
    assert written(tmp_path) == []


# ------------------------------------------------------------------ the gate


def test_an_import_over_a_served_model_goes_through_the_gate(tmp_path, diabetes, ridge):
    from sklearn.dummy import DummyRegressor

    folder, rows, given = diabetes
    model = tmp_path / "model.joblib"
    assert invoke(model, *import_args(ridge, given, model)).exit_code == 0
    first = mlib.load_predictor(model).version
    mean = fitted(tmp_path, "mean", DummyRegressor(), rows)
    refused = invoke(model, *import_args(mean, given, model))
    assert refused.exit_code == 1 and "was not promoted" in refused.output
    assert "golden: rows given at import (given.csv)" in refused.output
    assert mlib.load_predictor(model).version == first
    store = registry.Registry(model)
    assert len(store.entries()) == 2 and store.history() == [first]
    forced = invoke(model, *import_args(mean, given, model, "--force"))
    assert forced.exit_code == 0 and "Promoted (forced)" in forced.output
    assert store.history()[-1] != first


def test_a_comparable_import_over_a_served_model_is_promoted(tmp_path, diabetes, ridge, forest):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder, rows, given = diabetes
    model = tmp_path / "model.joblib"
    assert invoke(model, *import_args(ridge, given, model)).exit_code == 0
    first = mlib.load_predictor(model).version
    other = fitted(tmp_path, "ridge2", make_pipeline(StandardScaler(), Ridge(alpha=0.6)), rows)
    result = invoke(model, *import_args(other, given, model))
    assert result.exit_code == 0, result.output
    assert f"against served {first}" in result.output and "Promoted: " in result.output
    assert registry.Registry(model).history() == [first, mlib.load_predictor(model).version]
