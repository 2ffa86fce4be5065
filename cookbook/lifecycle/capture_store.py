"""Where captured predictions live: an embedded SQLite database or a PostgreSQL server.

Each answered row is one record: the request id and the row's index in it, the time, the
model version, which role answered (champion, canary), the inputs, the predicted value,
the answer as sent (its prediction interval included) and, once feedback arrives, the
true value. ``CAPTURE_URL`` chooses the store: ``sqlite:///PATH`` (WAL mode, so every
worker of a deployment writes to one file) or ``postgresql://...`` for deployments with
several replicas. The same SQL serves both; only placeholders and a few types differ.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
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

COLUMNS = ("request_id", "row_index", "ts", "model_version", "role", "inputs", "prediction",
           "answer", "interval_low", "interval_high")  # fmt: skip
# Rows per INSERT statement (SQLite allows 32,766 parameters in one; these take 500).
ROWS_PER_INSERT = 50
# Seconds a writer waits for another writer's lock before the batch fails.
BUSY_TIMEOUT_SECONDS = 5.0


class CaptureError(MlibError):
    """The capture store cannot be reached or used: one line saying why."""


class Record(NamedTuple):
    """One answered row, as captured (a tuple: the writer makes thousands a second)."""

    request_id: str
    row_index: int
    ts: float  # seconds since the epoch, UTC
    model_version: str
    role: str
    inputs: dict[str, Any]
    prediction: float
    answer: dict[str, Any]

    def values(self) -> tuple:
        """Return the record's values in COLUMNS order."""
        return row_values(*self)


def row_values(request_id: str, row_index: int, ts: float, model_version: str, role: str,
               inputs: dict[str, Any], prediction: float,
               answer: dict[str, Any]) -> tuple:  # fmt: skip
    """Return one captured row's values in COLUMNS order (*answer* loses its interval).

    The interval has columns of its own and its words are made again from them: every
    byte stored here costs the writer. orjson writes the two documents in a tenth of
    json's time.
    """
    interval = answer.get("interval")
    if interval is None:
        low = high = None
        fields = answer
    else:
        low, high = interval.get("low"), interval.get("high")
        fields = answer.copy()  # a copy and a del: half the time of a comprehension
        del fields["interval"]
    return (request_id, row_index, ts, model_version, role, orjson.dumps(inputs).decode(),
            prediction, orjson.dumps(fields).decode(), low, high)  # fmt: skip


@functools.lru_cache(maxsize=8)
def insert_statement(placeholder: str, rows: int) -> str:
    """Return an INSERT of *rows* rows of COLUMNS (a row captured twice keeps the first)."""
    row = "(" + ", ".join([placeholder] * len(COLUMNS)) + ")"
    return (f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join([row] * rows)} "
            "ON CONFLICT (request_id, row_index, role) DO NOTHING")  # fmt: skip


@dataclass(frozen=True)
class Feedback:
    """A true value for one captured row."""

    request_id: str
    row_index: int
    actual: float


