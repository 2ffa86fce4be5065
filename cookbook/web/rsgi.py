"""Serve the unchanged WSGI app over granian's RSGI interface, whole requests only.

The body is read in the server's event loop, with a deadline, before the app is
involved: a client that sends its body slowly (or never finishes it) holds a cheap
await, not a thread, and is answered 408 when the deadline passes. A body shorter than
its ``Content-Length`` therefore never reaches the app. Complete requests then wait for
their turn on the worker's one Python thread (the app runs in the loop: no thread hop,
whose cost was a third of a request); past ``max_pending`` of them waiting, a request is
answered 503 with ``Retry-After`` at once, so overload is answered, not queued without end.
``/health`` and ``/ready`` are never shed: an orchestrator must see a busy service as
alive and ready.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NEVER_SHED = frozenset({"/health", "/ready"})
JSON = [("content-type", "application/json")]


@dataclass(frozen=True)
class Limits:
    """How long a body may take and how many complete requests may wait, per worker."""

    body_timeout_seconds: float = 10.0
    max_pending: int = 64
    retry_after_seconds: int = 1


def _error(message: str) -> str:
    return json.dumps({"error": message})


class WSGIOverRSGI:
    """An RSGI application that runs *wsgi_app* on complete requests, in its own threads."""

    def __init__(self, wsgi_app: Callable, limits: Limits = Limits()) -> None:
        self.wsgi_app = wsgi_app
        self.limits = limits
        self.pending = 0  # complete requests waiting for their turn (this worker)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return  # websockets: not served here
        limits = self.limits
        try:
            body = await asyncio.wait_for(protocol(), limits.body_timeout_seconds)
        except TimeoutError:
            protocol.response_str(
                408,
                [*JSON, ("connection", "close")],
                _error(f"Request body not received within {limits.body_timeout_seconds:g} s."),
            )
            return
        except Exception:  # the body ended early (the client closed): answer if it still reads
            protocol.response_str(
                400,
                [*JSON, ("connection", "close")],
                _error("Request body ended before its Content-Length."),
            )
            return
        if self.pending >= limits.max_pending and scope.path not in NEVER_SHED:
            protocol.response_str(
                503,
                [*JSON, ("retry-after", str(limits.retry_after_seconds))],
                _error("The service is busy: retry after the Retry-After delay."),
            )
            return
        # Wait in line: the loop runs every request whose body is complete in arrival
        # order, one at a time, on this thread; ``pending`` counts the ones in line.
        self.pending += 1
        await asyncio.sleep(0)
        status, headers, content = self._call(environ_for(scope, body))
        protocol.response_bytes(status, headers, content)

    def _call(self, environ: dict) -> tuple[int, list, bytes]:
        # The request's turn: it has stopped waiting.
        self.pending -= 1
        answer: list = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            answer[:] = [int(status[:3]), headers]
            return lambda data: None

        try:
            chunks = self.wsgi_app(environ, start_response)
            try:
                content = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception:  # the Flask app answers its own errors; this is a last resort
            return 500, JSON, _error("Internal error.").encode()
        return answer[0], answer[1], content


def environ_for(scope: Any, body: bytes) -> dict[str, Any]:
    """Return the WSGI environ (PEP 3333) of an RSGI request whose *body* was read whole."""
    host, _, port = scope.server.rpartition(":")
    client, _, client_port = scope.client.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # WSGI carries the path as latin-1 text of the bytes on the wire (UTF-8 here).
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": host,
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client,
        "REMOTE_PORT": client_port,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key != "CONTENT_LENGTH":
            key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
