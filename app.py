"""Serve the model over HTTP: ``create_app`` builds the Flask app from ``cookbook.web``.

Production runs ``gunicorn -c gunicorn.conf.py app:app``; ``python app.py`` runs
Flask's own server for development, never with the debugger.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from flask import Flask

from cookbook.core.errors import MlibError
from cookbook.core.settings import env_number, model_path
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.capture_store import CaptureError
from cookbook.web import access, page, quality, readiness, request_log, sagemaker, served, v2, views
from cookbook.web.capture import CaptureSettings
from cookbook.web.payload import MAX_BODY_BYTES
from cookbook.web.plumbing import RequestPlumbing

WEB_PACKAGE = "cookbook.web"  # the page's templates/ and static/ live beside its modules


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then the environment, then *config*; load the model once."""
    app = Flask(WEB_PACKAGE)
    app.config.from_mapping(
        MODEL_PATH=str(model_path()),  # honours the MODEL_PATH environment variable
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        # Unset or empty: the protected routes are open; the admin routes do not exist (404).
        API_TOKEN=os.environ.get("API_TOKEN") or None,
        ADMIN_TOKEN=os.environ.get("ADMIN_TOKEN") or None,
        # A candidate that scores the champion's traffic without answering (cookbook.web.shadow).
        SHADOW_MODEL_PATH=os.environ.get("SHADOW_MODEL_PATH") or None,
        # A candidate that answers CANARY_FRACTION of the requests (cookbook.web.canary).
        CANARY_MODEL_PATH=os.environ.get("CANARY_MODEL_PATH") or None,
        CANARY_FRACTION=_env_number("CANARY_FRACTION", 0.0),
        # Shadow answers further apart than this (in the target's unit) count as disagreeing.
        ROLLOUT_TOLERANCE=_env_number("ROLLOUT_TOLERANCE", 1.0),
        # /ready, /v2/health/ready and /ping answer 503 when the probe takes longer (seconds).
        PROBE_TIMEOUT=_env_number("PROBE_TIMEOUT", readiness.DEFAULT_PROBE_TIMEOUT_SECONDS),
    )
    if config:
        app.config.update(config)
    if "CAPTURE" not in app.config:
        try:
            app.config["CAPTURE"] = CaptureSettings.from_environ(
                {**os.environ, **app.config.get("CAPTURE_ENV", {})}, app.config["MODEL_PATH"]
            )
        except ValueError as exc:
            raise CaptureError(str(exc)) from None
    predictor = load_predictor(app.config["MODEL_PATH"])
    predictor.probe()
    served.init_app(app, predictor)
    app.json.sort_keys = False
    app.register_blueprint(page.blueprint)  # GET and POST /
    app.register_blueprint(v2.blueprint)  # the Open Inference Protocol, /v2/...
    app.register_blueprint(sagemaker.blueprint)  # SageMaker's /ping and /invocations
    app.register_blueprint(quality.blueprint)  # /feedback and /quality
    views.register(app)
    access.init_app(app)  # after every route: the token rule is checked before each view
    app.wsgi_app = RequestPlumbing(app, app.wsgi_app)
    return app


def _env_number(name: str, default: float) -> float:
    try:
        return env_number(os.environ, name, default)
    except ValueError as exc:
        raise MlibError(str(exc)) from None


def reload_model(app: Flask):
    """Reload MODEL_PATH in *app* and every worker (gunicorn's master calls it on SIGHUP)."""
    return views.reload_model(app)


def __getattr__(name: str) -> Any:
    # ``gunicorn app:app`` and ``from app import app`` build the app on first use,
    # so importing this module loads nothing.
    if name == "app":
        try:
            application = create_app()
        except MlibError as exc:
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
    except MlibError as exc:
        sys.exit(f"Error: {exc}")
    request_log.configure(os.environ.get("LOG_LEVEL", "INFO").upper())
    application.run(host=host, port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
