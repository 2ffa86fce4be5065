"""Who may call which route: the one place where the service's tokens are checked.

Every route needs ``API_TOKEN`` (when it is set) unless its view is declared otherwise:
``open_route`` for what an orchestrator, a scraper or a browser needs without a secret
(probes, metrics, the OpenAPI document, the page's shell), ``admin_route`` for the routes
that need ``ADMIN_TOKEN``, ``open_unless`` for a route that is open until the request asks
for something protected (the page: its shell is open, its predictions are not). A route
that declares nothing is protected, so a new route cannot forget the token; the check is
one ``before_request`` hook, and tests walk ``app.url_map`` to prove it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request

from cookbook.web import auth
from cookbook.web.openapi_security import ADMIN_TOKEN_SCHEME, API_TOKEN_SCHEME
from cookbook.web.responses import unauthorized

OPEN = "open"
PROTECTED = "protected"
ADMIN = "admin"
ACCESS_ATTRIBUTE = "cookbook_access"
# Flask's own static files view: the page's script, style and icon.
OPEN_ENDPOINTS = frozenset({"static"})
# The form field that carries the token when a page is submitted without JavaScript.
FORM_TOKEN_FIELD = "token"


@dataclass(frozen=True)
class Access:
    """What a view requires: its level and, for ``open_unless``, when it is protected."""

    level: str
    protected_when: Callable[[], bool] | None = None
    # Answers a refused request in the view's own form (the page renders HTML).
    refusal: Callable[[str], Any] | None = None
    form_token: bool = False


def _declare(view: Callable, access: Access) -> Callable:
    setattr(view, ACCESS_ATTRIBUTE, access)
    return view


def open_route(view: Callable) -> Callable:
    """Declare *view* open to anyone, token or not."""
    return _declare(view, Access(OPEN))


def admin_route(view: Callable) -> Callable:
    """Declare that *view* needs ``ADMIN_TOKEN``."""
    return _declare(view, Access(ADMIN))


def open_unless(protected_when: Callable[[], bool], refusal: Callable[[str], Any],
                *, form_token: bool = False) -> Callable[[Callable], Callable]:  # fmt: skip
    """Declare a view open unless *protected_when()* is true for the request.

    *refusal(message)* answers a refused request; with *form_token*, the token may also
    come in the submitted form's ``token`` field (a page used without JavaScript).
    """
    access = Access(PROTECTED, protected_when, refusal, form_token)
    return lambda view: _declare(view, access)


def access_of(view: Callable) -> Access:
    """Return what *view* declared (protected when it declared nothing)."""
    return getattr(view, ACCESS_ATTRIBUTE, Access(PROTECTED))


def endpoint_access(app: Flask, endpoint: str) -> Access:
    """Return the access of the view behind *endpoint*."""
    if endpoint in OPEN_ENDPOINTS:
        return Access(OPEN)
    return access_of(app.view_functions[endpoint])


def init_app(app: Flask) -> None:
    """Check every request's token before its view runs."""
    app.before_request(check_token)


def check_token() -> Any:
    """Refuse the request (401) when its route needs a token it did not send; else None."""
    endpoint = request.endpoint
    if endpoint is None:  # no route: 404 or 405 answer it, and they tell nothing secret
        return None
    app = current_app
    access = endpoint_access(app, endpoint)
    if access.level == OPEN:
        return None
    if access.level == ADMIN:
        if auth.bearer_matches(request.headers.get("Authorization"), app.config["ADMIN_TOKEN"]):
            return None
        return unauthorized(refusal_message("ADMIN_TOKEN", request.path))
    token = app.config["API_TOKEN"]
    if not token or (access.protected_when is not None and not access.protected_when()):
        return None
    if auth.bearer_matches(request.headers.get("Authorization"), token):
        return None
    if access.form_token and auth.token_matches(request.form.get(FORM_TOKEN_FIELD), token):
        return None
    message = refusal_message("API_TOKEN", request.path)
    if access.refusal is not None:
        return access.refusal(message)
    return unauthorized(message)


def refusal_message(token_name: str, path: str) -> str:
    """Return what a refused request is told: which token to send to call *path*."""
    return f"Send Authorization: Bearer <{token_name}> to call {path}."


def openapi_path(rule: str) -> str:
    """Return OpenAPI's form of a Flask rule: ``/v2/models/{name}`` for ``/v2/models/<name>``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def operations(app: Flask) -> dict[tuple[str, str], Access]:
    """Return the access of every operation of *app*: ``(OpenAPI path, method)`` -> Access."""
    found = {}
    for rule in app.url_map.iter_rules():
        access = endpoint_access(app, rule.endpoint)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found[(openapi_path(rule.rule), method.lower())] = access
    return found


def openapi_requirements(app: Flask) -> dict[tuple[str, str], str | None]:
    """Return the bearer scheme each operation of *app* needs, as ``openapi_security.secure`` takes.

    Without ``API_TOKEN`` the protected routes are open, and the document says so.
    """
    api = bool(app.config["API_TOKEN"])
    requirements: dict[tuple[str, str], str | None] = {}
    for operation, access in operations(app).items():
        if access.level == ADMIN:
            requirements[operation] = ADMIN_TOKEN_SCHEME
        elif access.level == OPEN or not api:
            requirements[operation] = None
        else:
            requirements[operation] = "optional" if access.protected_when else API_TOKEN_SCHEME
    return requirements
