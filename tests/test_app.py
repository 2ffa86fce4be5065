"""The Flask app through its test client: every route and every error path."""

from __future__ import annotations

import json
import re

import pytest
from helpers import ANSWER_200_LBS, BAD_BODIES, openapi_paths

import mlib
from app import create_app
from cookbook.core.linear import LinearForm
from cookbook.core.prediction import Predictor
from cookbook.core.settings import PROJECT_ROOT
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.payload import BODY_LIMIT, BODY_TOO_LARGE, MAX_BODY_BYTES, MAX_FEEDBACK_ITEMS
from cookbook.web.served import ServedModel, service_state

SINGLE = {"prediction": ANSWER_200_LBS}


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_predict_one_weight_with_any_content_type(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/predict", data='{"Weight": 200}', headers=headers)
    assert response.status_code == 200
    assert response.get_json(force=True) == SINGLE


def test_predict_a_batch_keeps_the_order(client):
    response = client.post("/predict", json={"Weight": [180, 200, 250]})
    assert response.status_code == 200
    heights = [p["height_human_readable"] for p in response.get_json()["predictions"]]
    assert heights == ["6 foot, 0 inches", "6 foot, 2 inches", "6 foot, 5 inches"]


def test_predict_outside_the_training_range_warns(client):
    response = client.post("/predict", json={"Weight": 400})
    assert response.status_code == 200
    assert "extrapolation" in response.get_json()["prediction"]["warning"]


def test_every_response_names_the_model_version(client, trained_model):
    version = mlib.read_metadata(trained_model)["model_version"]
    for response in (
        client.get("/"),
        client.get("/health"),
        client.post("/predict", json={"Weight": 200}),
        client.post("/predict", json={"Weight": "x"}),
        client.get("/nowhere"),
    ):
        assert response.headers["X-Model-Version"] == version


@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
def test_bad_bodies_are_400_with_a_reason(client, body, words):
    response = client.post("/predict", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.is_json
    assert re.search(words, response.get_json()["error"]), response.get_json()


def test_a_body_over_the_limit_is_413(client):
    body = '{"Weight": [' + ",".join(["200"] * (MAX_BODY_BYTES // 4 + 1)) + "]}"
    assert len(body) > MAX_BODY_BYTES
    response = client.post("/predict", data=body)
    assert response.status_code == 413
    assert response.get_json() == {"error": BODY_TOO_LARGE}


def test_a_batch_over_the_row_limit_is_413(client):
    response = client.post("/predict", json={"Weight": [200] * (MAX_BATCH_ROWS + 1)})
    assert response.status_code == 413
    assert str(MAX_BATCH_ROWS) in response.get_json()["error"]


def test_a_batch_at_the_row_limit_is_answered(client):
    response = client.post("/predict", json={"Weight": [200] * MAX_BATCH_ROWS})
    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == MAX_BATCH_ROWS


def test_openapi_states_the_limits_the_service_enforces(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    too_much = paths["/predict"]["post"]["responses"]["413"]["description"]
    assert BODY_LIMIT in too_much and f"{MAX_BATCH_ROWS:,}" in too_much
    feedback = paths["/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert feedback["schema"]["oneOf"][1]["maxItems"] == MAX_FEEDBACK_ITEMS


def test_unknown_route_is_json_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "/nowhere" in response.get_json()["error"]


@pytest.mark.parametrize(("method", "path"), [("get", "/predict"), ("post", "/health")])
def test_wrong_method_is_json_405(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert "not allowed" in response.get_json()["error"]
    assert response.headers["Allow"]


def test_home_page_says_what_and_how(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Predict the Height From Weight of MLB Players" in page
    assert "curl" in page and "/predict" in page


def test_health_and_ready(client, trained_model):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["model_version"] == mlib.read_metadata(trained_model)["model_version"]


def test_ready_is_503_when_the_probe_fails(app, client):
    state = service_state(app)
    predictor = state.served.predictor
    broken = Predictor(
        predictor.metadata,
        predictor.path,
        predictor.schema,
        LinearForm(intercept=0.0, coefficients={"Weight": float("nan")}, offsets={}),
    )
    state.served = ServedModel.of(broken, state.served.generation, state.metrics)
    response = client.get("/ready")
    assert response.status_code == 503
    assert "probe" in response.get_json()["error"]


def test_model_route_serves_the_metadata(client, trained_model):
    assert client.get("/model").get_json() == json.loads(
        mlib.metadata_path(trained_model).read_text()
    )


def test_metrics_count_requests_and_predictions(client):
    client.post("/predict", json={"Weight": 200})
    client.post("/predict", json={"Weight": [180, 200, 250]})
    client.post("/predict", json={"Weight": "x"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/predict",status="200"} 2.0' in text
    assert 'http_requests_total{method="POST",route="/predict",status="400"} 1.0' in text
    assert "predictions_total 4.0" in text
    assert 'http_request_duration_seconds_count{route="/predict"} 3.0' in text


def test_openapi_documents_every_route(app, client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert openapi_paths(app) == set(document["paths"])
    predict = document["paths"]["/predict"]["post"]
    assert {"200", "400", "413"} <= set(predict["responses"])
    assert predict["requestBody"]["content"]["application/json"]["examples"]


def test_the_app_refuses_a_tampered_model(model_copy):
    model_copy.write_bytes(b"not the model")
    with pytest.raises(mlib.ModelError, match="does not match"):
        create_app({"MODEL_PATH": str(model_copy)})


def test_model_path_comes_from_the_environment(monkeypatch, trained_model):
    monkeypatch.setenv("MODEL_PATH", str(trained_model))
    application = create_app()
    assert service_state(application).served.predictor.path == trained_model


def test_importing_app_loads_nothing():
    import subprocess
    import sys

    code = "import app, sys; assert 'app' not in vars(app); assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
