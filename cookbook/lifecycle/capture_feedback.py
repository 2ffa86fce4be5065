"""Feedback: true values joined with captured records, and the running sums they add to.

Each true value is a label, one row per labelled record, which carries what the quality
figures need; joining it adds to its minute's quality sums (a classifier's: also its hour's
bins) and, where a shadow scored the same row, to the rollout sums
(``cookbook.lifecycle.capture_tallies``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cookbook.lifecycle import capture_format as fmt
from cookbook.lifecycle.capture_database import CaptureDatabase
from cookbook.lifecycle.capture_format import class_prediction
from cookbook.lifecycle.capture_tallies import (
    QUALITY_COLUMNS,
    ROLLOUT_COLUMNS,
    QualitySums,
    RolloutTally,
    hour_of,
    minute_of,
)
from cookbook.lifecycle.class_tallies import BIN_COLUMNS, ClassBins, ClassModel, score_row

SHADOW_ROLE = "shadow"
CHAMPION_ROLE = "champion"
# Batch bodies one feedback call keeps at hand: feedback often names neighbouring requests.
FEEDBACK_BODIES = 32


@dataclass(frozen=True)
class Feedback:
    """A true value for one captured row: a number, or a classifier's label."""

    request_id: str
    row_index: int
    actual: float | str


@dataclass(frozen=True)
class Labelled:
    """What labelling one captured record stores, and a classifier's score of it."""

    prediction: float  # a classifier's: the answered class's probability
    actual: float  # a classifier's: 1 when the answered label is the true one, else 0
    actual_label: str | None
    score: Any = None  # a classifier's ``class_tallies.RowScore``


def label_of(record: Sequence[Any], actual: float | str,
             models: dict[str, ClassModel]) -> Labelled | None:  # fmt: skip
    """Return what labelling *record* with the true value *actual* stores, or None when the
    value does not fit the model that answered (or its facts were never kept)."""
    label, probabilities = class_prediction(record[fmt.PREDICTION])
    if probabilities is None:
        if isinstance(actual, str):
            return None
        return Labelled(record[fmt.PREDICTION], actual, None)
    model = models.get(record[fmt.MODEL_VERSION])
    if model is None or not isinstance(actual, str):
        return None
    score = score_row(model, probabilities, label, actual)
    if score is None:
        return None
    return Labelled(score.confidence, float(score.correct), actual, score)


