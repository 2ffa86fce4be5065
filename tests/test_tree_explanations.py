"""TreeSHAP explanations of tree models: exact, of what is served, from stored arrays, lazy.

Every tree family explains a regression (diabetes; the MLB data with its Position category),
a binary classifier (breast_cancer) and multiclass ones (iris, wine) through ``/predict``:
``base + Σ contributions`` is the explained output to 1e-4, and that output is the served
answer (a regression's value within float32 rounding of the ONNX form; a classifier's
probabilities from its logits, or a forest's answered probability).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import textwrap
import time
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest
from helpers import retrain_classifier, without_explanations

from app import create_app
from cookbook.core.errors import ModelError
from cookbook.core.schema import NumberFeature
from cookbook.lifecycle import model_spec, training
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.lifecycle.classifying import estimator_outputs
from cookbook.lifecycle.importing import check_fitted, save_imported
from cookbook.lifecycle.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = list(model_spec.TREE_FAMILIES)
ADDITIVE = 1e-4
ROWS = 60  # explained per model, in one batch request


@pytest.fixture(scope="module")
def data_sets(tmp_path_factory, data_file) -> dict[str, Path]:
    """The regression CSVs (diabetes, MLB) and wine as a multiclass CSV."""
    from sklearn.datasets import load_diabetes, load_wine

    folder = tmp_path_factory.mktemp("tree-data")
    load_diabetes(as_frame=True).frame.to_csv(folder / "diabetes.csv", index=False)
    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns=lambda c: c.replace("/", "_"))
    frame["cultivar"] = [str(wine.target_names[t]) for t in frame["target"]]
    frame[["alcohol", "malic_acid", "flavanoids", "proline", "cultivar"]].to_csv(
        folder / "wine.csv", index=False
    )
    return {"diabetes": folder / "diabetes.csv", "wine": folder / "wine.csv", "mlb": data_file}


@pytest.fixture(scope="module")
def tree_model(data_sets, classifier, classification_data, tmp_path_factory):
    """``tree_model(data_set, family)``: (model file, data file), trained once per module."""
    trained: dict[tuple[str, str], tuple[Path, Path]] = {}

    def train(data_set: str, family: str) -> tuple[Path, Path]:
        if (data_set, family) in trained:
            return trained[(data_set, family)]
        if data_set in ("cancer", "iris"):
            model_file = classifier("binary" if data_set == "cancer" else "multiclass", family)
            data = classification_data[data_set]
        else:
            data = data_sets[data_set]
            model_file = tmp_path_factory.mktemp(f"{data_set}-{family}") / "model.joblib"
            if data_set == "wine":
                retrain_classifier(data, model_file, "--target", "cultivar", "--features",
                                   "alcohol,malic_acid,flavanoids,proline",
                                   "--estimator", family)  # fmt: skip
            else:
                if data_set == "mlb":
                    spec = model_spec.spec_for("Height", ("Weight", "Age"), ("Position",))
                else:
                    names = [c for c in pd.read_csv(data, nrows=1).columns if c != "target"]
                    spec = model_spec.ModelSpec("target", tuple(names))
                spec = dataclasses.replace(spec, estimator=family)
                training.train(data, model_file, spec=spec)
        trained[(data_set, family)] = (model_file, data)
        return model_file, data

    return train


def request_body(model_file: Path, data: Path, rows: int = ROWS) -> dict[str, list]:
    """Return the first *rows* rows of *data* as a batch request body of the model's features."""
    schema = load_predictor(model_file).schema
    frame = pd.read_csv(data).dropna().head(rows)
    return {
        f.name: [float(v) if isinstance(f, NumberFeature) else str(v) for v in frame[f.name]]
        for f in schema.features
    }


def explained(model_file: Path, body: dict) -> list[dict]:
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    response = client.post("/predict", json={**body, "explain": True})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["predictions"]


def additive_error(explanation: dict) -> float:
    total = explanation["base"] + sum(explanation["contributions"].values())
    return abs(total - explanation["prediction"])


def served_values(model_file: Path, body: dict) -> list:
    predictor = load_predictor(model_file)
    rows = list(zip(*body.values(), strict=True))
    return predictor.predict_rows(rows)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("data_set", ["diabetes", "mlb", "cancer", "iris", "wine"])
