"""Serve the height model over HTTP: a thin Flask adapter over ``mlib``.

Production runs ``gunicorn -c gunicorn.conf.py app:app``; ``python app.py`` runs
Flask's own server for development, never with the debugger.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

import api_spec
import auth
import mlib
import model_reload
import page
import payload
import request_log
from drift import DriftWindow
from observability import ServiceMetrics

PREDICTOR = "mlib"
METRICS = "metrics"
RELOAD = "reload"  # the reload generation shared by every worker
SERVED = "served"  # what this process serves: generation, drift window
# Refresh the drift gauge every this many weights: PSI costs a few microseconds.
DRIFT_GAUGE_EVERY = 64


class Served:
    """This process's view of the model: the reload generation it has and its drift window."""

    def __init__(self, predictor: mlib.Predictor, generation: int) -> None:
        self.generation = generation
        self.low_lbs, self.high_lbs = predictor.weight_range_lbs
        self.drift = DriftWindow(predictor.metadata["weight_histogram"])
        self.weights_since_gauge = 0

    def observe(self, recorder: ServiceMetrics, weight: Any, body: dict) -> None:
        """Record answered weights and heights in the ML metrics and the drift window.

        *weight* is the request's ``Weight`` and *body* the answer: every weight in it
        was validated, so each is a finite number.
        """
        low, high = self.low_lbs, self.high_lbs
        if "prediction" in body:
            weights = (float(weight),)
            recorder.observe_prediction(weights[0], body["prediction"]["height_inches"], low, high)
        else:
            weights = [float(w) for w in weight]
            heights = [p["height_inches"] for p in body["predictions"]]
            recorder.observe_predictions(weights, heights, low, high)
        self.drift.add(weights)
        self.weights_since_gauge += len(weights)
        if self.weights_since_gauge >= DRIFT_GAUGE_EVERY:
            self.weights_since_gauge = 0
            recorder.drift_psi.set(self.drift.psi())


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment, then *config*; load the model once."""
    app = Flask(__name__)
    app.config.from_mapping(
        MODEL_PATH=str(mlib.model_path()),  # honours the MODEL_PATH environment variable
        MAX_CONTENT_LENGTH=payload.MAX_BODY_BYTES,
        # Unset or empty: /predict is open and the admin routes do not exist (404).
        API_TOKEN=os.environ.get("API_TOKEN") or None,
        ADMIN_TOKEN=os.environ.get("ADMIN_TOKEN") or None,
    )
    if config:
        app.config.update(config)
    predictor = mlib.load_predictor(app.config["MODEL_PATH"])
    predictor.probe()
    app.extensions[PREDICTOR] = predictor
    app.extensions[METRICS] = ServiceMetrics()
    # Created before gunicorn forks (preload_app), so every worker shares it.
    app.extensions[RELOAD] = model_reload.ReloadState()
    app.extensions[SERVED] = _served(predictor, 0)
    app.json.sort_keys = False

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(payload.PayloadError, _payload_error)

    app.register_blueprint(page.blueprint)  # GET and POST /
    app.add_url_rule("/predict", view_func=predict, methods=["POST"])
    app.add_url_rule("/health", view_func=health)
    app.add_url_rule("/ready", view_func=ready)
    app.add_url_rule("/model", view_func=model_metadata)
    app.add_url_rule("/metrics", view_func=metrics)
    app.add_url_rule("/openapi.json", view_func=openapi)
    app.add_url_rule("/drift", view_func=drift)
    if app.config["ADMIN_TOKEN"]:
        app.add_url_rule("/admin/reload", view_func=admin_reload, methods=["POST"])
    app.wsgi_app = RequestPlumbing(app, app.wsgi_app)
    return app


def _served(predictor: mlib.Predictor, generation: int) -> Served:
    try:
        return Served(predictor, generation)
    except (KeyError, TypeError) as exc:
        raise mlib.ModelError(
            f"model.json lacks a usable weight_histogram ({exc}): retrain."
        ) from None


def _predictor() -> mlib.Predictor:
    return current_app.extensions[PREDICTOR]


def json_response(body: Any, status: int = 200) -> Response:
    """Return *body* as a JSON response (plain ``json.dumps``: fast and key order kept)."""
    return current_app.response_class(
        json.dumps(body, allow_nan=False), status=status, mimetype="application/json"
    )


# -------------------------------------------------------------------------- routes


def predict() -> Response:
    """Predict heights for ``{"Weight": w}`` or ``{"Weight": [w, ...]}``, with or without a
    ``Content-Type`` header (the cookbook's curl sends none)."""
    app = current_app._get_current_object()
    token = app.config["API_TOKEN"]
    if token and not auth.bearer_matches(request.headers.get("Authorization"), token):
        return _unauthorized("Send Authorization: Bearer <API_TOKEN> to call /predict.")
    document = payload.decode(request.get_data(cache=False))
    predictor = _predictor()
    body = payload.predict(predictor, document)
    app.extensions[SERVED].observe(app.extensions[METRICS], document["Weight"], body)
    return json_response(body)


def health() -> Response:
    """Answer while the process is alive."""
    return json_response({"status": "ok"})


def ready() -> Response:
    """Answer 200 when the model is loaded and a probe prediction succeeds, else 503."""
    predictor = current_app.extensions.get(PREDICTOR)
    if predictor is None:
        return json_response({"error": "No model is loaded."}, 503)
    try:
        height = predictor.probe()
    except mlib.MlibError as exc:
        return json_response({"error": str(exc)}, 503)
    return json_response(
        {"status": "ready", "model_version": predictor.version, "probe_height_inches": height}
    )


def model_metadata() -> Response:
    """Return the served model's ``model.json``."""
    return json_response(_predictor().metadata)


def metrics() -> Response:
    """Return Prometheus metrics in the text format."""
    recorder = current_app.extensions[METRICS]
    return current_app.response_class(recorder.render(), mimetype=recorder.content_type)


def openapi() -> Response:
    """Return the OpenAPI 3 document of every route."""
    admin = bool(current_app.config["ADMIN_TOKEN"])
    return json_response(api_spec.openapi_document(_predictor().version, admin=admin))


def drift() -> Response:
    """Return this worker's input drift: PSI of recent weights against the training ones."""
    app = current_app
    window = app.extensions[SERVED].drift
    report = window.report()
    app.extensions[METRICS].drift_psi.set(report["psi"])
    return json_response({"model_version": _predictor().version, "worker_pid": os.getpid(),
                          **report})  # fmt: skip


def admin_reload() -> Response:
    """Load MODEL_PATH again; swap it in every worker if it verifies and passes the probe."""
    app = current_app
    if not auth.bearer_matches(request.headers.get("Authorization"), app.config["ADMIN_TOKEN"]):
        return _unauthorized("Send Authorization: Bearer <ADMIN_TOKEN> to reload the model.")
    try:
        outcome = reload_model(app)
    except model_reload.ReloadBusy as exc:
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


def reload_model(app: Flask) -> model_reload.Outcome:
    """Reload MODEL_PATH into *app* and tell every other worker to follow; return the Outcome.

    Called by the admin route in a worker and by gunicorn's master on SIGHUP.
    """
    candidate, outcome = app.extensions[RELOAD].reload(
        app.config["MODEL_PATH"], app.extensions[PREDICTOR]
    )
    recorder = app.extensions[METRICS]
    if outcome.accepted:
        _swap(app, candidate, outcome.generation)
        recorder.reloads.inc()
    else:
        recorder.reload_refusals.inc()
    return outcome


def _swap(app: Flask, predictor: mlib.Predictor, generation: int) -> None:
    # One assignment each: a request sees the old model or the new one, never half of each.
    app.extensions[SERVED] = _served(predictor, generation)
    app.extensions[PREDICTOR] = predictor


def _catch_up(app: Flask, generation: int) -> None:
    """Load the model another process reloaded; keep the current one if it is refused."""
    current = app.extensions[PREDICTOR]
    try:
        candidate = app.extensions[RELOAD].load_generation(generation)
        served = _served(candidate, generation)
    except mlib.MlibError as exc:
        model_reload.log_refusal(app.config["MODEL_PATH"], current, exc)
        app.extensions[METRICS].reload_refusals.inc()
        app.extensions[SERVED].generation = generation  # refuse once, not on every request
        return
    app.extensions[SERVED] = served
    app.extensions[PREDICTOR] = candidate


def _unauthorized(message: str) -> Response:
    response = json_response({"error": message}, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


# -------------------------------------------------------------- request plumbing


class RequestPlumbing:
    """Time, label, log and count every request, and add the headers every response carries.

    It sits under Flask, on the raw WSGI environ and header list: on a request that
    takes about 100 µs, Flask's context proxies and ``Headers`` methods in before/after
    hooks cost a tenth of it (measured with bench/run.py). It also times the whole of
    Flask's work, not just the view.
    """

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # Metric labels stay bounded: known routes by name, everything else "unmatched".
        self.routes = {rule.rule for rule in app.url_map.iter_rules() if "<" not in rule.rule}
        self.static_prefix = f"{app.static_url_path}/"
        self.static_route = f"{app.static_url_path}/<path:filename>"
        self.security_headers = [
            ("Content-Security-Policy", page.CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
        ]

    def __call__(self, environ: dict, start_response: Any) -> Any:
        started = time.perf_counter()
        extensions = self.app.extensions
        generation = extensions[RELOAD].generation  # one read of shared memory
        if generation != extensions[SERVED].generation:
            _catch_up(self.app, generation)
        request_id = request_log.request_id(environ.get("HTTP_X_REQUEST_ID"))
        answered = []

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            # Read when the view is done: an admin reload answers with the new version.
            version = extensions[PREDICTOR].version
            answered.extend((int(status[:3]), version))
            headers.append(("X-Model-Version", version))
            headers.append(("X-Request-ID", request_id))
            headers.extend(self.security_headers)
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, start)
        elapsed = time.perf_counter() - started
        status, version = answered
        method = environ["REQUEST_METHOD"]
        # WSGI hands the path over as latin-1 text; the bytes on the wire were UTF-8.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        extensions[METRICS].observe_request(method, self._route(path), status, elapsed)
        request_log.REQUESTS.write(method, path, status, elapsed, version, request_id)
        return body

    def _route(self, path: str) -> str:
        if path in self.routes:
            return path
        return self.static_route if path.startswith(self.static_prefix) else "unmatched"


def _http_error(exc: HTTPException) -> Response:
    # 404, 405, 413 and the rest answer in JSON like everything else.
    messages = {
        404: f"No route {request.path}: see /openapi.json for the routes.",
        405: f"{request.method} is not allowed on {request.path}.",
        413: "Request body is larger than 1 MiB: send fewer weights.",
    }
    message = messages.get(exc.code or 500, exc.description or exc.name)
    response = json_response({"error": message}, exc.code or 500)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _payload_error(exc: payload.PayloadError) -> Response:
    return json_response({"error": str(exc)}, exc.status)


# ------------------------------------------------------------------ entry points


def __getattr__(name: str) -> Any:
    # ``gunicorn app:app`` and ``from app import app`` build the app on first use,
    # so importing this module loads nothing.
    if name == "app":
        try:
            application = create_app()
        except mlib.MlibError as exc:
            # gunicorn prints a RuntimeError as one "Error: ..." line, anything else as a traceback.
            raise RuntimeError(str(exc)) from None
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Serve with Flask's development server on HOST:PORT (default 127.0.0.1:8080)."""
    host = os.environ.get("HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("PORT", "8080"))
        application = create_app()
    except ValueError:
        sys.exit(f"Error: PORT must be a number, got {os.environ.get('PORT')!r}.")
    except mlib.MlibError as exc:
        sys.exit(f"Error: {exc}")
    request_log.configure(os.environ.get("LOG_LEVEL", "INFO").upper())
    application.run(host=host, port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