class CaptureFeedback(CaptureDatabase):
    """Join true values with captured records and keep the sums of what they show."""

    def add_feedback(self, items: Sequence[Feedback]) -> dict[str, list[str]]:
        """Join true values with captured rows; return request ids by outcome.

        ``joined``: the value was stored; ``unknown``: no such captured row (never captured,
        or trimmed by retention); ``already``: the row had feedback (the first value stands);
        ``mismatched``: the value does not fit the model that answered (a label for a
        regression, a number for a classifier, a label that is not one of its classes).
        """
        outcome: dict[str, list[str]] = {"joined": [], "unknown": [], "already": [],
                                         "mismatched": []}  # fmt: skip
        now = time.time()
        quality: dict[tuple[int, str, str], QualitySums] = {}
        bins = ClassBins()
        rollout = RolloutTally()
        with self.connect() as db:
            bodies: dict[int, bytes] = {}
            models: dict[str, ClassModel] | None = None  # read when a classifier's row is
            for item in items:
                labelled = db.execute(
                    self.sql("SELECT 1 FROM capture_labels WHERE request_id = ? AND row_index = ?"),
                    (item.request_id, item.row_index),
                ).fetchone()  # fmt: skip
                if labelled:
                    outcome["already"].append(item.request_id)
                    continue
                found = [record for record in self._records_of(db, item.request_id, bodies)
                         if record[fmt.ROW_INDEX] == item.row_index]  # fmt: skip
                if not found:
                    outcome["unknown"].append(item.request_id)
                    continue
                if models is None and any(isinstance(r[fmt.PREDICTION], list) for r in found):
                    models = self.class_models(db)
                labels = [label_of(record, item.actual, models or {}) for record in found]
                if None in labels:
                    outcome["mismatched"].append(item.request_id)
                    continue
                joined = {}
                for record, label in zip(found, labels, strict=True):
                    # The first record of each role stands.
                    if db.execute(
                        self.sql("INSERT INTO capture_labels (request_id, row_index, role,"
                                 " model_version, ts, prediction, interval_low, interval_high,"
                                 " actual, actual_label, actual_ts) VALUES (?, ?, ?, ?, ?, ?, ?,"
                                 " ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                        (item.request_id, item.row_index, record[fmt.ROLE],
                         record[fmt.MODEL_VERSION], record[fmt.TS], label.prediction,
                         record[fmt.INTERVAL_LOW], record[fmt.INTERVAL_HIGH], label.actual,
                         label.actual_label, now),
                    ).rowcount > 0:  # fmt: skip
                        joined[record[fmt.ROLE]] = (record, label)
                for role, (record, label) in joined.items():
                    ts, version = record[fmt.TS], record[fmt.MODEL_VERSION]
                    sums = quality.setdefault((minute_of(ts), version, role), QualitySums())
                    if label.score is None:
                        sums.add(label.prediction, label.actual, record[fmt.INTERVAL_LOW],
                                 record[fmt.INTERVAL_HIGH])  # fmt: skip
                    else:
                        sums.add_class(label.score)
                        bins.add(hour_of(ts), version, role, label.score)
                if CHAMPION_ROLE in joined and SHADOW_ROLE in joined:
                    (champion, ours), (shadow, theirs) = joined[CHAMPION_ROLE], joined[SHADOW_ROLE]
                    ts, version = champion[fmt.TS], shadow[fmt.MODEL_VERSION]
                    if ours.score is None or theirs.score is None:
                        rollout.add_label(ts, version, ours.prediction, theirs.prediction,
                                          item.actual)  # fmt: skip
                    else:
                        rollout.add_class_label(ts, version, ours.score, theirs.score)
                outcome["joined" if joined else "already"].append(item.request_id)
            self._add_quality(db, quality)
            self._add_class_bins(db, bins)
            self._add_rollout(db, rollout)
        return outcome

    def add_rollout(self, tally: RolloutTally) -> None:
        """Add a shadow's scored rows (``RolloutTally.add_scores``) to the rollout sums."""
        if tally:
            with self.connect() as db:
                self._add_rollout(db, tally)

    def _upsert(self, table: str, keys: Sequence[str], columns: Sequence[str]) -> str:
        """Return an INSERT that adds *columns* to the row of *keys* (or creates it)."""
        names = (*keys, *columns)
        added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
        return self.sql(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                        f"({', '.join('?' * len(names))}) ON CONFLICT ({', '.join(keys)}) "
                        f"DO UPDATE SET {added}")  # fmt: skip

    def _add_quality(self, db: Any, sums: dict[tuple[int, str, str], QualitySums]) -> None:
        statement = self._upsert("capture_quality", ("minute", "model_version", "role"),
                                 QUALITY_COLUMNS)  # fmt: skip
        for key, total in sums.items():
            db.execute(statement, (*key, *total.values()))

    def _add_class_bins(self, db: Any, bins: ClassBins) -> None:
        statement = self._upsert("capture_class_bins",
                                 ("hour", "model_version", "role", "kind", "bin"),
                                 BIN_COLUMNS)  # fmt: skip
        for key, total in bins.sums.items():
            db.execute(statement, (*key, *total))

    def _add_rollout(self, db: Any, tally: RolloutTally) -> None:
        statement = self._upsert("capture_rollout", ("minute", "shadow_version"),
                                 ROLLOUT_COLUMNS)  # fmt: skip
        for key, total in tally.sums.items():
            db.execute(statement, (*key, *total.values()))
        statement = self._upsert("capture_rollout_bins", ("hour", "shadow_version", "bin"),
                                 ("count",))  # fmt: skip
        for key, count in tally.bins.items():
            db.execute(statement, (*key, count))

    def _records_of(self, db: Any, request_id: str, bodies: dict[int, bytes]
                    ) -> Iterator[list[Any]]:  # fmt: skip
        """Yield the captured records of *request_id*, oldest batch first."""
        batch_ids = {
            row[0]
            for row in db.execute(
                self.sql("SELECT batch_id FROM capture_keys WHERE request_id = ?"), (request_id,)
            )
        }
        key = fmt.key_of(request_id)
        if key is not None:
            batch_ids.update(row[0] for row in db.execute(
                self.sql("SELECT id FROM capture_batches WHERE key_max >= ? AND key_min <= ?"),
                (key, key)))  # fmt: skip
        for batch_id in sorted(batch_ids):
            if batch_id not in bodies:
                if len(bodies) >= FEEDBACK_BODIES:
                    del bodies[next(iter(bodies))]
                row = db.execute(self.sql("SELECT body FROM capture_batches WHERE id = ?"),
                                 (batch_id,)).fetchone()  # fmt: skip
                bodies[batch_id] = bytes(row[0]) if row else b""
            yield from fmt.find(bodies[batch_id], request_id)