def test_each_family_explains_exactly_what_it_serves(tree_model, data_set, family):
    model_file, data = tree_model(data_set, family)
    metadata = json.loads(model_file.with_suffix(".json").read_text())
    assert metadata["trees"]["file"] == "model.trees.npz"
    assert metadata["serving"]["form"] == "onnx"
    body = request_body(model_file, data)
    answers = explained(model_file, body)
    predictor = load_predictor(model_file)
    values = served_values(model_file, body)
    for answer, value in zip(answers, values, strict=True):
        explanation = answer["explanation"]
        assert list(explanation["contributions"]) == list(predictor.schema.feature_names)
        assert additive_error(explanation) <= ADDITIVE
        if not predictor.is_classifier:  # the value, within float32 rounding of the ONNX form
            assert explanation["prediction"] == pytest.approx(value, rel=1e-5, abs=1e-5)
            continue
        answered = predictor.schema.target.classes.index(answer["label"])
        if family == "random-forest":  # the averaged probability of the answered class
            assert explanation["prediction"] == pytest.approx(value[answered], abs=1e-5)
        elif len(value) == 2:  # the answered class's log-odds
            p = value[answered]
            assert 1 / (1 + math.exp(-explanation["prediction"])) == pytest.approx(p, abs=1e-5)
    if predictor.is_classifier and family != "random-forest" and len(values[0]) > 2:
        # Multiclass: every class's raw score, softmaxed, gives the served probabilities.
        rows = list(zip(*body.values(), strict=True))
        classes = range(len(values[0]))
        scores = [predictor.explainer.explain_rows(rows, [c] * len(rows)) for c in classes]
        for i, value in enumerate(values):
            logits = [scores[c][i]["prediction"] for c in classes]
            exps = [math.exp(v - max(logits)) for v in logits]
            assert [e / sum(exps) for e in exps] == pytest.approx(list(value), abs=1e-5)
    # Importance: the mean |contribution| on the held-out rows, in schema order.
    assert list(metadata["importance"]) == list(predictor.schema.feature_names)
    assert metadata["importance_rows"] > 0 and all(v >= 0 for v in metadata["importance"].values())


@pytest.mark.parametrize(("data_set", "family"), [("diabetes", "random-forest"),
                                                  ("diabetes", "hist-gradient-boosting"),
                                                  ("cancer", "lightgbm")])  # fmt: skip
def test_a_model_served_from_joblib_explains_the_estimators_own_decisions(
    tree_model, data_set, family, tmp_path
):
    model_file, data = tree_model(data_set, family)
    copy = tmp_path / "model.joblib"
    for suffix in (".joblib", ".json", ".trees.npz"):  # no ONNX file: served from joblib
        shutil.copy2(model_file.with_suffix(suffix), copy.with_suffix(suffix))
    assert type(load_predictor(copy)).__name__ == "EstimatorPredictor"
    body = request_body(copy, data)
    answers = explained(copy, body)
    schema = load_predictor(copy).schema
    expected = estimator_outputs(load_estimator(copy), pd.DataFrame(body), schema)
    for answer, value in zip(answers, expected, strict=True):
        explanation = answer["explanation"]
        assert additive_error(explanation) <= ADDITIVE
        if schema.target.is_classification:
            p = value[schema.target.classes.index(answer["label"])]
            assert explanation["prediction"] == pytest.approx(math.log(p / (1 - p)), abs=1e-9)
        else:  # float64 decisions as the estimator takes them (a forest's float32 inputs too)
            assert explanation["prediction"] == pytest.approx(value, rel=1e-12, abs=1e-9)


def test_a_batch_is_explained_in_one_call(tree_model, monkeypatch):
    model_file, data = tree_model("mlb", "hist-gradient-boosting")
    from cookbook.lifecycle.tree_explainer import TreeShapExplainer

    calls = []
    original = TreeShapExplainer.explain_rows

    def counted(self, rows, answered):
        calls.append(len(rows))
        return original(self, rows, answered)

    monkeypatch.setattr(TreeShapExplainer, "explain_rows", counted)
    answers = explained(model_file, request_body(model_file, data, rows=200))
    assert len(answers) == 200 and calls == [200]


