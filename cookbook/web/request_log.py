"""Structured logs: one JSON object per line, and the request id that ties them together.

Service events (model reloads, refusals, gunicorn's messages) go through the logging
module with ``JsonFormatter``. The line written for every request goes through
``RequestLog`` instead, in the same JSON shape: the logging machinery (a record, a
handler lookup, locks, a formatter) costs several times the line itself, and this is
the hot path. Nothing is configured on import: the entry points (``gunicorn.conf.py``'s
logger class and ``python app.py``) call ``configure``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import random
import sys
import time
from json.encoder import encode_basestring_ascii as _quote
from typing import TextIO

REQUEST_LOGGER = "app.requests"
SERVICE_LOGGER = "app.service"
# A request id from a client is logged and echoed, so it must be short and harmless.
MAX_REQUEST_ID = 128
_REQUEST_ID_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=@"
)


# One encoder for every line: json.dumps(..., default=str) would build a new one each call.
_encode = json.JSONEncoder(default=str).encode


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message and its fields.

    A record's own fields come through ``extra={"fields": {...}}``: one attribute to
    read, where scanning every attribute of every record would cost the hot path.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line)


def skip_unused_record_fields() -> None:
    """Stop the logging module from gathering what these JSON lines never show.

    By default every record walks the stack for the caller's file and line and looks up
    the thread and process names: about a third of the cost of a request's log line.
    These are the switches the logging HOWTO's "Optimization" section lists.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class RequestLog:
    """Write one JSON line per request to a stream; silent until ``configure`` enables it."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None
        self._second = -1
        self._second_text = ""

    def write(self, method: str, path: str, status: int, seconds: float, model_version: str,
              request_id: str) -> None:  # fmt: skip
        """Write the request's line: never its body (a batch may carry ``MAX_BATCH_ROWS`` rows)."""
        stream = self.stream
        if stream is None:
            return
        now = time.time()
        second = int(now)
        if second != self._second:  # formatting a date costs more than the rest of the line
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        stream.write(
            f'{{"ts": "{self._second_text}.{int((now - second) * 1000):03d}+00:00", '
            f'"level": "info", "logger": "{REQUEST_LOGGER}", "message": "request", '
            f'"method": {_quote(method)}, "path": {_quote(path)}, "status": {status}, '
            f'"latency_ms": {seconds * 1000:.3f}, "model_version": {_quote(model_version)}, '
            f'"request_id": {_quote(request_id)}}}\n'
        )


REQUESTS = RequestLog()


def configure(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send this service's logs to *stream* (stderr) as JSON lines; call from an entry point."""
    stream = stream or sys.stderr
    skip_unused_record_fields()
    level_number = logging.getLevelName(level) if isinstance(level, str) else level
    REQUESTS.stream = stream if level_number <= logging.INFO else None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def is_request_id(text: object) -> bool:
    """Return whether *text* could be a request id this service sent (short and plain)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_REQUEST_ID
        and _REQUEST_ID_CHARS.issuperset(text)
    )


def request_id(header: str | None) -> str:
    """Return the client's ``X-Request-ID`` when it is short and plain, else a new one."""
    if is_request_id(header):
        return header
    # Time-ordered, like a UUIDv7: microseconds then 72 random bits. Feedback finds the
    # captured record by the time the id begins with (cookbook.lifecycle.capture_format),
    # so capture needs no index entry per record. Unique, not secret: the random module
    # (reseeded in each forked worker) needs no syscall.
    return f"{time.time_ns() // 1000:014x}{random.getrandbits(72):018x}"
