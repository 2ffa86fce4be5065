"""Serve the unchanged WSGI app over granian's RSGI interface, whole requests only.

The body is read in the server's event loop, with a deadline, before the app is
involved: a client that sends its body slowly (or never finishes it) holds a cheap
await, not a thread, and is answered 408 when the deadline passes (``deadlines``: one
timer per worker). A body shorter than its ``Content-Length``, or a chunked one without
its last chunk, therefore never reaches the app. The size limit is enforced while
reading, not after: a ``Content-Length`` over ``max_body_bytes`` is answered 413 before
a byte of the body is read, and a chunked body (no length announced) is read chunk by
chunk and answered 413 as soon as it passes the limit; either way the connection is
closed, since the rest of the body is never read. Complete requests then wait for
their turn on the worker's one Python thread (the app runs in the loop: no thread hop,
whose cost was a third of a request); past ``max_pending`` of them waiting, a request is
answered 503 with ``Retry-After`` at once, so overload is answered, not queued without end.
``/health`` and ``/ready`` are never shed: an orchestrator must see a busy service as
alive and ready. A request's turn goes first to the *hot_path*, when there is one
(``cookbook.web.hot_path``): what it answers never becomes a WSGI environ; what it
declines (None) goes on to the WSGI app.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cookbook.web.deadlines import ReadDeadlines
from cookbook.web.payload import BODY_TOO_LARGE, MAX_BODY_BYTES

NEVER_SHED = frozenset({"/health", "/ready"})
JSON = [("content-type", "application/json")]
CLOSE = [*JSON, ("connection", "close")]


@dataclass(frozen=True)
class Limits:
    """How long and how large a body may be, and how many complete requests may wait."""

    body_timeout_seconds: float = 10.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_pending: int = 64
    retry_after_seconds: int = 1


def _error(message: str) -> str:
    return json.dumps({"error": message})


class BodyTooLarge(Exception):
    """The request body passed the size limit while it was being read."""


class BodyCutShort(Exception):
    """The request body ended before its ``Content-Length`` or last chunk (the client closed)."""


def announced_length(headers: Any) -> int | None:
    """Return the body's ``Content-Length``, or None when it is chunked or has none.

    The HTTP layer (hyper) already refused a malformed length, and a chunked body
    announces none.
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    length = headers.get("content-length")
    return None if length is None else int(length)


async def read_body(protocol: Any, length: int | None, limit: int) -> bytes:
    """Return the whole request body, never holding more than *limit* bytes of it.

    A body with a ``Content-Length`` (at most *limit*: the caller checked) is read in one
    await, which the HTTP layer bounds by that length; raise ``BodyCutShort`` if it ends
    early. Any other body is read chunk by chunk (RSGI's protocol is an async iterator
    of them); raise ``BodyTooLarge`` as soon as it passes *limit*, and ``BodyCutShort``
    if it ends before its last chunk.
    """
    if length is not None:
        try:
            return await protocol()
        except Exception:  # granian's protocol error: the body ended before its length
            raise BodyCutShort from None
    chunks: list[bytes] = []
    size = 0
    ended = False
    async for chunk in protocol:
        # granian ends a body with one empty chunk, and hands a failed read (the client
        # closed before the last chunk) over as an empty chunk too, then the end's own.
        if ended:
            raise BodyCutShort
        if not chunk:
            ended = True
            continue
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


# A request's answer as RSGI's ``response_bytes`` takes it: status, headers, body.
Answer = tuple[int, list, bytes]
# Answers a complete request from its scope and body, or returns None to leave it to WSGI.
DirectAnswer = Callable[[Any, bytes], Answer | None]


class WSGIOverRSGI:
    """An RSGI application that runs *wsgi_app* on complete requests, one at a time.

    *hot_path(scope, body)* answers the requests it can before the WSGI app is involved,
    and returns None for the others.
    """

    def __init__(self, wsgi_app: Callable, limits: Limits = Limits(),
                 hot_path: DirectAnswer | None = None) -> None:  # fmt: skip
        self.wsgi_app = wsgi_app
        self.limits = limits
        self.hot_path = hot_path
        self.deadlines = ReadDeadlines(limits.body_timeout_seconds)
        self.pending = 0  # complete requests waiting for their turn (this worker)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return  # websockets: not served here
        limits = self.limits
        length = announced_length(scope.headers)
        if length is not None and length > limits.max_body_bytes:
            # Refused unread: the connection closes rather than read what was refused.
            protocol.response_str(413, CLOSE, _error(BODY_TOO_LARGE))
            return
        task = asyncio.current_task()
        self.deadlines.start(task)
        try:
            body = await read_body(protocol, length, limits.max_body_bytes)
        except asyncio.CancelledError:
            if not self.deadlines.overdue(task):
                raise  # the server's own cancellation (a stop): not the client's fault
            protocol.response_str(
                408,
                CLOSE,
                _error(f"Request body not received within {limits.body_timeout_seconds:g} s."),
            )
            return
        except BodyTooLarge:
            protocol.response_str(413, CLOSE, _error(BODY_TOO_LARGE))
            return
        except BodyCutShort:  # the client closed: answer in case it still reads
            protocol.response_str(400, CLOSE, _error("Request body ended before it was complete."))
            return
        finally:
            self.deadlines.finish(task)
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
        # The request's turn: it has stopped waiting.
        self.pending -= 1
        answer = None
        if self.hot_path is not None:
            try:
                answer = self.hot_path(scope, body)
            except Exception:  # the hot path answers its own errors; this is a last resort
                answer = 500, JSON, _error("Internal error.").encode()
        if answer is None:
            answer = self._call(environ_for(scope, body))
        protocol.response_bytes(*answer)

    def _call(self, environ: dict) -> Answer:
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
    """Return the WSGI environ (PEP 3333) of an RSGI request whose *body* was read whole.

    The body is handed over complete, with its length: a chunked request looks to the app
    exactly like the same body sent with a ``Content-Length`` (the transfer coding is the
    connection's business, undone here, so ``Transfer-Encoding`` is not passed on), and
    ``wsgi.input_terminated`` says the input ends where the body does.
    """
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
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key not in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