def test_a_worker_that_never_explains_never_imports_shap_or_sklearn(tree_model):
    model_file, _ = tree_model("mlb", "hist-gradient-boosting")
    script = textwrap.dedent(f"""
        import sys
        from app import create_app
        client = create_app({{"MODEL_PATH": {str(model_file)!r}, "TESTING": True}}).test_client()
        row = {{"Weight": 200, "Age": 28.5, "Position": "Catcher"}}
        assert client.post("/predict", json=row).status_code == 200
        print("shap" in sys.modules, "sklearn" in sys.modules)
        answer = client.post("/predict", json={{**row, "explain": True}}).get_json()
        print("shap" in sys.modules, sorted(answer["prediction"]["explanation"]["contributions"]))
    """)
    result = subprocess.run([sys.executable, "-W", "error", "-c", script], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.splitlines()
    assert before == "False False"
    assert after == "True ['Age', 'Position', 'Weight']"


def refused_explanation(client) -> str:
    """Return why a tree model that answers an MLB row refuses to explain it (its 400)."""
    row = {"Weight": 200, "Age": 28.5, "Position": "Catcher"}
    assert client.post("/predict", json=row).status_code == 200
    refused = client.post("/predict", json={**row, "explain": True})
    assert refused.status_code == 400
    return refused.get_json()["error"]


def test_a_tampered_trees_file_is_refused_and_a_missing_one_named(tree_model, tmp_path):
    model_file, _ = tree_model("mlb", "lightgbm")
    copy = tmp_path / "model.joblib"
    for suffix in (".joblib", ".json", ".onnx", ".trees.npz"):
        shutil.copy2(model_file.with_suffix(suffix), copy.with_suffix(suffix))
    copy.with_suffix(".trees.npz").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="Trees file .* does not match its metadata"):
        load_predictor(copy)
    copy.with_suffix(".trees.npz").unlink()
    client = create_app({"MODEL_PATH": str(copy), "TESTING": True}).test_client()
    assert "its trees file model.trees.npz is missing" in refused_explanation(client)


IMPORTED_FEATURES = ["age", "bmi", "bp", "s5"]
FITTED_ROWS = 300  # diabetes rows the imported model learns from; the rest are its labelled rows


def import_fitted(fitted, diabetes: Path, folder: Path) -> dict:
    """Fit *fitted* on the first diabetes rows, import it with the others; return its metadata."""
    import joblib

    frame = pd.read_csv(diabetes)
    fitted.fit(frame[IMPORTED_FEATURES].iloc[:FITTED_ROWS], frame["target"].iloc[:FITTED_ROWS])
    joblib.dump(fitted, folder / "fitted.joblib")
    frame.iloc[FITTED_ROWS:].to_csv(folder / "labelled.csv", index=False)
    checked = check_fitted(folder / "fitted.joblib", folder / "labelled.csv", target="target")
    return save_imported(checked, folder / "model.joblib").metadata


def test_trees_after_a_scaler_get_no_trees_file_and_explain_requests_say_why(tmp_path, data_sets):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fitted = make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=20))
    metadata = import_fitted(fitted, data_sets["diabetes"], tmp_path)
    model_file = tmp_path / "model.joblib"
    assert metadata["trees"]["file"] is None
    assert "a StandardScaler before the trees" in metadata["trees"]["reason"]
    assert "importance" not in metadata and not model_file.with_suffix(".trees.npz").exists()
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    body = {name: 0.01 for name in IMPORTED_FEATURES}
    refused = client.post("/predict", json={**body, "explain": True})
    assert refused.status_code == 400
    assert "a StandardScaler before the trees" in refused.get_json()["error"]


