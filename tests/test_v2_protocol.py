"""The Open Inference Protocol routes through the test client: every answer and error."""

from __future__ import annotations

import json
import re

import pytest
from helpers import ANSWER_180_LBS, ANSWER_200_LBS

import mlib
from cookbook.core.validation import MAX_BATCH_ROWS


@pytest.fixture
def version(trained_model):
    return mlib.read_metadata(trained_model)["model_version"]


def tensor(name="Weight", data=(200,), datatype="FP64", shape=None):
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": list(data)}


def test_health_and_server_metadata(client):
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    server = client.get("/v2").get_json()
    assert server["name"] and server["version"] == mlib.__version__
    assert "binary_tensor_data" not in server["extensions"]


def test_model_metadata_comes_from_the_schema(client, version):
    for path in ("/v2/models/mlb-height", f"/v2/models/mlb-height/versions/{version}"):
        metadata = client.get(path).get_json()
        assert metadata["name"] == "mlb-height" and metadata["versions"] == [version]
        assert metadata["inputs"] == [{"name": "Weight", "datatype": "FP64", "shape": [-1]}]
        assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
            ("height_inches", "FP64", [-1]), ("height_human_readable", "BYTES", [-1]),
            ("contributions", "FP64", [-1, 1]), ("base", "FP64", [-1])]  # fmt: skip
    assert client.get("/v2/models/mlb-height/ready").get_json()["ready"] is True


@pytest.mark.parametrize(
    "path",
    ["/v2/models/nope", "/v2/models/mlb-height/versions/000000000000", "/v2/models/nope/ready",
     "/v2/models/mlb-height/versions/000000000000/ready"],
)  # fmt: skip
def test_unknown_models_and_versions_are_404_with_an_error(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "error" in response.get_json()


@pytest.mark.parametrize("shape", [[2], [2, 1]])
@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32", "INT64"])
def test_infer_answers_one_row_per_input_in_order(client, version, shape, datatype):
    data = [200, 180] if shape == [2] else [[200], [180]]
    response = client.post("/v2/models/mlb-height/infer", json={
        "id": "req-7", "inputs": [tensor(data=data, datatype=datatype, shape=shape)]})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("mlb-height", version,
                                                                       "req-7")  # fmt: skip
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["height_inches"]["data"] == [ANSWER_200_LBS["height_inches"],
                                                ANSWER_180_LBS["height_inches"]]  # fmt: skip
    assert outputs["height_human_readable"]["datatype"] == "BYTES"
    assert outputs["height_human_readable"]["shape"] == [2]


def test_the_versioned_route_and_output_selection(client, version):
    response = client.post(f"/v2/models/mlb-height/versions/{version}/infer", json={
        "inputs": [tensor()], "outputs": [{"name": "height_human_readable"}]})  # fmt: skip
    assert response.get_json()["outputs"] == [{"name": "height_human_readable",
        "datatype": "BYTES", "shape": [1], "data": ["6 foot, 2 inches"]}]  # fmt: skip


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        ({"inputs": [tensor(data=["200"], datatype="BYTES")]}, 400, "datatype FP32"),
        ({"inputs": [tensor(data=[True], datatype="FP64")]}, 400, r"Weight\[0\] must be a number"),
        ({"inputs": [tensor(data=[-5])]}, 400, "greater than 0"),
        ({"inputs": [tensor(data=[1e309])]}, 400, "finite"),
        ({"inputs": [tensor(data=[200], shape=[2])]}, 400, "shape"),
        ({"inputs": [tensor(data=[200], shape=[1, 2])]}, 400, r"shape \[n\] or \[n, 1\]"),
        ({"inputs": [tensor(name="Height")]}, 400, "Unknown input"),
        ({"inputs": [tensor(), tensor()]}, 400, "twice"),
        ({"inputs": []}, 400, "list of tensors"),
        ({"inputs": [tensor()], "outputs": [{"name": "nope"}]}, 400, "Unknown output"),
        ({"inputs": [tensor(data=[200] * (MAX_BATCH_ROWS + 1))]}, 413, "split the batch"),
        ([1, 2], 400, "JSON object"),
        ({"inputs": [tensor()], "id": 7}, 400, '"id" must be a string'),
        ({"inputs": [tensor()], "id": "x" * 257}, 400, '"id" must be a string'),
        ({"inputs": [tensor()], "parameters": "x"}, 400, '"parameters" must be an object'),
        (
            {"inputs": [tensor()], "outputs": [{"name": "height_inches", "parameters": "x"}]},
            400,
            "must be an object",
        ),  # fmt: skip
        ({"inputs": [tensor()], "outputs": [{"name": {"a": 1}}]}, 400, "Unknown output"),
    ],
)
def test_bad_requests_are_answered_like_predict(client, request_body, status, words):
    response = client.post("/v2/models/mlb-height/infer", json=request_body)
    assert response.status_code == status
    assert re.search(words, response.get_json()["error"]), response.get_json()


def test_an_infinite_id_is_refused(client):
    body = '{"id": 1e400, "inputs": [' + json.dumps(tensor()) + "]}"
    response = client.post("/v2/models/mlb-height/infer", data=body)
    assert response.status_code == 400 and '"id"' in response.get_json()["error"]


def test_the_binary_extension_is_refused(client):
    response = client.post("/v2/models/mlb-height/infer", data=b"{}",
                           headers={"Inference-Header-Content-Length": "2"})  # fmt: skip
    assert response.status_code == 400 and "binary" in response.get_json()["error"]


def test_v2_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/ping",
        "/invocations",
    ):
        assert path in paths, path


def test_metrics_label_v2_routes_by_their_rule(client):
    client.post("/v2/models/mlb-height/infer", json={"inputs": [tensor()]})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/v2/models/<name>/infer"' in text


# ------------------------------------------------------------------------ SageMaker


def test_ping_is_200_when_ready(client):
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"Weight": 200}', "application/json"), ("200\n", "text/csv"), ("200", "text/csv")],
)
def test_invocations_take_json_or_csv(client, body, content_type):
    response = client.post("/invocations", data=body, content_type=content_type)
    assert response.status_code == 200
    answer = response.get_json()
    answer = answer.get("prediction") or answer["predictions"][0]
    assert answer == ANSWER_200_LBS


def test_invocations_answer_csv_one_value_per_line(client):
    response = client.post("/invocations", data="200\n180\n", content_type="text/csv",
                           headers={"Accept": "text/csv"})  # fmt: skip
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.get_data(as_text=True) == (
        f"{ANSWER_200_LBS['height_inches']}\n{ANSWER_180_LBS['height_inches']}\n"
    )


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        ("200", {"Content-Type": "application/xml"}, 415, "not supported"),
        ("200", {"Content-Type": "text/csv", "Accept": "image/png"}, 406, "Cannot answer"),
        ("abc", {"Content-Type": "text/csv"}, 400, r"Weight\[0\] must be a number"),
        ("200,1", {"Content-Type": "text/csv"}, 400, "has 2 values"),
        ("", {"Content-Type": "text/csv"}, 400, "no rows"),
        ('"20\r0', {"Content-Type": "text/csv"}, 400, "not valid CSV|must be a number"),
        ("2\x000", {"Content-Type": "text/csv"}, 400, "not valid CSV|must be a number"),
        ('{"Weight": -1}', {"Content-Type": "application/json"}, 400, "greater than 0"),
    ],
)
def test_invocations_errors_are_json(client, body, headers, status, words):
    response = client.post("/invocations", data=body, headers=headers)
    assert response.status_code == status and response.is_json
    assert re.search(words, response.get_json()["error"]), response.get_json()
