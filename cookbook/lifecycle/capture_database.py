"""The capture store's database: its tables, bringing an earlier build's up to date, and the
SQL both backends share (``cookbook.lifecycle.capture_store`` names the backends).

A store written by an earlier build is brought up to date in place when the service creates
its tables: the columns added since (``ADDED_COLUMNS``) are added, the new tables created;
its rows stay as they are, and a reader reads both shapes (a store without the explanations'
table, which ``capture export`` never creates, has no explained rows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cookbook.core.errors import MlibError
from cookbook.lifecycle.class_tallies import ClassModel

# The captured records and their labels (every store has them), the explanations of the
# batches that hold explained rows (kept with their batch; a store made before explanations
# lacks the table until the service starts on it), then the running sums of the summaries
# (kept with the records they sum), then the classifiers' facts by model version (for good).
RECORD_TABLES = ("capture_batches", "capture_keys", "capture_labels")
EXPLANATIONS_TABLE = "capture_explanations"
SUM_TABLES = ("capture_quality", "capture_rollout", "capture_rollout_bins", "capture_class_bins")
TABLES = (*RECORD_TABLES, EXPLANATIONS_TABLE, *SUM_TABLES, "capture_models")
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
# Seconds a writer waits for another writer's lock before the batch fails.
BUSY_TIMEOUT_SECONDS = 5.0


class CaptureError(MlibError):
    """The capture store cannot be reached or used: one line saying why."""


class CaptureDatabase:
    """The capture tables in one database; every method opens and closes its own connection.

    The class attributes are SQLite's types and syntax; a backend overrides them.
    """

    placeholder = "?"
    float_type = "REAL"
    id_type = "INTEGER PRIMARY KEY"  # SQLite's rowid: grows with every batch
    blob_type = "BLOB"
    add_column = "ADD COLUMN"  # SQLite has no IF NOT EXISTS here: migrate holds the lock
    table_query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

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

    def has_table(self, db: Any, table: str) -> bool:
        """Return whether *table* exists (asked of the catalogue: a failed SELECT would end
        a PostgreSQL transaction)."""
        return db.execute(self.sql(self.table_query), (table,)).fetchone() is not None

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
            # A batch's explanations (``capture_format.encode_explanations``), apart from its
            # body so that builds from before explanations read every body. ``first_ts`` is
            # its batch's: SQLite gives a new batch the id of a deleted one once the newest
            # is gone, and such a build's retention deletes batches but not their explanations.
            f"""CREATE TABLE IF NOT EXISTS {EXPLANATIONS_TABLE} (
                batch_id BIGINT PRIMARY KEY, first_ts {real} NOT NULL,
                body {self.blob_type} NOT NULL)""",
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

    def class_models(self, db: Any) -> dict[str, ClassModel]:
        """Return the facts of every classifier the store has captured, by model version."""
        return {version: ClassModel.from_json(facts) for version, facts in
                db.execute("SELECT model_version, facts FROM capture_models")}  # fmt: skip
