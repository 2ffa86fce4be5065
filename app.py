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

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

import api_spec
import mlib
import page
import payload
from observability import ServiceMetrics

PREDICTOR = "mlib"
METRICS = "metrics"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment, then *config*; load the model once."""
    app = Flask(__name__)
    app.config.from_mapping(
        MODEL_PATH=str(mlib.model_path()),  # honours the MODEL_PATH environment variable
        MAX_CONTENT_LENGTH=payload.MAX_BODY_BYTES,
    )
    if config:
        app.config.update(config)
    predictor = mlib.load_predictor(app.config["MODEL_PATH"])
    predictor.probe()
    app.extensions[PREDICTOR] = predictor
    app.extensions[METRICS] = ServiceMetrics()
    app.json.sort_keys = False

    app.before_request(_start_timer)
    app.after_request(_finish_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(payload.PayloadError, _payload_error)

    app.register_blueprint(page.blueprint)  # GET and POST /, and the CSP header
    app.add_url_rule("/predict", view_func=predict, methods=["POST"])
    app.add_url_rule("/health", view_func=health)
    app.add_url_rule("/ready", view_func=ready)
    app.add_url_rule("/model", view_func=model_metadata)
    app.add_url_rule("/metrics", view_func=metrics)
    app.add_url_rule("/openapi.json", view_func=openapi)
    return app


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
    document = payload.decode(request.get_data(cache=False))
    body = payload.predict(_predictor(), document)
    current_app.extensions[METRICS].predictions.inc(payload.weights_in(body))
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
    return json_response(api_spec.openapi_document(_predictor().version))


# -------------------------------------------------------------- request plumbing


def _start_timer() -> None:
    g.started = time.perf_counter()


def _finish_response(response: Response) -> Response:
    app = current_app
    response.headers["X-Model-Version"] = app.extensions[PREDICTOR].version
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"  # bounded label values
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    app.extensions[METRICS].observe_request(request.method, route, response.status_code, elapsed)
    return response


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
    application.run(host=host, port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
