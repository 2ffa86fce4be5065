"""The service's JSON routes: predict, health, readiness, model, metrics, OpenAPI, drift, reload.

Every view reads the served model from ``service_state()``; errors are JSON everywhere
(``register``'s handlers), and bad input is a 4xx that names the problem, never a 500.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from cookbook.core.errors import InvalidInput, MlibError
from cookbook.core.explained import can_explain
from cookbook.web import access, openapi, payload, readiness
from cookbook.web.access import admin_route, open_route
from cookbook.web.openapi_security import secure
from cookbook.web.reload import Outcome, ReloadBusy, log_refusal
from cookbook.web.responses import invalid_input_answer, json_response
from cookbook.web.served import (
    CANARY,
    ServedModel,
    ServiceState,
    note_canary,
    request_id_of_request,
    service_state,
)


def register(app: Flask) -> None:
    """Add the JSON routes and the JSON error handlers to *app*."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(InvalidInput, invalid_input)
    app.add_url_rule("/predict", view_func=predict, methods=["POST"])
    app.add_url_rule("/health", view_func=health)
    app.add_url_rule("/ready", view_func=ready)
    app.add_url_rule("/model", view_func=model_metadata)
    app.add_url_rule("/metrics", view_func=metrics)
    app.add_url_rule("/openapi.json", "openapi", view_func=openapi_document)
    app.add_url_rule("/drift", view_func=drift)
    if app.config["ADMIN_TOKEN"]:
        app.add_url_rule("/admin/reload", view_func=admin_reload, methods=["POST"])


def predict() -> Response:
    """Predict for one row or a batch in columns, with or without a ``Content-Type`` header
    (the cookbook's curl sends none)."""
    answer, canary_version = predict_answer(service_state(), request.get_data(cache=False),
                                            request.args, request.headers.get("X-Canary-Key"),
                                            request_id_of_request())  # fmt: skip
    note_canary(canary_version)
    return json_response(answer)


def predict_answer(state: ServiceState, body: bytes, query: Mapping[str, str],
                   canary_key: str | None, request_id: str) -> tuple[dict, str | None]:  # fmt: skip
    """Return ``/predict``'s answer and, when the canary answered, its version; raise
    ``InvalidInput``. No Flask here: the Flask view and the hot path both call it."""
    predictor, role = state.answering(canary_key)
    answer, rows, values = payload.answer_body(predictor, body, query)
    state.record(rows, values, answer, request_id, predictor, role)
    return answer, predictor.version if role == CANARY else None


@open_route
def health() -> Response:
    """Answer while the process is alive."""
    return json_response({"status": "ok"})


@open_route
def ready() -> Response:
    """Answer 200 when the model is loaded and a probe prediction succeeds, else 503."""
    try:
        predictor, value = readiness.probe_served()
    except MlibError as exc:
        return json_response({"error": str(exc)}, 503)
    return json_response(payload.ready_body(predictor, value))


def model_metadata() -> Response:
    """Return the served model's ``model.json``."""
    return json_response(service_state().served.predictor.metadata)


@open_route
def metrics() -> Response:
    """Return Prometheus metrics in the text format."""
    state = service_state()
    recorder = state.metrics
    # The sources first: a source that fails counts its failure in this very scrape.
    extra = b"".join(source() for source in state.metric_sources)
    text = recorder.render() + extra
    return current_app.response_class(text, mimetype=recorder.content_type)


@open_route
def openapi_document() -> Response:
    """Return the OpenAPI 3 document of every route, from the served model's schema."""
    predictor = service_state().served.predictor
    app = current_app
    document = openapi.document(predictor.schema, predictor.version,
                                admin=bool(app.config["ADMIN_TOKEN"]),
                                explains=can_explain(predictor))  # fmt: skip
    secure(document, access.openapi_requirements(app))
    return json_response(document)


def drift() -> Response:
    """Return this worker's input drift: PSI of recent inputs (and a classifier's answered
    classes) against the training data."""
    served = service_state().served
    report = served.drift.report()
    served.metrics.set_drift(served.drift.psis(), served.drift.class_psi())
    return json_response({"model_version": served.version, "worker_pid": os.getpid(),
                          **report})  # fmt: skip


@admin_route
def admin_reload() -> Response:
    """Load MODEL_PATH again; swap it in every worker if it verifies and passes the probe."""
    app = current_app
    try:
        outcome = reload_model(app._get_current_object())
    except ReloadBusy as exc:
        response = json_response({"error": str(exc)}, 503)
        response.headers["Retry-After"] = "1"
        return response
    body = {
        "model_version": outcome.model_version,
        "previous_model_version": outcome.previous_version,
        "generation": outcome.generation,
    }
    if not outcome.accepted:
        # 409: the request was fine; the model file on the server is what is wrong.
        message = f"Model refused, still serving {outcome.model_version}: {outcome.reason}"
        return json_response({"error": message, **body}, 409)
    return json_response({"status": "reloaded", **body})


def reload_model(app: Flask) -> Outcome:
    """Reload MODEL_PATH into *app* and tell every other worker to follow; return the Outcome.

    Called by the admin route in a worker and by gunicorn's master on SIGHUP.
    """
    state = service_state(app)
    candidate, outcome = state.reload.reload(app.config["MODEL_PATH"], state.served.predictor)
    if outcome.accepted:
        state.served = ServedModel.of(candidate, outcome.generation, state.metrics)
        state.metrics.reloads.inc()
    else:
        state.metrics.reload_refusals.inc()
    reload_canary(app)
    return outcome


def reload_canary(app: Flask) -> None:
    """Load CANARY_MODEL_PATH again in this process; a refused canary keeps serving."""
    state = service_state(app)
    if state.canary is None:
        return
    refusal = state.canary.reload(state.served.predictor)
    if refusal is not None:
        log_refusal(state.canary.path, state.canary.predictor, MlibError(refusal))
        state.metrics.reload_refusals.inc()


def catch_up(app: Flask, generation: int) -> None:
    """Load the model another process reloaded; keep the current one if it is refused."""
    state = service_state(app)
    try:
        candidate = state.reload.load_generation(generation)
        served = ServedModel.of(candidate, generation, state.metrics)
    except MlibError as exc:
        log_refusal(app.config["MODEL_PATH"], state.served.predictor, exc)
        state.metrics.reload_refusals.inc()
        state.served.generation = generation  # refuse once, not on every request
        return
    state.served = served
    reload_canary(app)


def http_error(exc: HTTPException) -> Response:
    """Answer 404, 405, 413 and the rest in JSON, like everything else."""
    status, body = http_error_answer(exc, request.method, request.path)
    response = json_response(body, status)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def http_error_answer(exc: HTTPException, method: str, path: str) -> tuple[int, dict[str, str]]:
    """Return the status and JSON body that answer *exc* for a *method* request to *path*."""
    messages = {
        404: f"No route {path}: see /openapi.json for the routes.",
        405: f"{method} is not allowed on {path}.",
        413: payload.BODY_TOO_LARGE,
    }
    return exc.code or 500, {"error": messages.get(exc.code or 500, exc.description or exc.name)}


def invalid_input(exc: InvalidInput) -> Response:
    """Answer input that cannot be answered (any route, any layer) with its status and message."""
    status, body = invalid_input_answer(exc)
    return json_response(body, status)
