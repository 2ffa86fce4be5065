"""The Lambda handler answers sample API Gateway events and direct invocations like the HTTP API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ANSWER_200_LBS, BAD_BODIES, ROOT

import mlib
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web import lambda_handler

EVENTS = Path(__file__).resolve().parent / "events"
COOKBOOK_ANSWER = {"prediction": ANSWER_200_LBS}


def sample(name: str):
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def served_model(monkeypatch, trained_model):
    """Serve the test-trained model, loaded afresh for each test as a cold start would."""
    monkeypatch.setenv("MODEL_PATH", str(trained_model))
    mlib.forget_loaded_models()
    yield trained_model
    mlib.forget_loaded_models()


def http_event(method: str, path: str, body: str | bytes | None = None, *, rest: bool = False):
    """Return a sample proxy event (REST payload 1.0 or HTTP API 2.0) for *method* *path*."""
    event = sample("apigw-rest-predict.json" if rest else "apigw-http-predict.json")
    if rest:
        event["httpMethod"], event["path"] = method, path
    else:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
    if isinstance(body, bytes):  # API Gateway passes bodies that are not UTF-8 as base64
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    return event


def decoded(response: dict) -> tuple[int, dict]:
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("name", ["apigw-rest-predict.json", "apigw-http-predict.json"])
def test_sample_proxy_events_get_the_cookbook_answer(name, served_model):
    response = lambda_handler.handler(sample(name), None)
    assert decoded(response) == (200, COOKBOOK_ANSWER)
    version = mlib.read_metadata(served_model)["model_version"]
    assert response["headers"]["X-Model-Version"] == version


def test_direct_invocation_returns_the_body_itself():
    answer = lambda_handler.handler(sample("direct-batch.json"), None)
    heights = [p["height_human_readable"] for p in answer["predictions"]]
    assert heights == ["6 foot, 0 inches", "6 foot, 2 inches", "6 foot, 5 inches"]
    assert lambda_handler.handler({"Weight": 200}, None) == COOKBOOK_ANSWER
    assert lambda_handler.handler('{"Weight": 200}', None) == COOKBOOK_ANSWER


@pytest.mark.parametrize("rest", [False, True], ids=["http-api", "rest-api"])
@pytest.mark.parametrize(("body", "words"), BAD_BODIES[:12] + BAD_BODIES[-5:])
def test_bad_bodies_answer_exactly_as_the_flask_service(client, rest, body, words):
    flask = client.post("/predict", data=body)
    response = lambda_handler.handler(http_event("POST", "/predict", body, rest=rest), None)
    assert decoded(response) == (flask.status_code, flask.get_json())
    assert flask.status_code == 400


@pytest.mark.parametrize(
    "document",
    [{"Weight": "heavy"}, {"Weight": None}, {"Weight": True}, {"Weight": []}, {"weight": 1},
     [200], 200, None, {"Weight": float("nan")}],
)  # fmt: skip
def test_direct_invocation_errors_have_the_http_error_shape(client, document):
    answer = lambda_handler.handler(document, None)
    assert list(answer) == ["error"]
    if not isinstance(document, dict) or document.get("Weight") == document.get("Weight"):
        # The same document over HTTP fails with the same message (NaN cannot be sent as JSON).
        assert client.post("/predict", data=json.dumps(document)).get_json() == answer


def test_limits_match_the_http_api(client):
    too_many = json.dumps({"Weight": [200] * (MAX_BATCH_ROWS + 1)})
    response = lambda_handler.handler(http_event("POST", "/predict", too_many), None)
    assert decoded(response) == (413, client.post("/predict", data=too_many).get_json())
    too_big = '{"Weight": [' + ",".join(["200"] * 300_000) + "]}"
    status, body = decoded(lambda_handler.handler(http_event("POST", "/predict", too_big), None))
    assert (status, body) == (413, client.post("/predict", data=too_big).get_json())
    direct = lambda_handler.handler({"Weight": [200] * (MAX_BATCH_ROWS + 1)}, None)
    assert direct == client.post("/predict", data=too_many).get_json()


@pytest.mark.parametrize("path", ["/health", "/ready", "/model", "/openapi.json"])
def test_get_routes_answer_like_the_flask_service(client, path):
    status, body = decoded(lambda_handler.handler(http_event("GET", path), None))
    flask = client.get(path)
    assert status == flask.status_code == 200
    if path == "/openapi.json":
        assert set(body["paths"]) == set(lambda_handler.ROUTES)
        assert all(body["paths"][p] == flask.get_json()["paths"][p] for p in body["paths"])
    else:
        assert body == flask.get_json()


@pytest.mark.parametrize(("method", "path"), [("GET", "/predict"), ("POST", "/health")])
def test_wrong_method_is_405_with_allow(client, method, path):
    response = lambda_handler.handler(http_event(method, path), None)
    flask = client.open(path, method=method)
    assert decoded(response) == (405, flask.get_json())
    assert response["headers"]["Allow"] in flask.headers["Allow"]


def test_unknown_route_is_404_like_flask(client):
    response = lambda_handler.handler(http_event("GET", "/nope"), None)
    assert decoded(response) == (404, client.get("/nope").get_json())


def test_http_api_stage_prefix_is_not_part_of_the_route():
    event = http_event("POST", "/prod/predict", '{"Weight": 200}')
    event["requestContext"]["stage"] = "prod"
    assert decoded(lambda_handler.handler(event, None)) == (200, COOKBOOK_ANSWER)


def test_base64_bodies_are_decoded_and_bad_base64_is_400():
    event = http_event("POST", "/predict", b'{"Weight": 200}')
    assert decoded(lambda_handler.handler(event, None)) == (200, COOKBOOK_ANSWER)
    event["body"] = "not base64!"
    status, body = decoded(lambda_handler.handler(event, None))
    assert status == 400 and "not valid base64" in body["error"]


def test_a_tampered_model_is_refused(monkeypatch, model_copy):
    model_copy.write_bytes(model_copy.read_bytes() + b"tampered")
    monkeypatch.setenv("MODEL_PATH", str(model_copy))
    status, body = decoded(lambda_handler.handler(sample("apigw-http-predict.json"), None))
    assert status == 503 and "does not match its metadata" in body["error"]
    assert decoded(lambda_handler.handler(http_event("GET", "/health"), None))[0] == 200
    with pytest.raises(lambda_handler.ModelUnavailable, match="does not match its metadata"):
        lambda_handler.handler({"Weight": 200}, None)


def test_the_package_runs_without_any_third_party_library(tmp_path):
    # `make lambda-package` is what the SAM template deploys; run its handler with -S (no
    # site-packages: no numpy, scikit-learn or Flask) on the sample events.
    package = tmp_path / "lambda"
    subprocess.run(
        ["make", "--no-print-directory", "lambda-package", f"LAMBDA_DIR={package}"],
        cwd=ROOT, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    core = [p.relative_to(ROOT).as_posix() for p in (ROOT / "cookbook" / "core").glob("*.py")]
    packaged = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    # The model core, the handler and what it imports, the model pair; nothing of Flask's side.
    assert {*core, "cookbook/web/lambda_handler.py", "model.joblib", "model.json"} <= packaged
    assert not packaged & {"cookbook/web/views.py", "cookbook/web/factory.py"}
    code = """
