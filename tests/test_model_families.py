"""Every estimator family: trained by retrain, served from its ONNX form, through every capability.

The hist-gradient-boosting model is exercised on scikit-learn's bundled diabetes data and on
the MLB data (Weight, Age, Position): /predict, V2 infer, the page, batch scoring, evaluate,
drift, hot reload, the registry, the Lambda handler's refusal, and the worked example
``examples/height-gbm`` on the production server.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from helpers import COMMITTED_VERSION, run_script, start_server, stop, threaded_model

import mlib
from app import create_app
from cookbook.core.errors import MlibError, ModelError
from cookbook.lifecycle import gate, model_spec, modelcard, onnx_form, registry, training
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.lifecycle.vectorized import predict_frame
from cookbook.web import lambda_handler
from cookbook.web.served import service_state
from utilscli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "height-gbm" / "model.joblib"
DEMO = ROOT / "model.joblib"  # the cookbook's committed Ridge on Weight
TREES = list(model_spec.TREE_FAMILIES)
MLB_SPEC = model_spec.spec_for("Height", ("Weight", "Age"), ("Position",))
BEARER = {"Authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_diabetes

    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


def diabetes_spec(csv: Path) -> model_spec.ModelSpec:
    features = tuple(c for c in pd.read_csv(csv, nrows=1).columns if c != "target")
    return model_spec.ModelSpec("target", features)


@pytest.fixture(scope="module", params=["diabetes", "mlb"])
def boosted(request, tmp_path_factory, diabetes_csv, data_file):
    """A hist-gradient-boosting model on each data set: (model file, data file)."""
    csv, spec = (
        (diabetes_csv, diabetes_spec(diabetes_csv))
        if request.param == "diabetes"
        else (data_file, MLB_SPEC)
    )
    model_file = tmp_path_factory.mktemp(request.param) / "model.joblib"
    spec = dataclasses.replace(spec, estimator="hist-gradient-boosting")
    training.train(csv, model_file, spec=spec)
    return model_file, csv


def tolerance_of(model_file: Path) -> float:
    return mlib.read_metadata(model_file)["onnx"]["parity"]["tolerance"]


def sample(model_file: Path, csv: Path, rows: int = 5) -> pd.DataFrame:
    names = list(load_predictor(model_file).schema.feature_names)
    return pd.read_csv(csv)[names].head(rows)


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("family", model_spec.REGRESSORS)
def test_build_estimator_makes_one_pipeline_per_family_on_one_thread(family):
    spec = dataclasses.replace(MLB_SPEC, estimator=family)
    estimator = model_spec.build_estimator(spec)
    params = estimator.get_params()
    assert all(params[key] in (1, None) for key in params if key.endswith("n_jobs"))
    if family == model_spec.RIDGE:
        assert type(estimator).__name__ == "TransformedTargetRegressor"


def test_an_unknown_family_is_one_line():
    with pytest.raises(MlibError, match="Unknown estimator 'svm'"):
        model_spec.build_estimator(dataclasses.replace(MLB_SPEC, estimator="svm"))


@pytest.mark.parametrize("family", model_spec.REGRESSORS)
def test_retrain_trains_each_family_and_serves_trees_from_onnx(family, tmp_path, data_file):
    model_file = tmp_path / "model.joblib"
    result = CliRunner().invoke(cli, [
        "retrain", "--estimator", family, "--features", "Weight,Age", "--categorical",
        "Position", "--data", str(data_file), "--model-name", str(model_file), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["r2"] > 0.25 and report["rows"] == 104
    meta = mlib.read_metadata(model_file)
    assert meta["data"]["rows_test"] == 104 and meta["hyperparameters"]["random_state"] == 3
    predictor = load_predictor(model_file)
    if family == model_spec.RIDGE:
        assert predictor.is_folded and "serving" not in meta and "onnx" not in meta
        return
    assert meta["hyperparameters"]["estimator"] == family
    assert meta["serving"] == {"form": "onnx"} and meta["onnx"]["input_type"] == "float32"
    parity = meta["onnx"]["parity"]
    assert (parity["held_out_rows"], parity["training_rows"], parity["range_rows"]) == (
        104,
        929,
        2000,
    )
    assert parity["max_abs_difference"] <= parity["tolerance"]
    assert type(predictor).__name__ == "OnnxPredictor"
    # The registry entry carries the ONNX file too.
    entry = model_file.parent / "models" / meta["model_version"] / "model.onnx"
    assert entry.read_bytes() == model_file.with_suffix(".onnx").read_bytes()


def test_retrain_estimator_ridge_is_the_committed_model(tmp_path, data_file):
    model_file = tmp_path / "model.joblib"
    result = CliRunner().invoke(cli, [
        "retrain", "--estimator", "ridge", "--data", str(data_file),
        "--model-name", str(model_file), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_version"] == COMMITTED_VERSION


def test_ct_retrains_a_served_boosted_model_as_one_still_served_from_onnx(diabetes_csv, tmp_path):
    served = tmp_path / "deployment" / "model.joblib"
    spec = dataclasses.replace(diabetes_spec(diabetes_csv), estimator="hist-gradient-boosting")
    first = gate.retrain(diabetes_csv, served, spec=spec, baseline_features=[("bmi",)]).entry
    new_data = tmp_path / "new.csv"
    frame = pd.read_csv(diabetes_csv)
    frame.assign(target=frame["target"] + 5.0).to_csv(new_data, index=False)
    result = run_script("utilscli.py", "ct", "--data-url", new_data.as_uri(), "--force",
                        "--pr-file", str(tmp_path / "pr.md"),
                        env={"MODEL_PATH": str(served)})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    meta = mlib.read_metadata(served)
    assert meta["model_version"] != first.version
    assert meta["data"]["file"] == "new.csv"
    assert meta["hyperparameters"]["estimator"] == "hist-gradient-boosting"
    assert meta["serving"] == {"form": "onnx"}
    assert type(load_predictor(served)).__name__ == "OnnxPredictor"
    assert "HistGradientBoostingRegressor" in meta["estimator"]
    # The served model's baselines are scored again on the new data's split.
    everything = f"ridge({', '.join(spec.all_features)})"
    assert list(meta["metrics"]["baselines"]) == [everything, "ridge(bmi)"]
    assert meta["metrics"]["baselines"]["ridge(bmi)"]["rows"] == meta["data"]["rows_test"]


# ------------------------------------------------------------------ baselines


def retrain_json(csv: Path, model_file: Path, *args: str) -> dict:
    result = CliRunner().invoke(cli, [
        "retrain", "--data", str(csv), "--target", "target", "--model-name", str(model_file),
        "--json", *args,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_boosted_model_records_ridge_baselines_on_its_own_split(diabetes_csv, tmp_path):
    features = ",".join(diabetes_spec(diabetes_csv).features)
    boosted = tmp_path / "boosted" / "model.joblib"
    report = retrain_json(diabetes_csv, boosted, "--estimator", "hist-gradient-boosting",
                          "--features", features, "--baseline-features", "s5,bmi")  # fmt: skip
    baselines = mlib.read_metadata(boosted)["metrics"]["baselines"]
    assert report["baselines"] == baselines
    assert list(baselines) == [f"ridge({features.replace(',', ', ')})", "ridge(bmi, s5)"]
    # Each is the Ridge that `retrain --estimator ridge` trains on the same CSV and split.
    for index, (name, columns) in enumerate(zip(baselines, (features, "bmi,s5"), strict=True)):
        ridge = tmp_path / f"ridge-{index}" / "model.joblib"
        retrain_json(diabetes_csv, ridge, "--estimator", "ridge", "--features", columns)
        held_out = mlib.read_metadata(ridge)["metrics"]["held_out"]
        assert {k: v for k, v in baselines[name].items() if k != "features"} == pytest.approx(
            held_out, rel=1e-12
        )
        assert baselines[name]["features"] == columns.split(",")
    card = modelcard.render_card(mlib.read_metadata(boosted))
    bmi_s5 = baselines["ridge(bmi, s5)"]
    assert (
        f"| Baseline: Ridge on `bmi`, `s5`, same rows | 45 | {bmi_s5['r2']:.3f} "
        f"| {bmi_s5['rmse']:.2f} | {bmi_s5['mae']:.2f} |"
    ) in card
    assert "| Baseline: Ridge on `age`, `sex`, `bmi`," in card
    # The cookbook's Ridge records none of itself.
    ridge = tmp_path / "ridge" / "model.joblib"
    args = ("--estimator", "ridge", "--features", features, "--baseline-features", features)
    assert retrain_json(diabetes_csv, ridge, *args)["baselines"] == {}
    assert "Baseline" not in modelcard.render_card(mlib.read_metadata(ridge))


def test_a_baseline_of_a_column_the_model_does_not_learn_from_is_one_line(diabetes_csv, tmp_path):
    model_file = tmp_path / "served" / "model.joblib"
    result = CliRunner().invoke(cli, [
        "retrain", "--data", str(diabetes_csv), "--target", "target", "--features", "bmi,s5",
        "--estimator", "hist-gradient-boosting", "--baseline-features", "bmi,age",
        "--model-name", str(model_file),
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "Baseline features age are not among the model's features (bmi, s5)" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not model_file.parent.exists()


def test_a_retrain_to_the_same_version_keeps_the_entrys_own_onnx_file(
    diabetes_csv, tmp_path, monkeypatch
):
    import onnx

    features = ",".join(diabetes_spec(diabetes_csv).features)
    served = tmp_path / "model.joblib"
    args = ("--estimator", "hist-gradient-boosting", "--features", features)
    first = retrain_json(diabetes_csv, served, *args)["model_version"]
    onnx_bytes = served.with_suffix(".onnx").read_bytes()
    real_convert = onnx_form._convert

    def another_conversion(*convert_args):  # as a converter upgrade would: other bytes
        model = onnx.load_from_string(real_convert(*convert_args))
        model.graph.name = "another"
        return model.SerializeToString()

    monkeypatch.setattr(onnx_form, "_convert", another_conversion)
    again = retrain_json(diabetes_csv, served, *args, "--baseline-features", "bmi")
    assert again["model_version"] == first and again["baselines"]  # model.json is rewritten
    entry = served.parent / "models" / first / "model.joblib"
    for model_file in (served, entry):
        assert model_file.with_suffix(".onnx").read_bytes() == onnx_bytes
        assert type(load_predictor(model_file)).__name__ == "OnnxPredictor"
        assert "ridge(bmi)" in mlib.read_metadata(model_file)["metrics"]["baselines"]


def test_the_same_estimator_converts_to_the_same_onnx_bytes(boosted):
    model_file, _csv = boosted
    estimator, schema = load_estimator(model_file), load_predictor(model_file).schema
    convert = [onnx_form.convert(estimator, schema, target_std=1.0).data for _ in range(2)]
    assert convert[0] == convert[1]


def test_of_metadata_keeps_the_family_and_ridge_records_none(boosted, tmp_path, data_file):
    model_file, _ = boosted
    spec = model_spec.ModelSpec.of_metadata(mlib.read_metadata(model_file))
    assert spec.estimator == "hist-gradient-boosting"
    assert spec.columns == model_spec.ModelSpec.of_schema(load_predictor(model_file).schema).columns
    ridge = training.train(data_file, tmp_path / "ridge.joblib")
    assert model_spec.ModelSpec.of_metadata(ridge.metadata).estimator == model_spec.RIDGE


# ------------------------------------------------------------------ serving


def test_onnx_predictions_equal_the_estimators(boosted):
    model_file, csv = boosted
    rows = sample(model_file, csv, 200)
    expected = load_estimator(model_file).predict(rows)
    predictor = load_predictor(model_file)
    batch = predict_frame(predictor, rows)
    single = [predictor.predict_row(tuple(row)) for row in rows.itertuples(index=False)]
    assert np.max(np.abs(batch - expected)) <= tolerance_of(model_file)
    assert np.max(np.abs(np.array(single) - expected)) <= tolerance_of(model_file)


def test_a_bare_estimator_on_number_columns_is_served_from_one_matrix_input(tmp_path):
    model_file = threaded_model(tmp_path)
    meta = mlib.read_metadata(model_file)
    assert meta["serving"] == {"form": "onnx"} and meta["onnx"]["inputs"] == "matrix"
    assert meta["onnx"]["input_type"] == "float32"  # trees keep float32 thresholds
    assert meta["onnx"]["parity"]["training_rows"] == 442
    frame = pd.read_csv(tmp_path / "diabetes.csv").drop(columns="target")
    predictor = load_predictor(model_file)
    expected = load_estimator(model_file).predict(frame)
    single = [predictor.predict_row(tuple(row)) for row in frame.itertuples(index=False)]
    tolerance = meta["onnx"]["parity"]["tolerance"]
    assert np.max(np.abs(np.array(single) - expected)) <= tolerance
    assert np.max(np.abs(predict_frame(predictor, frame) - expected)) <= tolerance


def test_one_row_predictions_from_many_threads_stay_their_own(boosted):
    from concurrent.futures import ThreadPoolExecutor

    model_file, csv = boosted
    predictor = load_predictor(model_file)
    rows = [tuple(row) for row in sample(model_file, csv, 40).itertuples(index=False)]
    expected = predictor.predict_rows(rows)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(predictor.predict_row, rows * 25))
    assert got == pytest.approx(expected * 25, abs=1e-9)


def test_serving_neither_unpickles_nor_imports_sklearn(boosted):
    model_file, csv = boosted
    row = sample(model_file, csv, 1).iloc[0].to_dict()
    code = (
        "import json, sys\n"
        "from cookbook.lifecycle.artifacts import load_predictor\n"
        f"p = load_predictor({str(model_file)!r})\n"
        f"print(json.dumps(p.prediction({row!r})))\n"
        "print(sorted(m for m in ('sklearn', 'joblib', 'lightgbm') if m in sys.modules))"
    )
    result = run_script("-c", code, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_tampered_onnx_file_is_refused(boosted, tmp_path):
    model_file, _ = boosted
    for suffix in (".joblib", ".json", ".onnx"):
        shutil.copy2(model_file.with_suffix(suffix), tmp_path / f"m{suffix}")
    (tmp_path / "m.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="ONNX file .* does not match"):
        load_predictor(tmp_path / "m.joblib")
    (tmp_path / "m.onnx").unlink()  # a copy without it is served from the verified joblib
    assert type(load_predictor(tmp_path / "m.joblib")).__name__ == "EstimatorPredictor"


def test_predict_v2_and_the_page(boosted):
    model_file, csv = boosted
    app = create_app({"MODEL_PATH": str(model_file), "TESTING": True})
    client = app.test_client()
    rows = sample(model_file, csv, 3)
    expected = load_estimator(model_file).predict(rows)
    target = load_predictor(model_file).schema.target.name
    key = "height_inches" if target == "Height" else target
    one = client.post("/predict", json=rows.iloc[0].to_dict())
    assert one.status_code == 200, one.get_json()
    assert one.get_json()["prediction"][key] == pytest.approx(expected[0], abs=0.06)
    batch = client.post("/predict", json=rows.to_dict(orient="list"))
    assert batch.status_code == 200
    got = [p[key] for p in batch.get_json()["predictions"]]
    assert got == pytest.approx(expected.tolist(), abs=0.06)

    name = mlib.read_metadata(model_file)["schema"]["name"]
    inputs = client.get(f"/v2/models/{name}").get_json()["inputs"]
    infer = client.post(f"/v2/models/{name}/infer", json={"inputs": [
        {"name": i["name"], "datatype": i["datatype"], "shape": [3],
         "data": rows[i["name"]].tolist()} for i in inputs]})  # fmt: skip
    assert infer.status_code == 200, infer.get_json()
    output = next(o for o in infer.get_json()["outputs"] if o["datatype"] == "FP64")
    assert output["data"] == pytest.approx(expected.tolist(), abs=0.06)
    assert client.get("/").status_code == 200


def test_batch_scoring_evaluate_and_drift(boosted, tmp_path):
    model_file, data = boosted
    env = {"MODEL_PATH": str(model_file)}
    rows = sample(model_file, data, 50)
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    # Chunks of 7 rows: several are predicted at once on threads and must come back in order.
    scored = run_script("cli.py", "--model", str(model_file), "--input", str(source),
                        "--chunk-rows", "7", env={})  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    lines = list(csv.reader(io.StringIO(scored.stdout)))
    assert len(lines) == 51  # the header and one line per row
    predictor = load_predictor(model_file)
    fields = predictor.schema.answer_fields()
    for line, row in zip(lines[1:], rows.to_dict("records"), strict=True):
        answer = predictor.prediction(row)  # what POST /predict answers for this row
        written = dict(zip(lines[0], line, strict=True))
        assert [written[f] for f in fields] == [str(answer[f]) for f in fields]
        assert written["extrapolation"] == ("true" if "warning" in answer else "false")
    evaluated = CliRunner().invoke(cli, ["evaluate", "--data", str(data), "--json"], env=env)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["overall"]["r2"] > 0.3
    drifted = CliRunner().invoke(cli, ["drift", "--data", str(data), "--json"], env=env)
    assert drifted.exit_code in (0, 1, 2), drifted.output
    assert (
        json.loads(drifted.output)["model_version"]
        == mlib.read_metadata(model_file)["model_version"]
    )


def test_hot_reload_swaps_a_folded_model_for_an_onnx_one(boosted, tmp_path):
    model_file, csv = boosted
    served = tmp_path / "served.joblib"
    ridge = training.train(csv, served, spec=load_spec(model_file, model_spec.RIDGE))
    app = create_app({"MODEL_PATH": str(served), "TESTING": True, "ADMIN_TOKEN": "s3cret"})
    client = app.test_client()
    assert client.get("/model").get_json()["model_version"] == ridge.version
    boosted_again = training.train(csv, served, spec=load_spec(model_file, "random-forest"))
    response = client.post("/admin/reload", headers=BEARER)
    assert response.status_code == 200 and response.get_json()["model_version"] == (
        boosted_again.version
    )
    body = sample(model_file, csv, 1).iloc[0].to_dict()
    assert client.post("/predict", json=body).headers["X-Model-Version"] == boosted_again.version
    # The reload's snapshot carries the ONNX file: the new model is served from it.
    assert type(service_state(app).served.predictor).__name__ == "OnnxPredictor"


def load_spec(model_file: Path, family: str) -> model_spec.ModelSpec:
    spec = model_spec.ModelSpec.of_schema(load_predictor(model_file).schema)
    return dataclasses.replace(spec, estimator=family, name=None)


def test_promotion_and_rollback_carry_the_onnx_file(boosted, tmp_path):
    model_file, csv = boosted
    served = tmp_path / "served.joblib"
    first = training.train(
        csv, tmp_path / "a" / "model.joblib", spec=load_spec(model_file, "lightgbm")
    )
    second = training.train(
        csv, tmp_path / "b" / "model.joblib", spec=load_spec(model_file, "random-forest")
    )
    store = registry.Registry(served)
    for report in (first, second):
        with store.staging() as staged:
            for suffix in (".joblib", ".json", ".onnx"):
                shutil.copy2(report.model_file.with_suffix(suffix), staged / f"model{suffix}")
            store.register(staged / "model.joblib")
        store.promote(report.version)
        assert type(load_predictor(served)).__name__ == "OnnxPredictor"
        assert served.with_suffix(".onnx").read_bytes() == (
            report.model_file.with_suffix(".onnx").read_bytes()
        )
    store.rollback()
    assert mlib.read_metadata(served)["model_version"] == first.version
    assert (
        served.with_suffix(".onnx").read_bytes()
        == first.model_file.with_suffix(".onnx").read_bytes()
    )
    assert type(load_predictor(served)).__name__ == "OnnxPredictor"


def test_a_served_tree_model_adopted_by_the_registry_keeps_its_onnx_file(boosted, tmp_path):
    model_file, _ = boosted
    served = tmp_path / "served" / "model.joblib"
    served.parent.mkdir()
    for suffix in (".joblib", ".json", ".onnx"):
        shutil.copy2(model_file.with_suffix(suffix), served.with_suffix(suffix))
    entry = registry.Registry(served).adopt_served()
    assert type(load_predictor(entry.model_file)).__name__ == "OnnxPredictor"


def test_lambda_refuses_an_onnx_model_in_one_line(boosted, monkeypatch):
    model_file, _ = boosted
    monkeypatch.setenv("MODEL_PATH", str(model_file))
    with pytest.raises(MlibError) as refused:
        lambda_handler.folded_only(model_file)
    assert "no folded form" in str(refused.value) and "\n" not in str(refused.value)


# ------------------------------------------------------------------ the worked example


def test_the_example_is_served_from_onnx_by_the_production_server(tmp_path, data_file):
    meta = mlib.read_metadata(EXAMPLE)
    assert meta["serving"] == {"form": "onnx"} and meta["hyperparameters"]["trees"] == 100
    folder = tmp_path / "example"
    folder.mkdir()
    for suffix in (".joblib", ".json", ".onnx"):
        shutil.copy2(EXAMPLE.with_suffix(suffix), folder / f"model{suffix}")
    served = folder / "model.joblib"
    process, base_url = start_server(served, tmp_path)
    try:
        row = {"Weight": 200, "Age": 28.5, "Position": "Catcher"}
        expected = load_estimator(EXAMPLE).predict(pd.DataFrame([row]))[0]
        one = requests.post(f"{base_url}/predict", json=row, timeout=5)
        assert one.status_code == 200
        assert one.json()["prediction"]["height_inches"] == round(float(expected), 1)
        columns = {"Weight": [180, 230], "Age": [24, 33], "Position": ["Catcher", "Outfielder"]}
        batch = requests.post(f"{base_url}/predict", json=columns, timeout=5)
        assert batch.status_code == 200 and len(batch.json()["predictions"]) == 2
        log_file = next(tmp_path.glob("server-*.log"))
        assert f"Serving model {meta['model_version']} from its ONNX file" in log_file.read_text()

        # Hot reload on the real server: a random forest replaces it, every worker swaps.
        new = training.train(data_file, served, spec=dataclasses.replace(
            MLB_SPEC, estimator="random-forest")).version  # fmt: skip
        os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = requests.post(f"{base_url}/predict", json=row, timeout=5)
            if answer.headers["X-Model-Version"] == new:
                break
            time.sleep(0.05)
        assert answer.headers["X-Model-Version"] == new
        line = f"Serving model {new} from its ONNX file model.onnx"
        while line not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # the master logs it after the workers may have switched
        assert line in log_file.read_text()
    finally:
        stop(process)


def test_the_example_card_shows_its_two_linear_baselines():
    metadata = mlib.verified_metadata(EXAMPLE)
    card = EXAMPLE.with_name("MODEL_CARD.md").read_text(encoding="utf-8")
    assert card == modelcard.render_card(metadata)  # regenerated with the model
    baselines = metadata["metrics"]["baselines"]
    assert list(baselines) == ["ridge(Weight, Age, Position)", "ridge(Weight)"]
    # The Weight-only baseline is the committed demo: the same Ridge on the same split.
    demo = {k: v for k, v in baselines["ridge(Weight)"].items() if k != "features"}
    assert demo == pytest.approx(mlib.read_metadata(DEMO)["metrics"]["held_out"], rel=1e-9)
    for scores in baselines.values():
        features = ", ".join(f"`{name}`" for name in scores["features"])
        row = f"| Baseline: Ridge on {features}, same rows | 104 | {scores['r2']:.3f} |"
        assert f"{row} {scores['rmse']:.2f} |" in card  # R² and RMSE beside the model's
    assert metadata["metrics"]["held_out"]["r2"] > max(s["r2"] for s in baselines.values())


def test_onnxruntime_telemetry_is_off(tmp_path):
    # Its Linux build ships usage telemetry, which first writes a session file (.ses) to the
    # temporary folder: a served model must send nothing anywhere, and leave nothing there.
    code = "\n".join([
        "import mlib, sys",
        "p = mlib.load_predictor(sys.argv[1])",
        "print(type(p).__name__, p.answer({'Weight': 200, 'Age': 30, 'Position': 'Catcher'}))",
    ])  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith("OnnxPredictor"), result.stderr
    assert list(tmp_path.iterdir()) == []
