"""Where captured predictions live: an embedded SQLite database or a PostgreSQL server.

Each answered row is one record: the request id and the row's index in it, the time, the
model version, which role answered (champion, canary, or a shadow that only scored), the
inputs, the predicted value and its interval as sent (a classifier's: its answered label
and probabilities). Records are stored in batches, one database row per worker and flush
(``cookbook.lifecycle.capture_format`` says how), and the explanations of a batch's rows
answered with ``"explain": true`` beside it (``capture_explanations``); true values from
feedback are labels, one row per labelled record, which carry what the quality figures
need. A classifier's model facts (classes, threshold, prediction set) are kept once per
version (``capture_models``), so feedback days later, after a reload, still scores the rows
of the model that answered.
``CAPTURE_URL`` chooses the store: ``sqlite:///PATH`` (WAL mode, so every worker of a
deployment writes to one file) or ``postgresql://...`` for deployments with several
replicas. The same SQL serves both; only placeholders and a few types differ.

The store's work is split by job, one module each, and assembled here: the tables
(``capture_database``), writing batches and retention (``capture_writing``), feedback and
the running sums (``capture_feedback``), reading rows and summaries (``capture_summaries``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cookbook.lifecycle.capture_database import BUSY_TIMEOUT_SECONDS, CaptureError
from cookbook.lifecycle.capture_feedback import CaptureFeedback
from cookbook.lifecycle.capture_format import Batch
from cookbook.lifecycle.capture_summaries import CaptureSummaries
from cookbook.lifecycle.capture_writing import CaptureWriting


class CaptureStore(CaptureWriting, CaptureFeedback, CaptureSummaries):
    """Every job of the capture store over one database (SQLite's SQL unless overridden)."""


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
    table_query = (
        "SELECT 1 FROM information_schema.tables"
        " WHERE table_schema = ANY (current_schemas(false)) AND table_name = ?"
    )

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
