"""Answer the prediction routes straight from RSGI's scope and body, as the Flask app would.

The production server's adapter (``cookbook.web.rsgi``) hands a complete request here
before it builds a WSGI environ; what is answered here never meets Flask, and everything
else (``None``) goes on to the Flask app unchanged. The answer is the one Flask gives,
byte for byte, because both are adapters over the same core: the route and its token rule
come from the app's own url_map and declarations (``access``), the prediction from
``payload.answer_body``, the errors from ``responses``, what is recorded from
``ServiceState.record``, and the plumbing's headers, metrics and log line from
``plumbing``. Only what is certain to be answered alike is taken: ``POST /predict``,
SageMaker's ``POST /invocations`` and V2 inference
(``/v2/models/<name>[/versions/<version>]/infer``, matched by the app's url_map),
on an app whose only hook before those views is the token check, with an ASCII path and
query, at most one of each header they read and no header name that WSGI would fold into
one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import Rule

from cookbook.core.errors import InvalidInput
from cookbook.web import access, auth, sagemaker, v2, views
from cookbook.web.plumbing import RequestPlumbing, close_request, common_headers, open_request
from cookbook.web.responses import (
    JSON_TYPE,
    TextAnswer,
    invalid_input_answer,
    json_text,
    unauthorized_answer,
)
from cookbook.web.served import service_state

# status, headers, body: what ``protocol.response_bytes`` takes.
Answer = tuple[int, list[tuple[str, str]], bytes]
METHOD = "POST"
# The headers a prediction reads (RSGI names them in lower case).
AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"
CANARY_KEY = "x-canary-key"
BINARY_LENGTH = "inference-header-content-length"
CONTENT_TYPE = "content-type"
ACCEPT = "accept"
READ_HEADERS = (AUTHORIZATION, REQUEST_ID, CANARY_KEY, BINARY_LENGTH, CONTENT_TYPE, ACCEPT)


@dataclass(frozen=True)
class Route:
    """Where a request goes: its rule (the metric label), token rule, view core, arguments."""

    label: str
    protected: bool
    core: Callable[..., tuple[dict | TextAnswer, str | None]]
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Request:
    """What a prediction route reads of a request: its body, query and headers."""

    body: bytes
    query: dict[str, str]
    authorization: str | None
    request_id: str | None
    canary_key: str | None
    binary_length: str | None
    content_type: str | None
    accept: str | None


class HotPath:
    """Answer the prediction routes of *app* from an RSGI scope and its body, as *app* would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.state = service_state(app)
        self.log = app.logger
        self.matcher = app.url_map.bind("localhost")
        # Rules without variables, by path; the others are matched when the path ends as
        # one of them does: path -> (protected, the view's core); suffix -> endpoint -> the same.
        self.paths: dict[str, tuple[bool, Callable]] = {}
        self.suffixes: dict[str, dict[str, tuple[bool, Callable]]] = {}
        cores = {views.predict: self.predict, v2.infer: self.infer,
                 sagemaker.invocations: self.invocations}  # fmt: skip
        for rule in app.url_map.iter_rules():
            core = cores.get(app.view_functions.get(rule.endpoint))
            if core is None or METHOD not in (rule.methods or ()):
                continue
            level = access.endpoint_access(app, rule.endpoint)
            if not plain(level) or not answered_alike(app, rule.endpoint):
                continue
            protected = level.level == access.PROTECTED
            if "<" not in rule.rule:
                if self.route_of(rule.rule)[0] is rule:  # no other rule, no redirect before it
                    self.paths[rule.rule] = (protected, core)
            else:
                suffix = rule.rule[rule.rule.rindex(">") + 1 :]
                self.suffixes.setdefault(suffix, {})[rule.endpoint] = (protected, core)

    def __call__(self, scope: Any, body: bytes) -> Answer | None:
        """Return the answer to a complete request, or None for the Flask app to answer it."""
        if scope.method != METHOD:
            return None
        path = scope.path
        found = self.route(path)
        if found is None:
            return None
        headers = scope.headers
        if "_" in "".join(headers.keys()):  # WSGI folds ``x_request_id`` into X-Request-ID
            return None
        values = []
        for name in READ_HEADERS:
            given = headers.get_all(name)
            if len(given) > 1:  # WSGI joins repeated headers with commas
                return None
            values.append(given[0] if given else None)
        query = query_of(scope.query_string)
        if query is None:
            return None
        return self.answer(path, found, Request(body, query, *values))

    def route(self, path: str) -> Route | None:
        """Return the route *path* takes in the app's url_map if it is answered here."""
        found = self.paths.get(path)
        if found is not None:
            return Route(path, *found, {})
        # Flask's path is latin-1 text of UTF-8 bytes (rsgi.environ_for), and its
        # ``request.path``, which messages quote, starts with one slash.
        if not path.isascii() or path.startswith("//"):
            return None
        for suffix, endpoints in self.suffixes.items():
            if path.endswith(suffix):
                rule, arguments = self.route_of(path)
                if rule is None or rule.endpoint not in endpoints:
                    return None
                protected, core = endpoints[rule.endpoint]
                return Route(rule.rule, protected, core, arguments)
        return None

    def route_of(self, path: str) -> tuple[Rule | None, dict[str, Any]]:
        """Return the rule the app's url_map takes for ``POST path`` and its arguments (None
        when none does or it redirects)."""
        try:
            return self.matcher.match(path, METHOD, return_rule=True)
        except HTTPException:  # no route, or a redirect: Flask answers it
            return None, {}

    def answer(self, path: str, route: Route, request: Request) -> Answer:
        """Answer a request the way ``RequestPlumbing`` and the Flask app around its view do."""
        started = time.perf_counter()
        state = self.state
        request_id = open_request(self.app, state, request.request_id)
        version = None
        content_type = JSON_TYPE
        extra: list[tuple[str, str]] = []
        token = self.app.config["API_TOKEN"]
        try:
            if route.protected and token and not auth.bearer_matches(request.authorization, token):
                status, answer, extra = unauthorized_answer(
                    access.refusal_message("API_TOKEN", path)
                )
            else:
                status = 200
                answer, version = route.core(request, request_id, **route.arguments)
            if isinstance(answer, TextAnswer):
                text, content_type = answer.text, answer.content_type
            else:
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
        headers = [("Content-Type", content_type), ("Content-Length", str(len(content))), *extra,
                   *common_headers(version, request_id)]  # fmt: skip
        elapsed = time.perf_counter() - started
        close_request(state, METHOD, route.label, path, status, elapsed, version, request_id)
        return status, headers, content

    def predict(self, request: Request, request_id: str) -> tuple[dict, str | None]:
        """Answer ``POST /predict`` (``views.predict_answer``, the Flask view's core)."""
        return views.predict_answer(self.state, request.body, request.query,
                                    request.canary_key, request_id)  # fmt: skip

    def infer(self, request: Request, request_id: str, name: str,
              version: str | None = None) -> tuple[dict, str | None]:  # fmt: skip
        """Answer a V2 inference request (``v2.infer_answer``, the Flask view's core)."""
        return v2.infer_answer(self.state, name, version, request.body, request.binary_length,
                               request.canary_key, request_id)  # fmt: skip

    def invocations(
        self, request: Request, request_id: str
    ) -> tuple[dict | TextAnswer, str | None]:
        """Answer SageMaker's ``/invocations`` (``sagemaker.invocations_answer``, the Flask
        view's core)."""
        return sagemaker.invocations_answer(self.state, request.body, request.content_type,
                                            request.accept, request.query, request.canary_key,
                                            request_id)  # fmt: skip


def answered_alike(app: Flask, endpoint: str) -> bool:
    """Return whether *app* runs nothing around *endpoint*'s view but what is done here: the
    request plumbing outside, the token check before it, no hook after it."""
    blueprint = endpoint.rpartition(".")[0] or None
    return (
        isinstance(app.wsgi_app, RequestPlumbing)
        and app.before_request_funcs.get(None) == [access.check_token]
        and not any(
            hooks.get(blueprint)
            for hooks in (
                app.before_request_funcs,
                app.after_request_funcs,
                app.url_value_preprocessors,
            )
            if blueprint is not None
        )
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
