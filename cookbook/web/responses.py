"""JSON answers, the same way on every route."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app


def json_response(body: Any, status: int = 200) -> Response:
    """Return *body* as a JSON response (plain ``json.dumps``: fast and key order kept)."""
    return current_app.response_class(
        json.dumps(body, allow_nan=False), status=status, mimetype="application/json"
    )


def unauthorized(message: str) -> Response:
    """Return a 401 JSON answer asking for a Bearer token."""
    response = json_response({"error": message}, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