class CaptureStore:
    """The capture table in one database; every method opens and closes its own connection."""

    placeholder = "?"

    def __init__(self, url: str) -> None:
        self.url = url

    # -------------------------------------------------------------- connections

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """Yield a connection inside a transaction (committed on success)."""
        raise NotImplementedError

    def create(self) -> None:
        """Create the table and its indexes if they do not exist."""
        with self.connect() as db:
            for statement in self.ddl():
                db.execute(statement)

    def ddl(self) -> list[str]:
        """Return the statements that create the table."""
        return [
            f"""CREATE TABLE IF NOT EXISTS predictions (
                request_id TEXT NOT NULL, row_index INTEGER NOT NULL, ts {self.float_type} NOT NULL,
                model_version TEXT NOT NULL, role TEXT NOT NULL, inputs TEXT NOT NULL,
                prediction {self.float_type} NOT NULL, answer TEXT NOT NULL,
                interval_low {self.float_type}, interval_high {self.float_type},
                actual {self.float_type}, actual_ts {self.float_type},
                PRIMARY KEY (request_id, row_index, role))""",
            # Only labelled rows are indexed by time (what /quality reads): a new row, which has
            # no feedback yet, costs one index insertion (the key's), not two.
            "CREATE INDEX IF NOT EXISTS predictions_labelled ON predictions (ts) "
            "WHERE actual IS NOT NULL",
        ]

    float_type = "REAL"

    def sql(self, text: str) -> str:
        """Return *text* with ``?`` placeholders in this database's style."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # ------------------------------------------------------------------ writing

    def write(self, records: Sequence[Record]) -> None:
        """Insert *records* in one transaction (a row captured twice keeps the first)."""
        self.write_rows([record.values() for record in records])

    def write_rows(self, rows: Sequence[tuple]) -> None:
        """Insert rows of values in COLUMNS order in one transaction (first capture stands)."""
        if not rows:
            return
        with self.connect() as db:
            for statement, parameters in self.inserts(rows):
                db.execute(statement, parameters)

    def inserts(self, rows: Sequence[tuple]) -> Iterator[tuple[str, list]]:
        """Yield the statements, and their parameters, that insert *rows*.

        Each statement inserts up to ``ROWS_PER_INSERT`` rows: a third less database time
        per row than one statement per row (``executemany``), on the worker's CPU.
        """
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            yield (insert_statement(self.placeholder, len(chunk)),
                   [value for row in chunk for value in row])  # fmt: skip

    def add_feedback(self, items: Sequence[Feedback]) -> dict[str, list[str]]:
        """Join true values with captured rows; return request ids by outcome.

        ``joined``: the value was stored; ``unknown``: no such captured row (never captured,
        or trimmed by retention); ``already``: the row had feedback (the first value stands).
        """
        outcome: dict[str, list[str]] = {"joined": [], "unknown": [], "already": []}
        now = time.time()
        with self.connect() as db:
            for item in items:
                cursor = db.execute(
                    self.sql("UPDATE predictions SET actual = ?, actual_ts = ? WHERE request_id = ?"
                             " AND row_index = ? AND actual IS NULL"),
                    (item.actual, now, item.request_id, item.row_index),
                )  # fmt: skip
                if cursor.rowcount:
                    outcome["joined"].append(item.request_id)
                    continue
                found = db.execute(
                    self.sql("SELECT 1 FROM predictions WHERE request_id = ? AND row_index = ?"),
                    (item.request_id, item.row_index),
                ).fetchone()
                outcome["already" if found else "unknown"].append(item.request_id)
        return outcome

    def trim(self, max_rows: int | None = None, max_age_seconds: float | None = None) -> int:
        """Delete records beyond the newest *max_rows* or older than *max_age_seconds*."""
        deleted = 0
        with self.connect() as db:
            if max_age_seconds is not None:
                cursor = db.execute(self.sql("DELETE FROM predictions WHERE ts < ?"),
                                    (time.time() - max_age_seconds,))  # fmt: skip
                deleted += max(cursor.rowcount, 0)
            if max_rows is not None:
                row = db.execute(
                    self.sql("SELECT ts FROM predictions ORDER BY ts DESC LIMIT 1 OFFSET ?"),
                    (max_rows,),
                ).fetchone()
                if row is not None:
                    cursor = db.execute(self.sql("DELETE FROM predictions WHERE ts <= ?"),
                                        (row[0],))  # fmt: skip
                    deleted += max(cursor.rowcount, 0)
        return deleted

    # ------------------------------------------------------------------ reading

    def rows(self, since: float | None = None, roles: Sequence[str] | None = None
             ) -> list[dict[str, Any]]:  # fmt: skip
        """Return the captured rows (oldest first), from *since* (epoch seconds) if given,
        of the given *roles* only if given."""
        query = f"SELECT {', '.join(COLUMNS)}, actual FROM predictions"
        conditions, params = [], []
        if since is not None:
            conditions.append("ts >= ?")
            params.append(since)
        if roles is not None:
            conditions.append(f"role IN ({', '.join('?' * len(roles))})")
            params.extend(roles)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        params = tuple(params)
        query += " ORDER BY ts, request_id, row_index"
        with self.connect() as db:
            found = db.execute(self.sql(query), params).fetchall()
        names = (*COLUMNS, "actual")
        result = []
        for values in found:
            row = dict(zip(names, values, strict=True))
            row["inputs"] = json.loads(row["inputs"])
            row["answer"] = json.loads(row["answer"])
            result.append(row)
        return result

    def shadow_pairs(self, window_seconds: float) -> list[tuple[float, float, float | None]]:
        """Return (champion value, shadow value, true value or None) for every row both
        scored in the window."""
        query = ("SELECT c.prediction, s.prediction, c.actual FROM predictions c JOIN predictions s"
                 " ON s.request_id = c.request_id AND s.row_index = c.row_index"
                 " WHERE c.role = 'champion' AND s.role = 'shadow' AND c.ts >= ?")  # fmt: skip
        with self.connect() as db:
            found = db.execute(self.sql(query), (time.time() - window_seconds,)).fetchall()
        return [tuple(row) for row in found]

    def quality(self, window_seconds: float) -> dict[str, dict[str, Any]]:
        """Return, per model version, the labelled rows' count, MAE, RMSE, bias and the
        share whose true value lay inside the prediction interval, over the window."""
        # Shadow rows are scored, never answered: their quality is /rollout's.
        query = ("SELECT model_version, role, prediction, actual, interval_low, interval_high "
                 "FROM predictions WHERE actual IS NOT NULL AND ts >= ? "
                 "AND role <> 'shadow'")  # fmt: skip
        with self.connect() as db:
            found = db.execute(self.sql(query), (time.time() - window_seconds,)).fetchall()
        by_version: dict[str, dict[str, Any]] = {}
        for version, role, predicted, actual, low, high in found:
            stats = by_version.setdefault(version, {"roles": set(), "errors": [], "inside": []})
            stats["roles"].add(role)
            stats["errors"].append(predicted - actual)
            if low is not None and high is not None:
                stats["inside"].append(low <= actual <= high)
        report = {}
        for version, stats in by_version.items():
            errors = stats["errors"]
            report[version] = {
                "roles": sorted(stats["roles"]),
                "labelled": len(errors),
                "mae": sum(abs(e) for e in errors) / len(errors),
                "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
                "bias": sum(errors) / len(errors),  # predicted minus true: > 0 is too high
                "interval_coverage": (
                    sum(stats["inside"]) / len(stats["inside"]) if stats["inside"] else None
                ),  # fmt: skip
            }
        return report


class SQLiteStore(CaptureStore):
    """The embedded store: one SQLite file in WAL mode, shared by a deployment's workers."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = Path(urlsplit(url).path)
        self._writer: sqlite3.Connection | None = None  # the writer thread's own connection
        self._writer_lock = threading.Lock()

    def write_rows(self, rows: Sequence[tuple]) -> None:
        """Insert *rows* in one transaction, on a connection kept open between batches."""
        if not rows:
            return
        with self._writer_lock:
            try:
                if self._writer is None:
                    self._writer = self._open()
                db = self._writer
                db.execute("BEGIN IMMEDIATE")
                for statement, parameters in self.inserts(rows):
                    db.execute(statement, parameters)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._writer is not None:
                    self._writer.close()
                self._writer = None  # reconnect on the next batch
                raise CaptureError(f"Cannot write to {self.path}: {exc}.") from None

    def trim(self, max_rows: int | None = None, max_age_seconds: float | None = None) -> int:
        """Delete records beyond the newest *max_rows* or older than *max_age_seconds*.

        Rows are found by rowid, which grows in the order they were written (the writers'
        half-second batches make that time order to within a second): deleting the oldest
        reads only what it deletes, where the ``ts`` conditions scanned the whole table.
        """
        deleted = 0
        with self.connect() as db:
            if max_age_seconds is not None:
                cursor = db.execute(
                    "DELETE FROM predictions WHERE rowid < COALESCE((SELECT rowid FROM predictions"
                    " WHERE ts >= ? ORDER BY rowid LIMIT 1), (SELECT max(rowid) + 1 FROM"
                    " predictions))", (time.time() - max_age_seconds,),
                )  # fmt: skip
                deleted += max(cursor.rowcount, 0)
            if max_rows is not None:
                cursor = db.execute("DELETE FROM predictions WHERE rowid <= (SELECT max(rowid)"
                                    " FROM predictions) - ?", (max_rows,))  # fmt: skip
                deleted += max(cursor.rowcount, 0)
        return deleted

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                             check_same_thread=False)  # fmt: skip
        db.execute("PRAGMA journal_mode=WAL")  # readers never block the writers
        db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; fast commits
        return db

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        try:
            db = self._open()
        except (OSError, sqlite3.Error) as exc:
            raise CaptureError(f"Cannot open the capture database {self.path}: {exc}.") from None
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()


class PostgresStore(CaptureStore):
    """PostgreSQL: one table shared by every replica of a deployment."""

    placeholder = "%s"
    float_type = "DOUBLE PRECISION"

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        import psycopg

        try:
            db = psycopg.connect(self.url, connect_timeout=5)
        except psycopg.Error as exc:
            raise CaptureError(f"Cannot reach the capture database: {exc}".strip()) from None
        try:
            with db.transaction():
                yield db
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
