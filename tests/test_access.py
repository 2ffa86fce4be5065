"""The token rule: every route that answers predictions or served data needs API_TOKEN.

The open routes are written here from the contract, not read from the app's
declarations, and every route of ``app.url_map`` is walked: a route added without a
declaration, or declared open by mistake, fails here.
"""

from __future__ import annotations

import re

import pytest
from helpers import ANSWER_200_LBS

from app import create_app

TOKEN = "s3cret-api"
ADMIN = "s3cret-admin"
# Open without a token: probes, discovery, metrics and the page's shell and files.
OPEN = {
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/ping"), ("GET", "/metrics"),
    ("GET", "/openapi.json"), ("GET", "/v2"), ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"), ("GET", "/v2/models/<name>"),
    ("GET", "/v2/models/<name>/versions/<version>"), ("GET", "/v2/models/<name>/ready"),
    ("GET", "/v2/models/<name>/versions/<version>/ready"), ("GET", "/static/<path:filename>"),
}  # fmt: skip
ADMIN_ROUTES = {("POST", "/admin/reload")}
PAGE = {("GET", "/"), ("POST", "/")}  # the shell is open, a prediction is not


@pytest.fixture
def guarded(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True, "API_TOKEN": TOKEN,
                      "ADMIN_TOKEN": ADMIN})  # fmt: skip
    return app, app.test_client()


def operations(app) -> list[tuple[str, str]]:
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods
        if method not in ("HEAD", "OPTIONS")
    )


def call(app, client, method: str, rule: str, headers: dict | None = None):
    """Send a request that the route would answer with data: a valid row, real names."""
    schema = app.extensions["cookbook"].served.predictor.schema
    version = app.extensions["cookbook"].served.version
    path = (rule.replace("<name>", schema.name).replace("<version>", version)
            .replace("<path:filename>", "page.js"))  # fmt: skip
    path = re.sub(r"<[^>]+>", "x", path)
    if "/infer" in path:
        body = {"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [200]}]}
    elif path == "/feedback":
        body = {"request_id": "0" * 32, "actual": 74.0}
    else:
        body = {"Weight": 200}
    kwargs = {"json": body} if method == "POST" else {}
    response = client.open(path, method=method, headers=headers or {}, **kwargs)
    response.get_data()  # read whole (a static file streams), then release the file
    response.close()
    return response


def test_every_route_is_known_to_the_contract(guarded):
    app, _ = guarded
    known = OPEN | ADMIN_ROUTES | PAGE
    protected = set(operations(app)) - known
    # The list of protected routes, and nothing else unaccounted for.
    assert protected == {
        ("POST", "/predict"), ("POST", "/invocations"), ("POST", "/feedback"),
        ("GET", "/quality"), ("GET", "/rollout"), ("GET", "/drift"), ("GET", "/model"),
        ("POST", "/v2/models/<name>/infer"), ("POST", "/v2/models/<name>/versions/<version>/infer"),
    }  # fmt: skip


@pytest.mark.parametrize("header", [None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "])
def test_every_protected_route_refuses_a_request_without_the_token(guarded, header):
    app, client = guarded
    headers = {"Authorization": header} if header else {}
    for method, rule in operations(app):
        if (method, rule) in OPEN | PAGE:
            continue
        response = call(app, client, method, rule, headers)
        assert response.status_code == 401, (method, rule)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        token = "ADMIN_TOKEN" if (method, rule) in ADMIN_ROUTES else "API_TOKEN"
        assert token in response.get_json()["error"], (method, rule)


def test_every_protected_route_answers_with_the_token(guarded):
    app, client = guarded
    for method, rule in operations(app):
        if (method, rule) in OPEN | PAGE:
            continue
        token = ADMIN if (method, rule) in ADMIN_ROUTES else TOKEN
        response = call(app, client, method, rule, {"Authorization": f"Bearer {token}"})
        assert response.status_code != 401, (method, rule, response.get_data(as_text=True))


def test_every_open_route_answers_without_a_token(guarded):
    app, client = guarded
    for method, rule in operations(app):
        if (method, rule) in OPEN:
            assert call(app, client, method, rule).status_code == 200, (method, rule)


def test_the_admin_token_is_not_the_api_token(guarded):
    _, client = guarded
    assert client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}
                       ).status_code == 401  # fmt: skip
    assert client.post("/predict", json={"Weight": 200},
                       headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 401  # fmt: skip


def test_without_api_token_the_data_routes_are_open(client):
    assert client.post("/predict", json={"Weight": 200}).status_code == 200
    assert client.get("/model").status_code == 200
    assert client.get("/?weight=200").status_code == 200


def test_the_page_shell_is_open_and_its_predictions_are_not(guarded):
    _, client = guarded
    shell = client.get("/")
    assert shell.status_code == 200 and 'name="token"' in shell.get_data(as_text=True)
    for response in (client.get("/?weight=200"), client.post("/", data={"weight": "200"})):
        page = response.get_data(as_text=True)
        assert response.status_code == 401 and response.mimetype == "text/html"
        assert "API_TOKEN" in page and "Predicted height" in page  # the page, with the error
        assert 'id="answer-human"></strong>' in page  # and no answer


def test_the_page_takes_the_token_from_its_form_or_the_header(guarded):
    _, client = guarded
    by_form = client.post("/", data={"weight": "200", "token": TOKEN})
    by_header = client.get("/?weight=200", headers={"Authorization": f"Bearer {TOKEN}"})
    wrong = client.post("/", data={"weight": "200", "token": TOKEN + "x"})
    for response in (by_form, by_header):
        assert response.status_code == 200
        assert ANSWER_200_LBS["height_human_readable"] in response.get_data(as_text=True)
    assert wrong.status_code == 401


def test_the_form_token_counts_only_for_the_page(guarded):
    _, client = guarded
    response = client.post("/predict", data={"Weight": "200", "token": TOKEN})
    assert response.status_code == 401


def test_openapi_declares_the_bearer_scheme_on_every_protected_operation(guarded):
    app, client = guarded
    document = client.get("/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http"}
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}
    for method, rule in operations(app):
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            assert rule.startswith("/static"), rule
            continue
        security = operation.get("security")
        if (method, rule) in OPEN:
            assert not security, (method, rule)
        elif (method, rule) in PAGE:
            assert {} in security and len(security) == 2, (method, rule)
        else:
            assert security and {} not in security, (method, rule)
            assert "401" in operation["responses"], (method, rule)


def test_openapi_without_api_token_requires_none(client):
    document = client.get("/openapi.json").get_json()
    assert all("security" not in op for ops in document["paths"].values() for op in ops.values())
