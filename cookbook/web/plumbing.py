"""Per-request plumbing under Flask: timing, metric labels, the log line, common headers."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from cookbook.web import request_log
from cookbook.web.page import CONTENT_SECURITY_POLICY
from cookbook.web.request_log import REQUESTS
from cookbook.web.served import MODEL_VERSION_KEY, REQUEST_ID_KEY, ServiceState, service_state
from cookbook.web.views import catch_up

# Every response carries these, after its model version and request id.
SECURITY_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
]


# What every request goes through, on both of the service's paths: this WSGI middleware
# under Flask, and the production server's hot path (cookbook.web.hot_path).


def open_request(app: Flask, state: ServiceState, header: str | None) -> str:
    """Follow a reload another process accepted, and return the request's id (the client's
    ``X-Request-ID`` when it is short and plain, else a new one)."""
    generation = state.reload.generation  # one read of shared memory
    if generation != state.served.generation:
        catch_up(app, generation)
    return request_log.request_id(header)


def common_headers(version: str, request_id: str) -> list[tuple[str, str]]:
    """Return the headers every answer ends with: its model version, request id, security."""
    return [("X-Model-Version", version), ("X-Request-ID", request_id), *SECURITY_HEADERS]


def close_request(state: ServiceState, method: str, route: str, path: str, status: int,
                  seconds: float, version: str, request_id: str) -> None:  # fmt: skip
    """Count the request answered in *seconds* under its *route* label; write its log line."""
    state.metrics.observe_request(method, route, status, seconds)
    REQUESTS.write(method, path, status, seconds, version, request_id)


class RequestPlumbing:
    """Time, label, log and count every request, and add the headers every response carries.

    It sits under Flask, on the raw WSGI environ and header list: on a request that
    takes about 100 µs, Flask's context proxies and ``Headers`` methods in before/after
    hooks cost a tenth of it (measured with bench/run.py). It also times the whole of
    Flask's work, not just the view.
    """

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.state = service_state(app)
        self.wsgi_app = wsgi_app
        # Metric labels stay bounded: routes by their rule (``/v2/models/<name>/infer``),
        # everything else "unmatched".
        self.routes = {rule.rule for rule in app.url_map.iter_rules() if "<" not in rule.rule}
        self.matcher = app.url_map.bind("localhost")

    def __call__(self, environ: dict, start_response: Any) -> Any:
        started = time.perf_counter()
        state = self.state
        request_id = open_request(self.app, state, environ.get("HTTP_X_REQUEST_ID"))
        environ[REQUEST_ID_KEY] = request_id  # the captured predictions carry it
        answered = []

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            # Read when the view is done: an admin reload answers with the new version.
            version = environ.get(MODEL_VERSION_KEY) or state.served.version
            answered.extend((int(status[:3]), version))
            headers.extend(common_headers(version, request_id))
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, start)
        elapsed = time.perf_counter() - started
        status, version = answered
        method = environ["REQUEST_METHOD"]
        # WSGI hands the path over as latin-1 text; the bytes on the wire were UTF-8.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        close_request(state, method, self._route(path, method), path, status, elapsed, version,
                      request_id)  # fmt: skip
        return body

    def _route(self, path: str, method: str) -> str:
        if path in self.routes:
            return path
        try:
            rule, _ = self.matcher.match(path, method, return_rule=True)
        except HTTPException:  # 404, 405 (and redirects): not a route of this method
            return "unmatched"
        return rule.rule
