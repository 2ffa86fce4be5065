"""Where captured predictions live: an embedded SQLite database or a PostgreSQL server.

Each answered row is one record: the request id and the row's index in it, the time, the
model version, which role answered (champion, canary, or a shadow that only scored), the
inputs, the predicted value and its interval as sent (a classifier's: its answered label
and probabilities). Records are stored in batches, one database row per worker and flush
(``cookbook.lifecycle.capture_format`` says how); true values from feedback are labels, one
row per labelled record, which carry what the quality figures need. A classifier's model
facts (classes, threshold, prediction set) are kept once per version (``capture_models``),
so feedback days later, after a reload, still scores the rows of the model that answered.
``CAPTURE_URL`` chooses the store: ``sqlite:///PATH`` (WAL mode, so every worker of a
deployment writes to one file) or ``postgresql://...`` for deployments with several
replicas. The same SQL serves both; only placeholders and a few types differ.

A store written by an earlier build is brought up to date in place when the service creates
its tables: the columns added since (``ADDED_COLUMNS``) are added, the new tables created;
its rows stay as they are, and a reader reads both shapes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from cookbook.core.errors import MlibError
from cookbook.lifecycle import capture_format as fmt
from cookbook.lifecycle.capture_format import Batch, class_prediction, make_batch
from cookbook.lifecycle.capture_tallies import (
    QUALITY_COLUMNS,
    ROLLOUT_COLUMNS,
    QualitySums,
    RolloutTally,
    hour_of,
    minute_of,
    quality_report,
    rollout_report,
)
from cookbook.lifecycle.class_tallies import BIN_COLUMNS, ClassBins, ClassModel, score_row

# The captured records and their labels, then the running sums of the summaries (kept with
# the records they sum), then the classifiers' facts by model version (kept for good).
RECORD_TABLES = ("capture_batches", "capture_keys", "capture_labels")
SUM_TABLES = ("capture_quality", "capture_rollout", "capture_rollout_bins", "capture_class_bins")
TABLES = (*RECORD_TABLES, *SUM_TABLES, "capture_models")
# Columns added to the first tables since they were made: ``migrate`` adds those a store
# lacks. ``{real}`` is the database's float type.
ADDED_COLUMNS = (
    ("capture_labels", "actual_label", "TEXT"),  # a classifier's true label
    *(("capture_quality", name, kind) for name, kind in (
        ("log_loss", "{real}"), ("brier", "{real}"), ("correct", "BIGINT"),
        ("with_set", "BIGINT"), ("inside_set", "BIGINT"))),
    *(("capture_rollout", name, kind) for name, kind in (
        ("agreed", "BIGINT"), ("champion_log_loss", "{real}"), ("shadow_log_loss", "{real}"),
        ("champion_correct", "BIGINT"), ("shadow_correct", "BIGINT"))),
)  # fmt: skip
SHADOW_ROLE = "shadow"
CHAMPION_ROLE = "champion"
# Seconds a writer waits for another writer's lock before the batch fails.
BUSY_TIMEOUT_SECONDS = 5.0
# Batch bodies one feedback call keeps at hand: feedback often names neighbouring requests.
FEEDBACK_BODIES = 32


class CaptureError(MlibError):
    """The capture store cannot be reached or used: one line saying why."""


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


def batch_of(records: Sequence[Record]) -> Batch:
    """Return *records* as one Batch (each keeps its own time)."""
    return make_batch(
        [(*r[: fmt.INPUTS], list(r.inputs.values()), *r[fmt.PREDICTION :]) for r in records],
        {r.model_version: list(r.inputs) for r in records},
    )


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


class CaptureStore:
    """The capture tables in one database; every method opens and closes its own connection."""

    placeholder = "?"
    float_type = "REAL"
    id_type = "INTEGER PRIMARY KEY"  # SQLite's rowid: grows with every batch
    blob_type = "BLOB"
    add_column = "ADD COLUMN"  # SQLite has no IF NOT EXISTS here: migrate holds the lock

    def __init__(self, url: str) -> None:
        self.url = url

    # -------------------------------------------------------------- connections

    @contextlib.contextmanager
    def connect(self, write: bool = True) -> Iterator[Any]:
        """Yield a connection inside a transaction (committed on success); one that only
        reads (``write=False``) never waits for the writers."""
        raise NotImplementedError

    def create(self) -> None:
        """Create the tables and their indexes if they do not exist; add the columns an
        earlier build's tables lack."""
        with self.connect() as db:
            for statement in self.ddl():
                db.execute(statement)
            self.migrate(db)

    def migrate(self, db: Any) -> None:
        """Add the ``ADDED_COLUMNS`` a store's tables lack (0 in the rows already there)."""
        present: dict[str, set[str]] = {}
        for table, column, kind in ADDED_COLUMNS:
            if table not in present:
                present[table] = self.columns(db, table)
            if column not in present[table]:
                default = "" if kind == "TEXT" else " NOT NULL DEFAULT 0"
                db.execute(f"ALTER TABLE {table} {self.add_column} {column} "
                           f"{kind.format(real=self.float_type)}{default}")  # fmt: skip

    @staticmethod
    def columns(db: Any, table: str) -> set[str]:
        """Return the names of *table*'s columns."""
        return {column[0] for column in db.execute(f"SELECT * FROM {table} LIMIT 0").description}

    def ddl(self) -> list[str]:
        """Return the statements that create the tables."""
        real = self.float_type
        return [
            f"""CREATE TABLE IF NOT EXISTS capture_batches (
                id {self.id_type}, first_ts {real} NOT NULL, last_ts {real} NOT NULL,
                records INTEGER NOT NULL, key_min TEXT, key_max TEXT,
                feature_names TEXT NOT NULL, body {self.blob_type} NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS capture_batches_keys ON capture_batches (key_max, key_min)",
            "CREATE INDEX IF NOT EXISTS capture_batches_time ON capture_batches (last_ts)",
            """CREATE TABLE IF NOT EXISTS capture_keys (
                request_id TEXT NOT NULL, batch_id BIGINT NOT NULL,
                PRIMARY KEY (request_id, batch_id))""",
            f"""CREATE TABLE IF NOT EXISTS capture_labels (
                request_id TEXT NOT NULL, row_index INTEGER NOT NULL, role TEXT NOT NULL,
                model_version TEXT NOT NULL, ts {real} NOT NULL, prediction {real} NOT NULL,
                interval_low {real}, interval_high {real}, actual {real} NOT NULL,
                actual_ts {real} NOT NULL, PRIMARY KEY (request_id, row_index, role))""",
            "CREATE INDEX IF NOT EXISTS capture_labels_time ON capture_labels (ts)",
            # Running sums for the summaries (cookbook.lifecycle.capture_tallies).
            f"""CREATE TABLE IF NOT EXISTS capture_quality (
                minute BIGINT NOT NULL, model_version TEXT NOT NULL, role TEXT NOT NULL,
                labelled BIGINT NOT NULL, abs_error {real} NOT NULL,
                squared_error {real} NOT NULL, error {real} NOT NULL,
                with_interval BIGINT NOT NULL, inside BIGINT NOT NULL,
                PRIMARY KEY (minute, model_version, role))""",
            f"""CREATE TABLE IF NOT EXISTS capture_rollout (
                minute BIGINT NOT NULL, shadow_version TEXT NOT NULL, scored BIGINT NOT NULL,
                abs_difference {real} NOT NULL, beyond BIGINT NOT NULL,
                labelled BIGINT NOT NULL, champion_abs_error {real} NOT NULL,
                shadow_abs_error {real} NOT NULL, PRIMARY KEY (minute, shadow_version))""",
            """CREATE TABLE IF NOT EXISTS capture_rollout_bins (
                hour BIGINT NOT NULL, shadow_version TEXT NOT NULL, bin INTEGER NOT NULL,
                count BIGINT NOT NULL, PRIMARY KEY (hour, shadow_version, bin))""",
            # A classifier's ECE and AUC bins (cookbook.lifecycle.class_tallies).
            f"""CREATE TABLE IF NOT EXISTS capture_class_bins (
                hour BIGINT NOT NULL, model_version TEXT NOT NULL, role TEXT NOT NULL,
                kind TEXT NOT NULL, bin INTEGER NOT NULL, count BIGINT NOT NULL,
                hits BIGINT NOT NULL, confidence {real} NOT NULL,
                PRIMARY KEY (hour, model_version, role, kind, bin))""",
            """CREATE TABLE IF NOT EXISTS capture_models (
                model_version TEXT PRIMARY KEY, facts TEXT NOT NULL)""",
        ]

    def sql(self, text: str) -> str:
        """Return *text* with ``?`` placeholders in this database's style."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # ------------------------------------------------------------------ writing

    def write(self, records: Sequence[Record]) -> None:
        """Store *records* as one batch."""
        if records:
            self.write_batch(batch_of(records))

    def write_batch(self, batch: Batch) -> None:
        """Store *batch* in one transaction."""
        with self.connect() as db:
            self.insert_batch(db, batch)

    def insert_batch(self, db: Any, batch: Batch) -> None:
        """Insert *batch*, and its ids the time keys do not cover, on connection *db*."""
        batch_id = db.execute(
            self.sql("INSERT INTO capture_batches (first_ts, last_ts, records, key_min, key_max,"
                     " feature_names, body) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"),
            (batch.first_ts, batch.last_ts, batch.records, batch.key_min, batch.key_max,
             batch.names_json(), batch.body),
        ).fetchone()[0]  # fmt: skip
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

    def class_models(self, db: Any) -> dict[str, ClassModel]:
        """Return the facts of every classifier the store has captured, by model version."""
        return {version: ClassModel.from_json(facts) for version, facts in
                db.execute("SELECT model_version, facts FROM capture_models")}  # fmt: skip

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

    def trim(self, max_rows: int | None = None, max_age_seconds: float | None = None) -> int:
        """Delete the batches beyond the newest *max_rows* records or older than
        *max_age_seconds*, and what refers to them; return how many records went.

        Whole batches go: what is kept is at most *max_rows* records.
        """
        deleted = []
        with self.connect() as db:
            if max_age_seconds is not None:
                deleted += db.execute(
                    self.sql("DELETE FROM capture_batches WHERE last_ts < ? RETURNING records"),
                    (time.time() - max_age_seconds,)).fetchall()  # fmt: skip
            if max_rows is not None:
                deleted += db.execute(
                    self.sql("DELETE FROM capture_batches WHERE id IN (SELECT id FROM (SELECT id,"
                             " SUM(records) OVER (ORDER BY id DESC) AS newer FROM capture_batches)"
                             " AS counted WHERE newer > ?) RETURNING records"), (max_rows,),
                ).fetchall()  # fmt: skip
            if deleted:
                oldest_id, oldest_ts = db.execute(
                    "SELECT min(id), min(first_ts) FROM capture_batches"
                ).fetchone()
                if oldest_id is None:
                    for table in (*RECORD_TABLES[1:], *SUM_TABLES):
                        db.execute(f"DELETE FROM {table}")
                else:
                    db.execute(self.sql("DELETE FROM capture_keys WHERE batch_id < ?"),
                               (oldest_id,))  # fmt: skip
                    db.execute(self.sql("DELETE FROM capture_labels WHERE ts < ?"), (oldest_ts,))
                    # The sums go with the records they summed (to the minute or hour).
                    for table, unit, start in (
                        ("capture_quality", "minute", minute_of),
                        ("capture_rollout", "minute", minute_of),
                        ("capture_rollout_bins", "hour", hour_of),
                        ("capture_class_bins", "hour", hour_of),
                    ):
                        db.execute(self.sql(f"DELETE FROM {table} WHERE {unit} < ?"),
                                   (start(oldest_ts),))  # fmt: skip
        return sum(row[0] for row in deleted)

    # ------------------------------------------------------------------ reading

    def _batches(self, db: Any, since: float | None) -> Iterator[tuple[dict, list[list[Any]]]]:
        """Yield (feature names by version, records) of each batch holding records from
        *since*, oldest first."""
        query, params = "SELECT feature_names, body FROM capture_batches", ()
        if since is not None:
            query, params = query + " WHERE last_ts >= ?", (since,)
        for names, body in db.execute(self.sql(query + " ORDER BY id"), params):
            yield orjson.loads(names), fmt.decode(bytes(body))

    def rows(self, since: float | None = None, roles: Sequence[str] | None = None
             ) -> list[dict[str, Any]]:  # fmt: skip
        """Return the captured rows (oldest first), from *since* (epoch seconds) if given,
        of the given *roles* only if given; a row captured twice is the first capture."""
        with self.connect(write=False) as db:
            labels = self._labels(db, since)
            found: dict[tuple, dict[str, Any]] = {}
            for names, records in self._batches(db, since):
                for record in records:
                    request_id, index, ts, version, role, inputs, predicted, low, high = record
                    key = (request_id, index, role)
                    wanted = (since is None or ts >= since) and (roles is None or role in roles)
                    if not wanted or key in found:
                        continue
                    label, probabilities = class_prediction(predicted)
                    found[key] = {
                        "request_id": request_id, "row_index": index, "ts": ts,
                        "model_version": version, "role": role,
                        "inputs": dict(zip(names[version], inputs, strict=True)),
                        "prediction": None if probabilities is not None else predicted,
                        "label": label, "probabilities": probabilities,
                        "interval_low": low, "interval_high": high,
                        "actual": labels.get(key),
                    }  # fmt: skip
        return sorted(found.values(), key=lambda r: (r["ts"], r["request_id"], r["row_index"]))

    def _labels(self, db: Any, since: float | None) -> dict[tuple[str, int, str], Any]:
        """Return the true values (a classifier's: labels) by (request id, row, role), of the
        rows captured from *since*; a store of an earlier build has no ``actual_label``."""
        # Labels carry their record's time: only those of the rows asked for are read.
        query, params = "SELECT * FROM capture_labels", ()
        if since is not None:
            query, params = query + " WHERE ts >= ?", (since,)
        cursor = db.execute(self.sql(query), params)
        names = [column[0] for column in cursor.description]
        at = {name: names.index(name) for name in ("request_id", "row_index", "role", "actual")}
        text = names.index("actual_label") if "actual_label" in names else None
        labels = {}
        for row in cursor:
            actual = row[at["actual"]] if text is None or row[text] is None else row[text]
            labels[(row[at["request_id"]], row[at["row_index"]], row[at["role"]])] = actual
        return labels

    def quality(self, window_seconds: float) -> dict[str, dict[str, Any]]:
        """Return, per model version, the labelled rows' count, MAE, RMSE, bias and the
        share whose true value lay inside the prediction interval (a classifier's log loss,
        Brier score, accuracy, ROC AUC, ECE and set coverage), over the window's minutes
        (the bins of AUC and ECE: its hours), for the roles that answer (a shadow's labels
        are /rollout's)."""
        since = time.time() - window_seconds
        sums = ", ".join(f"SUM({c})" for c in QUALITY_COLUMNS)
        bin_sums = ", ".join(f"SUM({c})" for c in BIN_COLUMNS)
        with self.connect(write=False) as db:
            rows = db.execute(
                self.sql(f"SELECT model_version, role, {sums} FROM capture_quality"
                         " WHERE minute >= ? AND role <> ? GROUP BY model_version, role"),
                (minute_of(since), SHADOW_ROLE),
            ).fetchall()  # fmt: skip
            bins = db.execute(
                self.sql(f"SELECT model_version, kind, bin, {bin_sums} FROM capture_class_bins"
                         " WHERE hour >= ? AND role <> ? GROUP BY model_version, kind, bin"),
                (hour_of(since), SHADOW_ROLE),
            ).fetchall()  # fmt: skip
            models = self.class_models(db)
        return quality_report(rows, bins, models)

    def rollout(self, window_seconds: float, shadow_version: str, tolerance: float,
                classifier: bool = False) -> dict[str, Any]:  # fmt: skip
        """Return how the shadow compared with the champion over the window: its rows'
        differences (the percentile from the window's hours) and, where feedback arrived,
        both models' MAE on the same rows (a *classifier*'s label agreement, and both
        models' log loss and accuracy)."""
        since = time.time() - window_seconds
        sums = ", ".join(f"SUM({c})" for c in ROLLOUT_COLUMNS)
        with self.connect(write=False) as db:
            totals = db.execute(
                self.sql(f"SELECT {sums} FROM capture_rollout"
                         " WHERE minute >= ? AND shadow_version = ?"),
                (minute_of(since), shadow_version),
            ).fetchone()  # fmt: skip
            bins = db.execute(
                self.sql("SELECT bin, SUM(count) FROM capture_rollout_bins"
                         " WHERE hour >= ? AND shadow_version = ? GROUP BY bin"),
                (hour_of(since), shadow_version),
            ).fetchall()  # fmt: skip
        return rollout_report(totals if totals and totals[0] is not None else None,
                              dict(bins), tolerance, classifier)  # fmt: skip


class SQLiteStore(CaptureStore):
    """The embedded store: one SQLite file in WAL mode, shared by a deployment's workers."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = Path(urlsplit(url).path)
        self._writer: sqlite3.Connection | None = None  # the writer thread's own connection
        self._writer_lock = threading.Lock()

    def write_batch(self, batch: Batch) -> None:
        """Store *batch* in one transaction, on a connection kept open between batches."""
        with self._writer_lock:
            try:
                if self._writer is None:
                    self._writer = self._open()
                db = self._writer
                db.execute("BEGIN IMMEDIATE")
                self.insert_batch(db, batch)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._writer is not None:
                    self._writer.close()
                self._writer = None  # reconnect on the next batch
                raise CaptureError(f"Cannot write to {self.path}: {exc}.") from None

    def _open(self, write: bool = True) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                             check_same_thread=False)  # fmt: skip
        if write:
            # WAL is a property of the file, set by the writers (the tables are created by
            # one at start). A reader skips it: the pragma can wait on a writer's lock, and a
            # summary must never wait.
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writers
            db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; fast commits
        return db

    @contextlib.contextmanager
    def connect(self, write: bool = True) -> Iterator[Any]:
        try:
            db = self._open(write)
        except (OSError, sqlite3.Error) as exc:
            raise CaptureError(f"Cannot open the capture database {self.path}: {exc}.") from None
        try:
            # A writer takes the lock at once (no deadlock on upgrade); in WAL mode a reader
            # reads a snapshot and never waits for a writer's lock.
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):  # a missing table, a full disk, a locked file
                raise CaptureError(f"The capture database {self.path} failed: {exc}.") from None
            raise
        finally:
            db.close()


class PostgresStore(CaptureStore):
    """PostgreSQL: the tables shared by every replica of a deployment."""

    placeholder = "%s"
    float_type = "DOUBLE PRECISION"
    id_type = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    blob_type = "BYTEA"
    add_column = "ADD COLUMN IF NOT EXISTS"  # replicas starting together may both add it

    @contextlib.contextmanager
    def connect(self, write: bool = True) -> Iterator[Any]:
        import psycopg

        try:
            db = psycopg.connect(self.url, connect_timeout=5)
        except psycopg.Error as exc:
            raise CaptureError(f"Cannot reach the capture database: {exc}".strip()) from None
        try:
            with db.transaction():
                yield db
        except psycopg.Error as exc:  # a missing table, a lost connection, a failed statement
            raise CaptureError(f"The capture database failed: {exc}".strip()) from None
        finally:
            db.close()


def open_store(url: str) -> CaptureStore:
    """Return the store *url* names (``sqlite:///PATH`` or ``postgresql://...``)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise CaptureError(
        f"CAPTURE_URL {url!r} is neither sqlite:///PATH nor postgresql://...: fix it."
    )