def test_a_bare_imported_forest_is_explained_on_its_labelled_rows(tmp_path, data_sets):
    from sklearn.ensemble import RandomForestRegressor

    fitted = RandomForestRegressor(n_estimators=10, random_state=0)
    metadata = import_fitted(fitted, data_sets["diabetes"], tmp_path)
    frame = pd.read_csv(data_sets["diabetes"])
    columns = [{"feature": f, "category": None} for f in IMPORTED_FEATURES]
    assert metadata["trees"]["columns"] == columns
    assert metadata["importance_rows"] == len(frame) - FITTED_ROWS
    labelled = frame.iloc[FITTED_ROWS : FITTED_ROWS + 40]
    body = {name: [float(v) for v in labelled[name]] for name in IMPORTED_FEATURES}
    answers = explained(tmp_path / "model.joblib", body)
    expected = fitted.predict(pd.DataFrame(body))
    for answer, value in zip(answers, expected, strict=True):
        assert additive_error(answer["explanation"]) <= ADDITIVE
        assert answer["explanation"]["prediction"] == pytest.approx(value, rel=1e-5)


def test_promotion_reload_and_adoption_carry_the_trees_file(tree_model, tmp_path, data_file):
    model_file, _ = tree_model("mlb", "hist-gradient-boosting")
    served = tmp_path / "served" / "model.joblib"
    served.parent.mkdir()
    for suffix in (".joblib", ".json", ".onnx", ".trees.npz"):
        shutil.copy2(model_file.with_suffix(suffix), served.with_suffix(suffix))
    registry = Registry(served)
    entry = registry.adopt_served()
    assert (entry.folder / "model.trees.npz").is_file()
    for suffix in (".joblib", ".json", ".onnx", ".trees.npz"):
        served.with_suffix(suffix).unlink()
    registry.promote(entry.version)
    assert served.with_suffix(".trees.npz").is_file()
    row = {"Weight": 200, "Age": 28.5, "Position": "Catcher", "explain": True}
    client = create_app({"MODEL_PATH": str(served), "TESTING": True}).test_client()
    answer = client.post("/predict", json=row).get_json()["prediction"]
    assert additive_error(answer["explanation"]) <= ADDITIVE


def test_retraining_an_entry_saved_before_trees_adds_its_trees_file(tmp_path, data_file):
    spec = dataclasses.replace(model_spec.spec_for("Height", ("Weight",), ()), estimator="lightgbm")
    model_file = tmp_path / "model.joblib"
    first = training.train(data_file, model_file, spec=spec).metadata
    registry = Registry(model_file)
    entry = registry.adopt_served()
    # As an entry saved before trees were explained: no trees file, no record of one.
    (entry.folder / "model.trees.npz").unlink()
    old = {k: v for k, v in first.items() if k not in ("trees", "importance", "importance_rows")}
    (entry.folder / "model.json").write_text(json.dumps(old, indent=2) + "\n")
    with registry.staging() as staged:
        training.train(data_file, staged / "model.joblib", spec=spec)
        refreshed = registry.register(staged / "model.joblib")
    assert refreshed.version == entry.version
    assert refreshed.metadata["trees"]["sha256"] == first["trees"]["sha256"]
    assert (entry.folder / "model.trees.npz").is_file()
    assert refreshed.metadata["onnx"] == first["onnx"]  # the entry's own, untouched


def test_the_first_explanations_from_many_threads_build_one_explainer(tree_model, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from cookbook.lifecycle.tree_explainer import TreeShapExplainer

    model_file, data = tree_model("iris", "lightgbm")
    predictor = load_predictor(model_file)
    builds = []
    original = TreeShapExplainer._make

    def counted(self):
        builds.append(1)
        return original(self)

    monkeypatch.setattr(TreeShapExplainer, "_make", counted)
    body = request_body(model_file, data, rows=8)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predictor.answer({**body, "explain": True}), range(8)))
    assert len(builds) == 1
    assert all(a == answers[0] for a in answers)


def test_a_tree_model_saved_before_its_arrays_were_stored_says_so(tree_model, tmp_path):
    model_file, _ = tree_model("mlb", "random-forest")
    copy = without_explanations(model_file, tmp_path)
    client = create_app({"MODEL_PATH": str(copy), "TESTING": True}).test_client()
    assert "saved without its trees' arrays" in refused_explanation(client)


def test_a_tree_model_without_shap_installed_says_so_and_offers_no_explanations(
    tree_model, monkeypatch
):
    from cookbook.lifecycle import tree_explainer

    model_file, _ = tree_model("mlb", "hist-gradient-boosting")
    monkeypatch.setattr(tree_explainer, "find_spec",
                        lambda name: None if name == "shap" else find_spec(name))  # fmt: skip
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    assert "shap, which explains tree models, is not installed" in refused_explanation(client)
    assert "explain" not in json.dumps(client.get("/openapi.json").get_json()["paths"]["/predict"])