import json, sys
try:
    import numpy
    sys.exit("numpy is importable: the check proves nothing")
except ImportError:
    pass
from cookbook.web import lambda_handler
for path in sys.argv[1:]:
    with open(path) as f:
        print(json.dumps(lambda_handler.handler(json.load(f), None)))
"""
    events = [EVENTS / "apigw-http-predict.json", EVENTS / "direct-batch.json"]
    result = subprocess.run(
        [sys.executable, "-S", "-B", "-c", code, *map(str, events)],
        cwd=package, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    http_answer, direct_answer = map(json.loads, result.stdout.splitlines())
    assert decoded(http_answer) == (200, COOKBOOK_ANSWER)
    assert len(direct_answer["predictions"]) == 3


class _CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short tags (!Ref, !Sub) as plain values."""


_CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: suffix)


def test_sam_template_wires_every_route_to_the_handler():
    template = yaml.load(
        (ROOT / "deploy" / "lambda" / "template.yaml").read_text(), Loader=_CloudFormationLoader
    )
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = template["Resources"]["PredictFunction"]["Properties"]
    module, _, name = function["Handler"].rpartition(".")
    assert getattr(lambda_handler, name) is lambda_handler.handler
    assert module == lambda_handler.__name__ == "cookbook.web.lambda_handler"
    makefile = (ROOT / "Makefile").read_text()
    assert "LAMBDA_DIR ?= build/lambda" in makefile
    assert (ROOT / "deploy" / "lambda" / function["CodeUri"]).resolve() == ROOT / "build" / "lambda"
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"])
        for event in function["Events"].values()
        if event["Type"] == "HttpApi"
    }
    assert routes == {(path, method) for path, method in lambda_handler.ROUTES.items()}
    assert function["Runtime"].startswith("python3.1")


def test_http_events_and_direct_documents_are_told_apart():
    assert lambda_handler.is_http_event(sample("apigw-rest-predict.json"))
    assert lambda_handler.is_http_event(sample("apigw-http-predict.json"))
    assert not lambda_handler.is_http_event({"Weight": 200})
    assert not lambda_handler.is_http_event({"Weight": 200, "requestContext": "x"})
    assert not lambda_handler.is_http_event([200])


def cfn_lint(template: Path) -> subprocess.CompletedProcess:
    """Run cfn-lint, which checks SAM resources against the bundled schemas (no network)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys, cfnlint.runner; sys.exit(cfnlint.runner.main())",
         str(template)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_sam_template_passes_cfn_lint(tmp_path):
    template = ROOT / "deploy" / "lambda" / "template.yaml"
    result = cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and the check can fail: a misspelt event property is an error.
    broken = tmp_path / "template.yaml"
    broken.write_text(template.read_text().replace("Method: POST", "Methd: POST"))
    result = cfn_lint(broken)
    assert result.returncode != 0 and "Methd" in result.stdout


@pytest.mark.parametrize("rest", [True, False])
def test_api_token_guards_predictions_and_metadata_like_the_flask_service(monkeypatch, rest):
    monkeypatch.setenv("API_TOKEN", "tok")
    for method, path, body in (("POST", "/predict", '{"Weight": 200}'), ("GET", "/model", None)):
        event = http_event(method, path, body, rest=rest)
        status, answer = decoded(lambda_handler.handler(event, None))
        assert status == 401 and "API_TOKEN" in answer["error"], path
        event["headers"] = {("Authorization" if rest else "authorization"): "Bearer tok"}
        assert decoded(lambda_handler.handler(event, None))[0] == 200, path
    for path in ("/health", "/ready", "/openapi.json"):
        assert decoded(lambda_handler.handler(http_event("GET", path, rest=rest), None))[0] == 200
    document = decoded(lambda_handler.handler(http_event("GET", "/openapi.json"), None))[1]
    assert document["paths"]["/predict"]["post"]["security"] == [{"apiToken": []}]
    assert "security" not in document["paths"]["/health"]["get"]
