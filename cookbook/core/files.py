"""Checksums and atomic file replacement: a reader sees the old file or the new one, whole."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def sha256_file(path: Path | str) -> str:
    """Return the hex sha256 of the file at *path*."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temporary_beside(path: Path) -> Path:
    """Create an empty, world-readable temporary file in *path*'s folder; return its path."""
    import tempfile  # only writers need it: a prediction's start stays lighter (make bench)

    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(name, 0o644)  # mkstemp makes 0600; a server under another user must read it
    return Path(name)


def write_synced(path: Path, content: bytes) -> None:
    """Write *content* to *path* and fsync it."""
    with open(path, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def fsync_file(path: Path) -> None:
    """Flush *path*'s contents to disk."""
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def fsync_dir(path: Path) -> None:
    """Flush *path*'s directory entries (renames into it) to disk, where the OS allows it."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def copy_synced(source: Path, target: Path) -> None:
    """Copy *source* to *target* and fsync the copy."""
    import shutil  # as tempfile above

    shutil.copyfile(source, target)
    fsync_file(target)


def write_bytes_atomic(path: Path | str, content: bytes) -> None:
    """Write *content* to *path* through a synced temporary file and one rename."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = temporary_beside(destination)
    try:
        write_synced(staged, content)
        os.replace(staged, destination)
    finally:
        staged.unlink(missing_ok=True)
    fsync_dir(destination.parent)


def json_bytes(document: Any) -> bytes:
    """Return *document* as the indented JSON text every file here is written in."""
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def write_json_atomic(path: Path | str, document: Any) -> None:
    """Write *document* as indented JSON to *path*, atomically."""
    write_bytes_atomic(path, json_bytes(document))