def test_a_hot_reload_swaps_in_a_tree_model_that_explains(tree_model, tmp_path, data_file):
    model_file, _ = tree_model("mlb", "lightgbm")
    served = tmp_path / "model.joblib"
    spec = model_spec.spec_for("Height", ("Weight", "Age"), ("Position",))
    training.train(data_file, served, spec=spec)  # the folded Ridge first
    app = create_app({"MODEL_PATH": str(served), "TESTING": True, "ADMIN_TOKEN": "s3cret"})
    client = app.test_client()
    for suffix in (".joblib", ".onnx", ".trees.npz", ".json"):
        shutil.copy2(model_file.with_suffix(suffix), served.with_suffix(suffix))
    reloaded = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert reloaded.status_code == 200
    row = {"Weight": 200, "Age": 28.5, "Position": "Catcher", "explain": True}
    answer = client.post("/predict", json=row).get_json()["prediction"]
    assert additive_error(answer["explanation"]) <= ADDITIVE  # from the snapshot's trees file


@pytest.mark.parametrize(
    ("data_set", "family", "measured"),
    [("cancer", "random-forest", "probability"), ("cancer", "hist-gradient-boosting", "log-odds"),
     ("iris", "lightgbm", "logit")],
)  # fmt: skip
def test_every_place_names_what_a_classifiers_explanation_measures(tree_model, data_set, family,
                                                                   measured, tmp_path):  # fmt: skip
    """A forest explains a probability, boosted trees a log-odds or logit: /drift, the page
    and the card say which."""
    from cookbook.lifecycle.modelcard import write_card

    model_file, _ = tree_model(data_set, family)
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    assert client.get("/drift").get_json()["importance_unit"] == f"{measured} of the answered class"
    assert f'data-explained-as="{measured}"' in client.get("/").get_data(as_text=True)
    card, *_pictures = write_card(model_file, tmp_path / "MODEL_CARD.md")
    assert f"{measured} of the answered class" in card.read_text(encoding="utf-8")


def test_a_costly_model_explains_as_many_rows_as_fit_its_budget(tree_model, monkeypatch):
    """A deep forest's row costs milliseconds: its limit is what TreeSHAP explains within the
    budget on this worker, so one request cannot hold the worker for seconds."""
    model_file, data = tree_model("mlb", "random-forest")
    explainer = load_predictor(model_file).explainer
    rows = list(zip(*request_body(model_file, data, 8).values(), strict=True))
    explainer.explain_rows(rows, [0] * 8)  # built once
    started = time.perf_counter()
    explainer.explain_rows(rows, [0] * 8)
    per_row = (time.perf_counter() - started) / 8
    # A budget of about three of this model's rows, however fast this machine is.
    monkeypatch.setenv("EXPLAIN_BUDGET_SECONDS", repr(3.5 * per_row))
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    limit = client.application.extensions["cookbook"].served.predictor.explainer.row_limit()
    assert 1 <= limit < 20
    within = client.post("/predict", json={**request_body(model_file, data, limit),
                                           "explain": True})  # fmt: skip
    assert within.status_code == 200 and len(within.get_json()["predictions"]) == limit
    over = client.post("/predict", json={**request_body(model_file, data, limit + 1),
                                         "explain": True})  # fmt: skip
    assert over.status_code == 413
    assert f"at most {limit} rows per request by this model" in over.get_json()["error"]
    # Without explain the same batch is answered.
    plain = client.post("/predict", json=request_body(model_file, data, limit + 1))
    assert plain.status_code == 200


def test_a_bad_explanation_budget_stops_the_model_loading(tree_model, monkeypatch):
    model_file, _ = tree_model("mlb", "hist-gradient-boosting")
    monkeypatch.setenv("EXPLAIN_BUDGET_SECONDS", "soon")
    with pytest.raises(ModelError, match="EXPLAIN_BUDGET_SECONDS must be a number, got 'soon'"):
        load_predictor(model_file)
