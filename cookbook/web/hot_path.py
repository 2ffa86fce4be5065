"""Answer the prediction routes straight from RSGI's scope and body, as the Flask app would.

The production server's adapter (``cookbook.web.rsgi``) hands a complete request here
before it builds a WSGI environ; what is answered here never meets Flask, and everything
else (``None``) goes on to the Flask app unchanged. The answer is the one Flask gives,
byte for byte, because both are adapters over the same core: the route and its token rule
come from the app's own url_map and declarations (``access``), the prediction from
``payload.answer_body``, the errors from ``responses``, what is recorded from
``ServiceState.record``, and the plumbing's headers, metrics and log line from
``plumbing``. Only what is certain to be answered alike is taken: ``POST /predict`` on an
app whose only hook before that view is the token check, with at most one of each header
it reads and no header name that WSGI would fold into one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.exceptions import HTTPException, InternalServerError

from cookbook.core.errors import InvalidInput
from cookbook.web import access, auth, payload, request_log, views
from cookbook.web.plumbing import SECURITY_HEADERS, RequestPlumbing
from cookbook.web.request_log import REQUESTS
from cookbook.web.responses import (
    JSON_TYPE,
    invalid_input_answer,
    json_text,
    unauthorized_answer,
)
from cookbook.web.served import CANARY, service_state

# status, headers, body: what ``protocol.response_bytes`` takes.
Answer = tuple[int, list[tuple[str, str]], bytes]
METHOD = "POST"
# The headers a prediction reads (RSGI names them in lower case).
AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
CANARY_KEY = "x-canary-key"
READ_HEADERS = (AUTHORIZATION, REQUEST_ID, CANARY_KEY)


class HotPath:
    """Answer ``POST /predict`` from an RSGI scope and its body, as *app* would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.state = service_state(app)
        self.log = app.logger
        # path -> (the route's metric label, whether it needs API_TOKEN, its view's core)
        self.routes: dict[str, tuple[str, bool, Callable]] = {}
        if not answered_alike(app):
            return
        adapter = app.url_map.bind("localhost")
        for view, core in ((views.predict, self.predict),):
            for rule in app.url_map.iter_rules():
                if app.view_functions.get(rule.endpoint) is not view or "<" in rule.rule:
                    continue
                try:  # the path must reach this rule (no other rule, no redirect before it)
                    endpoint, _ = adapter.match(rule.rule, METHOD)
                except HTTPException:
                    continue
                level = access.endpoint_access(app, endpoint)
                if endpoint != rule.endpoint or not plain(level):
                    continue
                self.routes[rule.rule] = (rule.rule, level.level == access.PROTECTED, core)

    def __call__(self, scope: Any, body: bytes) -> Answer | None:
        """Return the answer to a complete request, or None for the Flask app to answer it."""
        if scope.method != METHOD:
            return None
        route = self.routes.get(scope.path)
        if route is None:
            return None
        headers = scope.headers
        if "_" in "".join(headers.keys()):  # WSGI folds ``x_request_id`` into X-Request-ID
            return None
        values = []
        for name in READ_HEADERS:
            found = headers.get_all(name)
            if len(found) > 1:  # WSGI joins repeated headers with commas
                return None
            values.append(found[0] if found else None)
        authorization, client_request_id, canary_key = values
        query = query_of(scope.query_string)
        if query is None:
            return None
        return self.answer(scope.path, route, body, query, authorization, client_request_id,
                           canary_key)  # fmt: skip

    def answer(self, path: str, route: tuple[str, bool, Callable], body: bytes,
               query: dict[str, str], authorization: str | None, client_request_id: str | None,
               canary_key: str | None) -> Answer:  # fmt: skip
        """Answer a request the way ``RequestPlumbing`` and the Flask app around its view do."""
        started = time.perf_counter()
        state = self.state
        generation = state.reload.generation
        if generation != state.served.generation:
            views.catch_up(self.app, generation)
        request_id = request_log.request_id(client_request_id)
        label, protected, core = route
        version = None
        extra: list[tuple[str, str]] = []
        token = self.app.config["API_TOKEN"]
        try:
            if protected and token and not auth.bearer_matches(authorization, token):
                status, answer, extra = unauthorized_answer(
                    access.refusal_message("API_TOKEN", path)
                )
            else:
                status = 200
                answer, version = core(body, query, canary_key, request_id)
            text = json_text(answer)
        except InvalidInput as exc:
            status, answer = invalid_input_answer(exc)
            text = json_text(answer)
        except Exception:  # Flask logs it and answers its 500 in JSON; so does this
            self.log.error(f"Exception on {path} [{METHOD}]", exc_info=True)
            status, answer = views.http_error_answer(InternalServerError(), METHOD, path)
            text = json_text(answer)
        content = text.encode()
        version = version or state.served.version
        headers = [("Content-Type", JSON_TYPE), ("Content-Length", str(len(content))), *extra,
                   ("X-Model-Version", version), ("X-Request-ID", request_id),
                   *SECURITY_HEADERS]  # fmt: skip
        elapsed = time.perf_counter() - started
        state.metrics.observe_request(METHOD, label, status, elapsed)
        REQUESTS.write(METHOD, path, status, elapsed, version, request_id)
        return status, headers, content

    def predict(self, body: bytes, query: dict[str, str], canary_key: str | None,
                request_id: str) -> tuple[dict, str | None]:  # fmt: skip
        """Return ``/predict``'s answer and the canary's version when the canary answered."""
        state = self.state
        predictor, role = state.answering(canary_key)
        answer, rows, values = payload.answer_body(predictor, body, query)
        state.record(rows, values, answer, request_id, predictor, role)
        return answer, predictor.version if role == CANARY else None


def answered_alike(app: Flask) -> bool:
    """Return whether *app* runs nothing around a prediction view but what is done here:
    the request plumbing outside, the token check before it, no hook after it."""
    return (
        isinstance(app.wsgi_app, RequestPlumbing)
        and app.before_request_funcs.get(None) == [access.check_token]
        and not app.after_request_funcs.get(None)
        and not app.url_value_preprocessors.get(None)
    )


def plain(level: access.Access) -> bool:
    """Return whether *level* is decided by the ``Authorization`` header alone (or is open)."""
    if level.level == access.OPEN:
        return True
    return (
        level.level == access.PROTECTED
        and level.protected_when is None
        and level.refusal is None
        and not level.form_token
    )


def query_of(query_string: str) -> dict[str, str] | None:
    """Return the query's parameters as Flask's ``request.args.get`` reads them (the first of
    each name), or None when the query is not ASCII (Flask decodes it otherwise)."""
    if not query_string:
        return {}
    if not query_string.isascii():
        return None
    query: dict[str, str] = {}
    # Werkzeug's own call: invalid percent escapes stay as they were sent.
    for name, value in parse_qsl(query_string, keep_blank_values=True,
                                 errors="werkzeug.url_quote"):  # fmt: skip
        query.setdefault(name, value)
    return query
