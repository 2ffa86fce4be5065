"""Capture every answered prediction, off the request path.

A request appends one tuple per answered row to a bounded queue: the facts only (the inputs,
the prediction and its interval; a classifier's answered label and probabilities; the
explanation when the request asked for one), never the answer's text, so neither the
request nor the writer encodes words that follow from the prediction. Each worker's writer
thread (started in the worker, after the fork) stores what arrived as one batch of JSON
records (``cookbook.lifecycle.capture_format``), one database row, every ``FLUSH_SECONDS``
(0.5 s), so an answer is in the store within a second of being sent. When the queue is
full, the record is dropped and counted in ``capture_dropped_total``; the request never
waits. ``CAPTURE_FRACTION`` samples requests;
retention (``CAPTURE_MAX_ROWS``, ``CAPTURE_MAX_AGE_DAYS``) is enforced by the writer now and
then, by whole batches.

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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cookbook.core.explained import EXPLANATION_FIELD
from cookbook.core.prediction import Predictor, Row
from cookbook.core.settings import env_number
from cookbook.lifecycle.capture_format import compact_explanation, make_batch
from cookbook.lifecycle.capture_store import CaptureStore, open_store
from cookbook.lifecycle.class_tallies import ClassModel
from cookbook.web.background import BackgroundDrain
from cookbook.web.request_log import SERVICE_LOGGER

log = logging.getLogger(SERVICE_LOGGER)
FLUSH_SECONDS = 0.5
# Retention is checked after this many writes (a DELETE per write would cost every write).
TRIM_EVERY_WRITES = 60
# The rows a one-row answer captures: a constant, so the common case builds no range.
ONLY_ROW = (0,)


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
    """Queue answered rows; a thread stores what arrived as one batch every FLUSH_SECONDS."""

    def __init__(self, settings: CaptureSettings, dropped: Any, errors: Any) -> None:
        self.settings = settings
        self.store: CaptureStore = open_store(settings.url)
        self.dropped = dropped  # prometheus counters, shared across workers
        self.errors = errors
        self.writes = 0
        # Model version -> feature names (and a classifier's facts), filled by the requests
        # before they queue a record of that version, so every record the writer takes has
        # its names here.
        self.feature_names: dict[str, Sequence[str]] = {}
        self.models: dict[str, str] = {}
        # One batch takes whatever arrived in the interval: a batch costs a row, not a record.
        self.drain = BackgroundDrain("capture-writer", self._write, self._failed,
                                     limit=settings.queue_records, interval=FLUSH_SECONDS,
                                     batch=settings.queue_records)  # fmt: skip

    def prepare(self, champion: Predictor) -> None:
        """Create the tables (bring an earlier build's up to date) and keep the champion's
        facts if it is a classifier, so rows an earlier build captured for it can be
        labelled; raise ``CaptureError`` if the store cannot be used at all."""
        self.store.create()
        self.describe(champion)
        self.store.add_models(self.models)

    def describe(self, predictor: Predictor) -> None:
        """Keep what the writer needs to store *predictor*'s records."""
        version = predictor.version
        if predictor.is_classifier:
            self.models[version] = ClassModel.of(predictor).to_json()
        self.feature_names[version] = predictor.schema.feature_names

    def record(self, request_id: str, predictor: Predictor, role: str, rows: Sequence[Row],
               values: Sequence[Any], answers: Sequence[Mapping[str, Any]]) -> None:  # fmt: skip
        """Queue the answered rows of one request (sampled by CAPTURE_FRACTION)."""
        # The request pays for a tuple per row and nothing else, with no call it can spare
        # (each Python call costs more than the append): the serving thread is the one the
        # clients wait for; the writer encodes the batch.
        fraction = self.settings.fraction
        if fraction < 1.0 and random.random() >= fraction:
            return
        version = predictor.version
        if version not in self.feature_names:
            self.describe(predictor)
        drain = self.drain
        if not drain.running:
            drain.start()
        items = drain.items
        now = time.time()
        if len(rows) == 1 and len(items) < drain.limit:  # one prediction: the common case
            indexes: Sequence[int] = ONLY_ROW
        else:
            room = max(drain.room(), 0)
            if room < len(rows):
                self.dropped.inc(len(rows) - room)
            indexes = range(min(len(rows), room))
        # A request explains all of its rows or none; a row's explanation is queued as a
        # tenth item, which the writer stores apart from the nine fields (capture_format).
        explained = EXPLANATION_FIELD in answers[0]
        if predictor.is_classifier:  # the answered label (if asked for) and the probabilities
            for index in indexes:
                label = answers[index].get("label")
                record = (request_id, index, now, version, role, rows[index],
                          (label, values[index]), None, None)  # fmt: skip
                items.append(record + self.explanation(answers[index], version) if explained
                             else record)  # fmt: skip
            return
        for index in indexes:
            interval = answers[index].get("interval")
            low, high = (interval["low"], interval["high"]) if interval else (None, None)
            record = (request_id, index, now, version, role, rows[index], values[index],
                      low, high)  # fmt: skip
            items.append(record + self.explanation(answers[index], version) if explained
                         else record)  # fmt: skip

    def explanation(self, answer: Mapping[str, Any], version: str) -> tuple[list[Any]]:
        """Return the queued record's tenth item: *answer*'s explanation, as stored."""
        return (compact_explanation(answer[EXPLANATION_FIELD], self.feature_names[version]),)

    def _write(self, records: list[tuple]) -> None:
        self.store.write_batch(make_batch(records, self.feature_names, self.models))
        self.writes += 1
        if self.writes % TRIM_EVERY_WRITES == 0:
            age = self.settings.max_age_days
            self.store.trim(self.settings.max_rows, None if age is None else age * 86_400)

    def _failed(self, records: list[tuple], exc: Exception) -> None:
        self.errors.inc(len(records))
        log.error("capture write failed", extra={"fields": {
            "event": "capture_failed", "records": len(records), "reason": str(exc)}})  # fmt: skip
