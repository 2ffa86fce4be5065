"""Read a capture store without changing it: what ``utilscli.py capture export`` opens.

The service's stores create their database and tables, and lock for writing, as a writer
must. A reader must not: a mistyped path or this deployment's default file on a machine
where nothing was captured would otherwise be created empty. Here a SQLite file is opened
read-only (``mode=ro``), so none is ever created, and a PostgreSQL session is read-only.
Whatever is not a capture store (no file, an empty one, another program's database, a
file that is not SQLite, a server that cannot be reached) raises ``CaptureError``: one
line saying which and why.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cookbook.core.errors import first_line_of
from cookbook.lifecycle.capture_database import BUSY_TIMEOUT_SECONDS, RECORD_TABLES, CaptureError
from cookbook.lifecycle.capture_store import CaptureStore, PostgresStore, SQLiteStore, open_store

# A record a reader cannot take apart (a damaged body, another layout): reading fails with
# one of these, in the store's code, and is reported as one line.
UNREADABLE_RECORD = (ValueError, KeyError, TypeError)


def open_reader(url: str) -> CaptureStore:
    """Return a read-only view of the existing store *url* names."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteReader(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresReader(url)
    return open_store(url)  # raises the one-line error that names the accepted schemes


def check_tables(present: set[str], where: str) -> None:
    """Raise ``CaptureError`` unless every table of records and labels is in *present*
    (the running sums are the service's, not an export's)."""
    missing = [table for table in RECORD_TABLES if table not in present]
    if len(missing) == len(RECORD_TABLES):
        raise CaptureError(f"{where} holds no capture tables: it is not a capture store.")
    if missing:
        raise CaptureError(
            f"{where} is not a complete capture store: it lacks {', '.join(missing)}."
        )


class SQLiteReader(SQLiteStore):
    """An existing SQLite capture file, read-only: never created, never locked for writing."""

    @contextlib.contextmanager
    def connect(self, write: bool = False) -> Iterator[Any]:
        """Yield a read-only connection on one snapshot of the file (*write* is refused)."""
        if write:
            raise CaptureError(f"{self.path} is open read-only here.")
        path = self.path.resolve()  # sqlite:////tmp/x names //tmp/x: shown as /tmp/x
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise CaptureError(f"No capture database at {path}: it {what}.")
        try:
            if not path.with_name(path.name + "-wal").exists():
                # No write-ahead log: the file holds everything, so it is checked as it is.
                # Even a read-only connection creates a WAL database's -wal and -shm files,
                # which another program's database must not get.
                with contextlib.closing(_open_read_only(path, immutable=True)) as peek:
                    check_tables(_tables(peek), str(path))
            db = _open_read_only(path)
        except sqlite3.Error as exc:
            raise CaptureError(f"Cannot read the capture database {path}: {exc}.") from None
        try:
            db.execute("BEGIN")  # deferred: a read snapshot that never blocks the writers
            check_tables(_tables(db), str(path))
            yield db
        except sqlite3.Error as exc:
            raise CaptureError(f"Cannot read the capture database {path}: {exc}.") from None
        except UNREADABLE_RECORD as exc:
            raise CaptureError(f"{path} holds a record this version cannot read: "
                               f"{type(exc).__name__}: {first_line_of(exc)}") from None  # fmt: skip
        finally:
            db.close()


def _open_read_only(path: Path, immutable: bool = False) -> sqlite3.Connection:
    """Open the existing SQLite file *path* read-only (``immutable``: no locks, no WAL)."""
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(f"{path.as_uri()}?{flags}", uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                           isolation_level=None)  # fmt: skip


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class PostgresReader(PostgresStore):
    """PostgreSQL capture tables, read in a read-only transaction."""

    @contextlib.contextmanager
    def connect(self, write: bool = False) -> Iterator[Any]:
        """Yield a connection inside a read-only transaction (*write* is refused)."""
        if write:
            raise CaptureError("The capture database is open read-only here.")
        import psycopg

        try:
            db = psycopg.connect(self.url, connect_timeout=5)
        except psycopg.Error as exc:
            # psycopg's second line is a hint ("Is the server running...?"): one line here.
            raise CaptureError(f"Cannot reach the capture database: {first_line_of(exc)}") from None
        db.read_only = True
        try:
            with db.transaction():
                present = {name for (name,) in db.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = ANY (current_schemas(false))")}  # fmt: skip
                check_tables(present, "The PostgreSQL database")
                yield db
        except psycopg.Error as exc:
            raise CaptureError(f"Cannot read the capture database: {first_line_of(exc)}") from None
        except UNREADABLE_RECORD as exc:
            raise CaptureError(
                "The capture database holds a record this version cannot read: "
                f"{type(exc).__name__}: {first_line_of(exc)}"
            ) from None
        finally:
            db.close()
