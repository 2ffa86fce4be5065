"""Serve the model over HTTP: the cookbook's entry point for the Flask app.

``create_app`` (``cookbook.web.factory``) builds the app; this module re-exports it, so
``from app import create_app`` and ``gunicorn app:app`` work as the cookbook's readers
expect. Production runs ``python -m cookbook.web.server`` (or ``gunicorn -c gunicorn.conf.py
app:app`` behind a buffering proxy); ``python app.py`` runs Flask's own server for
development, never with the debugger.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from cookbook.core.errors import MlibError
from cookbook.web import request_log
from cookbook.web.factory import create_app
from cookbook.web.views import reload_model

__all__ = ["create_app", "reload_model"]


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
