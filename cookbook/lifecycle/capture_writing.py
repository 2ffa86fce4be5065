"""Writing captured records: one batch per flush (and its explanations, apart), the
classifiers' facts, and retention."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from cookbook.lifecycle import capture_format as fmt
from cookbook.lifecycle.capture_database import (
    EXPLANATIONS_TABLE,
    RECORD_TABLES,
    SUM_TABLES,
    CaptureDatabase,
)
from cookbook.lifecycle.capture_format import Batch, compact_explanation, make_batch
from cookbook.lifecycle.capture_tallies import hour_of, minute_of


class Record(NamedTuple):
    """One answered row, as captured."""

    request_id: str
    row_index: int
    ts: float  # seconds since the epoch, UTC
    model_version: str
    role: str
    inputs: dict[str, Any]
    prediction: Any  # a number, or a classifier's [label, [probabilities]]
    interval_low: float | None  # the answer's interval, as sent (None: the model has none)
    interval_high: float | None
    # The answer's explanation, when the request asked for one (contributions by name).
    explanation: dict[str, Any] | None = None


def batch_of(records: Sequence[Record]) -> Batch:
    """Return *records* as one Batch (each keeps its own time; an explained one is queued
    with its explanation after the nine fields, as a request queues it)."""
    return make_batch(
        [(*r[: fmt.INPUTS], list(r.inputs.values()), *r[fmt.PREDICTION : fmt.EXPLANATION],
          *(() if r.explanation is None else (compact_explanation(r.explanation, r.inputs),)))
         for r in records],
        {r.model_version: list(r.inputs) for r in records},
    )  # fmt: skip


class CaptureWriting(CaptureDatabase):
    """Store batches of records and the facts of the classifiers that answered them."""

    def write(self, records: Sequence[Record]) -> None:
        """Store *records* as one batch."""
        if records:
            self.write_batch(batch_of(records))

    def write_batch(self, batch: Batch) -> None:
        """Store *batch* in one transaction."""
        with self.connect() as db:
            self.insert_batch(db, batch)

    def insert_batch(self, db: Any, batch: Batch) -> None:
        """Insert *batch*, its explanations if any, and its ids the time keys do not cover,
        on connection *db*."""
        batch_id = db.execute(
            self.sql("INSERT INTO capture_batches (first_ts, last_ts, records, key_min, key_max,"
                     " feature_names, body) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"),
            (batch.first_ts, batch.last_ts, batch.records, batch.key_min, batch.key_max,
             batch.names_json(), batch.body),
        ).fetchone()[0]  # fmt: skip
        if batch.explanations is not None:
            # A row already there for this id was left by a build from before explanations
            # (its retention deletes batches only) for a batch whose id SQLite gave again.
            db.execute(self.sql(f"INSERT INTO {EXPLANATIONS_TABLE} (batch_id, first_ts, body)"
                                " VALUES (?, ?, ?) ON CONFLICT (batch_id) DO UPDATE SET"
                                " first_ts = excluded.first_ts, body = excluded.body"),
                       (batch_id, batch.first_ts, batch.explanations))  # fmt: skip
        for request_id in batch.unkeyed_ids:
            db.execute(self.sql("INSERT INTO capture_keys (request_id, batch_id) VALUES (?, ?)"),
                       (request_id, batch_id))  # fmt: skip
        self.insert_models(db, batch.models)

    def add_models(self, models: dict[str, str]) -> None:
        """Keep classifiers' facts (model version -> ``ClassModel.to_json()``)."""
        if models:
            with self.connect() as db:
                self.insert_models(db, models)

    def insert_models(self, db: Any, models: dict[str, str]) -> None:
        """Keep classifiers' facts on connection *db*; a version's first facts stand."""
        for version, facts in models.items():
            db.execute(self.sql("INSERT INTO capture_models (model_version, facts) VALUES (?, ?)"
                                " ON CONFLICT DO NOTHING"), (version, facts))  # fmt: skip

    def trim(self, max_rows: int | None = None, max_age_seconds: float | None = None) -> int:
        """Delete the batches beyond the newest *max_rows* records or older than
        *max_age_seconds*, and what refers to them; return how many records went.

        Whole batches go: what is kept is at most *max_rows* records.
        """
        deleted = []
        with self.connect() as db:
            if max_age_seconds is not None:
                deleted += db.execute(
                    self.sql("DELETE FROM capture_batches WHERE last_ts < ? RETURNING id, records"),
                    (time.time() - max_age_seconds,)).fetchall()  # fmt: skip
            if max_rows is not None:
                deleted += db.execute(
                    self.sql("DELETE FROM capture_batches WHERE id IN (SELECT id FROM (SELECT id,"
                             " SUM(records) OVER (ORDER BY id DESC) AS newer FROM capture_batches)"
                             " AS counted WHERE newer > ?) RETURNING id, records"), (max_rows,),
                ).fetchall()  # fmt: skip
            if deleted:
                oldest_id, oldest_ts = db.execute(
                    "SELECT min(id), min(first_ts) FROM capture_batches"
                ).fetchone()
                if oldest_id is None:
                    for table in (*RECORD_TABLES[1:], EXPLANATIONS_TABLE, *SUM_TABLES):
                        db.execute(f"DELETE FROM {table}")
                else:
                    db.execute(self.sql("DELETE FROM capture_keys WHERE batch_id < ?"),
                               (oldest_id,))  # fmt: skip
                    db.execute(self.sql("DELETE FROM capture_labels WHERE ts < ?"), (oldest_ts,))
                    # The explanations go with their batches: those below the oldest kept
                    # (with any a build from before explanations left there), and the few
                    # deleted by age above it.
                    db.execute(self.sql(f"DELETE FROM {EXPLANATIONS_TABLE} WHERE batch_id < ?"),
                               (oldest_id,))  # fmt: skip
                    for batch_id, _ in deleted:
                        if batch_id > oldest_id:
                            db.execute(self.sql(f"DELETE FROM {EXPLANATIONS_TABLE}"
                                                " WHERE batch_id = ?"), (batch_id,))  # fmt: skip
                    # The sums go with the records they summed (to the minute or hour).
                    for table, unit, start in (
                        ("capture_quality", "minute", minute_of),
                        ("capture_rollout", "minute", minute_of),
                        ("capture_rollout_bins", "hour", hour_of),
                        ("capture_class_bins", "hour", hour_of),
                    ):
                        db.execute(self.sql(f"DELETE FROM {table} WHERE {unit} < ?"),
                                   (start(oldest_ts),))  # fmt: skip
        return sum(records for _, records in deleted)
