"""Capture every answered prediction, off the request path.

A request appends one JSON line per answered row to its worker's pending batch
(``cookbook.lifecycle.capture_format``); each worker's writer thread (started in the
worker, after the fork) stores the pending batch as one database row every
``FLUSH_SECONDS`` (0.5 s), so an answer is in the store within a second of being sent.
When a batch holds ``CAPTURE_QUEUE`` records, further records are dropped and counted in
``capture_dropped_total``; the request never waits. ``CAPTURE_FRACTION`` samples
requests; retention (``CAPTURE_MAX_ROWS``, ``CAPTURE_MAX_AGE_DAYS``) is enforced by the
writer now and then.

Where the data goes, ``CAPTURE_URL``: by default an SQLite file that belongs to this
deployment, ``<tmp>/cookbook-capture/<deployment>/capture.sqlite3``, where ``<deployment>``
names the served model's path and the port, so two services on one machine never share
a file; in a container, ``<tmp>`` is the container's own ``/tmp``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cookbook.core.prediction import Row
from cookbook.core.settings import env_number
from cookbook.lifecycle.capture_format import BatchBuilder
from cookbook.lifecycle.capture_store import CaptureStore, open_store
from cookbook.web.background import PerProcessThread
from cookbook.web.request_log import SERVICE_LOGGER

log = logging.getLogger(SERVICE_LOGGER)
FLUSH_SECONDS = 0.5
# Retention is checked after this many writes (a DELETE per write would cost every write).
TRIM_EVERY_WRITES = 60


@dataclass(frozen=True)
class CaptureSettings:
    """Where and how much to capture, from the environment."""

    url: str
    fraction: float = 1.0
    queue_records: int = 10_000
    max_rows: int | None = 1_000_000
    max_age_days: float | None = 30.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], model_path: str) -> CaptureSettings:
        """Return the settings in *environ*; raise ValueError naming a bad variable."""

        def number(name: str, default: float | None, kind: type = float) -> Any:
            return env_number(environ, name, default, kind=kind)

        fraction = number("CAPTURE_FRACTION", 1.0)
        if not 0 <= fraction <= 1:
            raise ValueError(f"CAPTURE_FRACTION must be between 0 and 1, got {fraction}.")
        return cls(
            url=environ.get("CAPTURE_URL") or default_url(model_path, environ.get("PORT", "")),
            fraction=fraction,
            queue_records=number("CAPTURE_QUEUE", 10_000, int),
            max_rows=number("CAPTURE_MAX_ROWS", 1_000_000, int),
            max_age_days=number("CAPTURE_MAX_AGE_DAYS", 30.0),
        )


def default_url(model_path: str, port: str) -> str:
    """Return this deployment's own SQLite file: named by the model's path and the port."""
    identity = f"{os.path.realpath(model_path)}:{port}"
    deployment = hashlib.sha256(identity.encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), "cookbook-capture", deployment)
    return f"sqlite:///{folder}/capture.sqlite3"


class CaptureWriter:
    """Collect answered rows in a pending batch; a thread stores it every FLUSH_SECONDS."""

    def __init__(self, settings: CaptureSettings, dropped: Any, errors: Any) -> None:
        self.settings = settings
        self.store: CaptureStore = open_store(settings.url)
        self.dropped = dropped  # prometheus counters, shared across workers
        self.errors = errors
        self.writes = 0
        self._lock = threading.Lock()  # the requests' threads and the writer's
        self._pending = BatchBuilder(time.time())
        self.thread = PerProcessThread("capture-writer", self._run, after_fork=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pending = BatchBuilder(time.time())

    def prepare(self) -> None:
        """Create the tables; raise ``CaptureError`` if the store cannot be used at all."""
        self.store.create()

    def record(self, request_id: str, version: str, role: str, names: Sequence[str],
               rows: Sequence[Row], values: Sequence[float],
               answers: Sequence[Mapping[str, Any]]) -> None:  # fmt: skip
        """Add the answered rows of one request to the pending batch (sampled by
        CAPTURE_FRACTION); drop, and count, what a full batch cannot take."""
        fraction = self.settings.fraction
        if fraction < 1.0 and random.random() >= fraction:
            return
        self.thread.ensure_started()
        now = time.time()
        with self._lock:
            pending = self._pending
            room = max(self.settings.queue_records - pending.records, 0)
            if room >= len(rows):
                pending.add(request_id, now, version, role, names, rows, values, answers)
            elif room:
                pending.add(request_id, now, version, role, names, rows[:room], values[:room],
                            answers[:room])  # fmt: skip
        if room < len(rows):
            self.dropped.inc(len(rows) - room)

    def flush(self) -> None:
        """Store what the requests added since the last flush, as one batch."""
        now = time.time()
        with self._lock:
            pending, self._pending = self._pending, BatchBuilder(now)
        if not pending.records:
            return
        try:
            self.store.write_batch(pending.build(now))
        except Exception as exc:  # the store's failure costs records, never the thread
            self._failed(pending.records, "capture write failed", exc)
            return
        self.writes += 1
        if self.writes % TRIM_EVERY_WRITES == 0:
            age = self.settings.max_age_days
            try:
                self.store.trim(self.settings.max_rows, None if age is None else age * 86_400)
            except Exception as exc:
                self._failed(0, "capture retention failed", exc)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def _failed(self, records: int, message: str, exc: Exception) -> None:
        self.errors.inc(records)
        log.error(message, extra={"fields": {
            "event": "capture_failed", "records": records, "reason": str(exc)}})  # fmt: skip
