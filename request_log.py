"""Structured logs: one JSON object per line, and the request id that ties them together.

Nothing here configures logging on import: the entry points (``gunicorn.conf.py`` and
``python app.py``) call ``configure`` or name ``JsonFormatter`` in their logging config.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys

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


def configure(level: str | int = "INFO") -> None:
    """Send this service's logs to stderr as JSON lines (call once, from an entry point)."""
    skip_unused_record_fields()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def logging_config(level: str = "INFO") -> dict:
    """Return a ``logging.config.dictConfig`` dict: gunicorn's and the app's logs as JSON."""
    json_stderr = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": json_stderr},
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": [], "propagate": False},
            "app": {"level": level, "handlers": ["json"], "propagate": False},
        },
    }


def request_id(header: str | None) -> str:
    """Return the client's ``X-Request-ID`` when it is short and plain, else a new one."""
    if header and len(header) <= MAX_REQUEST_ID and _REQUEST_ID_CHARS.issuperset(header):
        return header
    return os.urandom(16).hex()
