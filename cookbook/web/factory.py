"""Build the Flask app: the model loaded once, the routes, the token rule, the plumbing.

``create_app`` is the application factory (flask's ``create_app`` pattern): defaults, then
the environment, then the caller's config. The root ``app.py`` re-exports it for the
cookbook's readers, gunicorn and the development server; the production server
(``cookbook.web.server``) calls it here.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from cookbook.core.errors import MlibError
from cookbook.core.settings import env_number, model_path
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.capture_database import CaptureError
from cookbook.web import access, page, quality, readiness, sagemaker, served, v2, views
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
