"""The bearer schemes of ``/openapi.json``, applied to the operations that need them."""

from __future__ import annotations

from typing import Any

from cookbook.web.openapi_fragments import error_response

API_TOKEN_SCHEME = "apiToken"
ADMIN_TOKEN_SCHEME = "adminToken"
_UNAUTHORIZED = error_response("Missing or wrong Bearer token.", "Send Authorization: Bearer ...")


def secure(document: dict[str, Any], requirements: dict[tuple[str, str], str | None]) -> None:
    """Declare the bearer schemes in *document* and apply them to its operations.

    *requirements* maps ``(path, method)`` to the scheme an operation needs
    (``API_TOKEN_SCHEME`` or ``ADMIN_TOKEN_SCHEME``), to ``"optional"`` for one that needs
    it only for some requests (the page: its shell is open, its predictions are not), or
    to None for an open one.
    """
    schemes = document["components"].setdefault("securitySchemes", {})
    for name, token in ((API_TOKEN_SCHEME, "API_TOKEN"), (ADMIN_TOKEN_SCHEME, "ADMIN_TOKEN")):
        schemes[name] = {"type": "http", "scheme": "bearer",
                         "description": f"The service's {token}."}  # fmt: skip
    for (path, method), scheme in requirements.items():
        operation = document["paths"].get(path, {}).get(method)
        if operation is None or scheme is None:
            continue
        if scheme == "optional":
            operation["security"] = [{}, {API_TOKEN_SCHEME: []}]
        else:
            operation["security"] = [{scheme: []}]
        operation["responses"].setdefault("401", _UNAUTHORIZED)
