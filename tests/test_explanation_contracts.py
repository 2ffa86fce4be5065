"""Explanations on every contract that carries them: V2's ``contributions`` and ``base``
outputs, the capture record and its export, and /openapi.json. Each is checked against
what ``POST /predict`` answers with ``"explain": true`` for the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT

from app import create_app
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.classifying import LOGISTIC

DEMO = ROOT / "model.joblib"
POSITION = ROOT / "examples" / "height-by-position" / "model.joblib"  # a number and a category
PITCHER = ROOT / "examples" / "pitcher-classifier" / "model.joblib"  # binary, three numbers
TREES = ROOT / "examples" / "height-gbm" / "model.joblib"  # cannot explain yet
ROWS = {
    DEMO: {"Weight": [180, 200, 250]},
    POSITION: {"Weight": [180, 200, 250], "Position": ["Catcher", "Shortstop", "Catcher"]},
    PITCHER: {"Height": [70, 74, 79], "Weight": [180, 200, 250], "Age": [22.5, 28.5, 35.0]},
    TREES: {"Weight": [200], "Age": [28.5], "Position": ["Catcher"]},
}


def client_of(model_file: Path, **config):
    app = create_app({"MODEL_PATH": str(model_file), "TESTING": True, **config})
    return app.test_client()


def v2_inputs(columns: dict[str, list]) -> list[dict]:
    return [
        {"name": name, "datatype": "BYTES" if isinstance(values[0], str) else "FP64",
         "shape": [len(values)], "data": values}
        for name, values in columns.items()
    ]  # fmt: skip


def infer(client, model_file: Path, columns: dict[str, list], **extra):
    name = load_predictor(model_file).schema.name
    return client.post(f"/v2/models/{name}/infer", json={"inputs": v2_inputs(columns), **extra})


def explained(client, columns: dict[str, list], **options) -> list[dict]:
    """Return /predict's explanation of each row of *columns*."""
    response = client.post("/predict", json={**columns, "explain": True, **options})
    assert response.status_code == 200, response.get_json()
    return [answer["explanation"] for answer in response.get_json()["predictions"]]


def outputs_of(body: dict) -> dict[str, dict]:
    return {output["name"]: output for output in body["outputs"]}


# ------------------------------------------------------------------ Open Inference Protocol


@pytest.mark.parametrize("model_file", [DEMO, POSITION, PITCHER], ids=["demo", "position",
                                                                      "pitcher"])  # fmt: skip
def test_v2_explain_adds_contributions_and_base_equal_to_predicts(model_file):
    client = client_of(model_file)
    columns = ROWS[model_file]
    names = load_predictor(model_file).schema.feature_names
    response = infer(client, model_file, columns, parameters={"explain": True})
    assert response.status_code == 200, response.get_json()
    outputs = outputs_of(response.get_json())
    rows, features = len(columns[names[0]]), len(names)
    contributions, base = outputs["contributions"], outputs["base"]
    assert (contributions["datatype"], contributions["shape"]) == ("FP64", [rows, features])
    assert contributions["parameters"] == {"features": list(names)}
    assert (base["datatype"], base["shape"]) == ("FP64", [rows])
    expected = explained(client, columns)
    for row, explanation in enumerate(expected):
        row_contributions = contributions["data"][row * features : (row + 1) * features]
        assert row_contributions == [explanation["contributions"][name] for name in names]
        assert base["data"][row] == explanation["base"]
        total = base["data"][row] + sum(row_contributions)
        assert abs(total - explanation["prediction"]) <= 1e-6
    # The answer's own outputs are still there, as without explain.
    plain = outputs_of(infer(client, model_file, columns).get_json())
    assert set(outputs) == set(plain) | {"contributions", "base"}
    assert all(outputs[name] == plain[name] for name in plain)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_v2_explains_the_logit_of_the_class_answered_at_the_requests_threshold(
    classifier, classification_data, task
):
    import pandas as pd

    model_file = classifier(task, LOGISTIC)
    names = load_predictor(model_file).schema.feature_names
    source = classification_data["cancer" if task == "binary" else "iris"]
    columns = pd.read_csv(source)[list(names)].sample(12, random_state=5).to_dict(orient="list")
    client = client_of(model_file)
    parameters = {"explain": True, **({"threshold": 0.2} if task == "binary" else {})}
    options = {"threshold": 0.2} if task == "binary" else {}
    wanted = [{"name": name} for name in ("label", "contributions", "base")]
    response = infer(client, model_file, columns, parameters=parameters, outputs=wanted)
    assert response.status_code == 200, response.get_json()
    outputs = outputs_of(response.get_json())
    assert list(outputs) == ["label", "contributions", "base"]
    expected = explained(client, columns, **options)
    flat = [c for e in expected for c in (e["contributions"][name] for name in names)]
    assert outputs["contributions"]["data"] == flat
    assert outputs["base"]["data"] == [e["base"] for e in expected]
    for row, explanation in enumerate(expected):
        contributions = flat[row * len(names) : (row + 1) * len(names)]
        assert abs(outputs["base"]["data"][row] + sum(contributions)
                   - explanation["prediction"]) <= 1e-6  # fmt: skip


def test_asking_for_contributions_by_name_implies_explain():
    client = client_of(DEMO)
    response = infer(client, DEMO, ROWS[DEMO], outputs=[{"name": "contributions"}])
    assert response.status_code == 200, response.get_json()
    (output,) = response.get_json()["outputs"]
    assert output["name"] == "contributions" and output["shape"] == [3, 1]
    assert output["data"] == [e["contributions"]["Weight"] for e in explained(client, ROWS[DEMO])]
    # Without the parameter or an explanation's output, nothing is explained.
    plain = infer(client, DEMO, ROWS[DEMO], parameters={"explain": False}).get_json()
    assert [o["name"] for o in plain["outputs"]] == ["height_inches", "height_human_readable"]


@pytest.mark.parametrize(
    ("model_file", "extra", "status", "message"),
    [
        (DEMO, {"parameters": {"explain": "yes"}}, 400,
         'The parameter "explain" must be true or false, got a string.'),
        (DEMO, {"parameters": {"explain": 1}}, 400, "must be true or false, got a number"),
        (TREES, {"parameters": {"explain": True}}, 400, "cannot explain its answers yet"),
        (TREES, {"outputs": [{"name": "base"}]}, 400, "cannot explain its answers yet"),
    ],
)  # fmt: skip
def test_v2_explain_errors_name_the_problem(model_file, extra, status, message):
    response = infer(client_of(model_file), model_file, ROWS[model_file], **extra)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_v2_explains_at_most_1000_rows():
    client = client_of(DEMO)
    response = infer(client, DEMO, {"Weight": [200.0] * 1001}, parameters={"explain": True})
    assert response.status_code == 413
    assert "at most 1000 rows per request" in response.get_json()["error"]
    assert infer(client, DEMO, {"Weight": [200.0] * 1000},
                 parameters={"explain": True}).status_code == 200  # fmt: skip


def test_v2_metadata_lists_the_explanation_only_for_a_model_that_explains():
    metadata = client_of(POSITION).get("/v2/models/height-from-weight-position").get_json()
    assert metadata["outputs"][-2:] == [
        {"name": "contributions", "datatype": "FP64", "shape": [-1, 2]},
        {"name": "base", "datatype": "FP64", "shape": [-1]},
    ]
    trees = client_of(TREES).get("/v2/models/height-from-weight-age-position").get_json()
    assert {o["name"] for o in trees["outputs"]}.isdisjoint({"contributions", "base"})
