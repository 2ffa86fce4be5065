"""Answer AWS Lambda invocations with the model: a thin adapter over the core and payload.

Two kinds of event arrive:

- API Gateway proxy events (REST API payload 1.0 and HTTP API payload 2.0) get HTTP answers:
  the Flask service's routes (``POST /predict``, ``GET /health``, ``/ready``, ``/model``,
  ``/openapi.json``), the same validation and the same ``{"error": ...}`` bodies and statuses.
- Direct invocations (``aws lambda invoke``, Step Functions) send the request document itself,
  ``{"Weight": 200}``, and get the response body itself; bad input answers ``{"error": ...}``.

The package needs no third-party library: the model is verified and served from its folded
form in ``model.json`` (see ``deploy/lambda/template.yaml`` and ``make lambda-package``): a
linear regression, or a logistic regression answering its label, probabilities and set as
``POST /predict`` does (``output`` and ``threshold`` in the body, or the event's query string).
A model served from ONNX or joblib is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from cookbook.core.errors import InvalidInput, MlibError
from cookbook.core.explained import can_explain
from cookbook.core.loading import folded_predictor, verified_metadata
from cookbook.core.model_cache import cached_predictor
from cookbook.core.prediction import Predictor
from cookbook.core.settings import model_path
from cookbook.web import auth, openapi, payload
from cookbook.web.openapi_security import API_TOKEN_SCHEME, secure

LOGGER = logging.getLogger(__name__)

# Route -> method. The Flask service's home page (HTML) and /metrics (Prometheus scrapes a
# long-lived process) have no meaning for Lambda; CloudWatch records its invocations.
ROUTES = {
    "/predict": "POST",
    "/health": "GET",
    "/ready": "GET",
    "/model": "GET",
    "/openapi.json": "GET",
}
# The routes that need API_TOKEN when it is set, as in the Flask service (cookbook.web.access):
# a prediction, and the model's metadata (it carries the training data's statistics).
PROTECTED = frozenset({"/predict", "/model"})


class ModelUnavailable(RuntimeError):
    """The packaged model could not be verified or loaded: a deployment fault, not bad input."""


def handler(event: Any, context: Any = None) -> Any:
    """Answer one Lambda invocation: an API Gateway proxy event or a direct request document."""
    if is_http_event(event):
        return _answer_http(event)
    return _answer_direct(event)


def is_http_event(event: Any) -> bool:
    """Return whether *event* is an API Gateway proxy event (payload format 1.0 or 2.0)."""
    if not isinstance(event, dict):
        return False
    request_context = event.get("requestContext")
    return "httpMethod" in event or (
        isinstance(request_context, dict) and isinstance(request_context.get("http"), dict)
    )


# ------------------------------------------------------------------ direct invocations


def _answer_direct(event: Any) -> dict[str, Any]:
    predictor = _predictor_or_raise()
    try:
        example = predictor.schema.example_text()
        document = payload.decode(event, example) if isinstance(event, str | bytes) else event
        return payload.predict(predictor, document)[0]
    except InvalidInput as exc:
        return {"error": str(exc)}


def default_predictor() -> Predictor:
    """Return the Predictor for ``model_path()``, verified and loaded once per warm container.

    Only folded models are served here: the package carries no scikit-learn.
    """
    return cached_predictor(model_path(), folded_only)


def folded_only(path: Path) -> Predictor:
    """Verify the model pair at *path* and return its folded Predictor, or raise ``MlibError``."""
    predictor = folded_predictor(verified_metadata(path), path)
    if predictor is None:
        raise MlibError(f"Model {path} has no folded form: Lambda serves linear models only.")
    return predictor


def _predictor_or_raise() -> Predictor:
    try:
        return default_predictor()
    except MlibError as exc:
        LOGGER.error("model unavailable: %s", exc)
        raise ModelUnavailable(str(exc)) from None


# --------------------------------------------------------------- API Gateway events


def _answer_http(event: dict[str, Any]) -> dict[str, Any]:
    method, path = request_line(event)
    if path == "/health" and method == "GET":
        return _response(200, {"status": "ok"})  # alive, whatever the model's state
    try:
        predictor = default_predictor()  # verified and loaded once per warm container
    except MlibError as exc:
        LOGGER.error("model unavailable: %s", exc)
        return _response(503, {"error": str(exc)})
    version = predictor.version
    if path not in ROUTES:
        body = {"error": f"No route {path}: see /openapi.json for the routes."}
        return _response(404, body, version)
    if method != ROUTES[path]:
        response = _response(405, {"error": f"{method} is not allowed on {path}."}, version)
        response["headers"]["Allow"] = ROUTES[path]
        return response
    token = os.environ.get("API_TOKEN")
    if token and path in PROTECTED and not auth.bearer_matches(_header(event, "authorization"),
                                                                token):  # fmt: skip
        response = _response(
            401, {"error": f"Send Authorization: Bearer <API_TOKEN> to call {path}."}, version
        )
        response["headers"]["WWW-Authenticate"] = "Bearer"
        return response
    if path == "/ready":
        try:
            value = predictor.probe()
        except MlibError as exc:
            return _response(503, {"error": str(exc)}, version)
        return _response(200, payload.ready_body(predictor, value), version)
    if path == "/model":
        return _response(200, dict(predictor.metadata), version)
    if path == "/openapi.json":
        return _response(200, _lambda_openapi(predictor), version)
    try:
        body, _rows, _values = payload.answer_body(predictor, _body_bytes(event), _query(event))
        return _response(200, body, version)
    except InvalidInput as exc:
        return _response(exc.status, {"error": str(exc)}, version)


def _header(event: dict[str, Any], name: str) -> str | None:
    """Return a request header of a proxy event (API Gateway keeps or lowers the case)."""
    headers = event.get("headers") or {}
    return next((str(v) for k, v in headers.items() if str(k).lower() == name), None)


def _query(event: dict[str, Any]) -> dict[str, str]:
    """Return a proxy event's query parameters (a classifier's ``output`` and ``threshold``)."""
    parameters = event.get("queryStringParameters") or {}
    return {str(k): str(v) for k, v in parameters.items()} if isinstance(parameters, dict) else {}


def request_line(event: dict[str, Any]) -> tuple[str, str]:
    """Return the (method, path) of a proxy event, without the stage's path prefix."""
    request_context = event.get("requestContext") or {}
    if "httpMethod" in event:  # payload format 1.0 (REST API): `path` has no stage prefix
        return str(event["httpMethod"]).upper(), str(event.get("path") or "/")
    http = request_context["http"]  # payload format 2.0 (HTTP API)
    path = str(event.get("rawPath") or http.get("path") or "/")
    stage = request_context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return str(http.get("method", "")).upper(), path


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "Request body is marked base64 but is not valid base64: send it as JSON text."
        ) from None


def _lambda_openapi(predictor: Predictor) -> dict[str, Any]:
    document = openapi.document(
        predictor.schema, predictor.version, explains=can_explain(predictor)
    )
    document["paths"] = {p: ops for p, ops in document["paths"].items() if p in ROUTES}
    if os.environ.get("API_TOKEN"):
        secure(document, {(path, ROUTES[path].lower()): API_TOKEN_SCHEME
                          for path in PROTECTED})  # fmt: skip
    return document


def _response(status: int, body: Any, model_version: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if model_version:
        headers["X-Model-Version"] = model_version
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(body, allow_nan=False),
        "isBase64Encoded": False,
    }
