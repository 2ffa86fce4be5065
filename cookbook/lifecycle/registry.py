"""Keep every trained model as an immutable version, and promote, list and roll them back.

The folders are ``cookbook.core.layout``'s: one ``models/<version>/`` entry per trained
model beside the served pair, and ``models/promotions.json`` for the promotion stack.

Promotion copies the entry's two files beside the served pair and renames the joblib
into place, then the json. A crash between the renames leaves the new joblib beside
the old json; ``verified_metadata`` recognises the joblib's sha256 in the registry and
serves the new model whole, so a reader sees the old pair or the new one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cookbook
from cookbook.core.errors import MlibError, ModelError
from cookbook.core.files import copy_synced, fsync_dir, temporary_beside, write_json_atomic
from cookbook.core.layout import (
    ENTRY_MODEL,
    HISTORY_FILE,
    LOCK_FILE,
    SIDE_FILES,
    metadata_path,
    registry_root,
)
from cookbook.core.loading import read_metadata, verified_metadata, verify_model_file
from cookbook.core.model_cache import forget_loaded_models
from cookbook.core.settings import PROJECT_ROOT, model_path
from cookbook.lifecycle.artifacts import install_pair

MIN_PREFIX = 4


class RegistryError(MlibError):
    """A registry operation that cannot be done: unknown version, nothing to roll back to."""


@dataclass(frozen=True)
class Entry:
    """One registered model version: its folder and its metadata."""

    version: str
    folder: Path
    metadata: dict[str, Any]

    @property
    def model_file(self) -> Path:
        """Return the entry's joblib file."""
        return self.folder / ENTRY_MODEL

    @property
    def created_at(self) -> str:
        """Return when the model was trained (ISO 8601, UTC)."""
        return str(self.metadata.get("created_at", ""))

    @property
    def held_out(self) -> dict[str, Any]:
        """Return the held-out metrics recorded at training time."""
        return self.metadata.get("metrics", {}).get("held_out", {})


def code_version() -> dict[str, Any]:
    """Return the code's version: the package's, and the git commit (and whether it is dirty)."""
    version: dict[str, Any] = {
        "cookbook": cookbook.__version__,
        "git_commit": None,
        "git_dirty": None,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return version
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return version  # no git here (a container, an sdist): the package version still says much
    version["git_commit"] = commit.stdout.strip()
    version["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    return version


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class Registry:
    """The model registry that belongs to one served model file."""

    def __init__(self, served_model: Path | str | None = None) -> None:
        self.served_model = Path(served_model) if served_model else model_path()
        self.root = registry_root(self.served_model)

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[Entry]:
        """Return every registered version, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or not (folder / ENTRY_MODEL).is_file():
                continue
            try:
                metadata = read_metadata(folder / ENTRY_MODEL)
            except ModelError:
                continue  # not an entry (a stray folder); `promote` would refuse it anyway
            found.append(Entry(folder.name, folder, metadata))
        return sorted(found, key=lambda entry: (entry.created_at, entry.version))

    def listing(self) -> list[Entry]:
        """Return the registered versions, plus the served model if it is not registered yet."""
        entries = self.entries()
        served = self.served_metadata()
        if served is not None and served["model_version"] not in {e.version for e in entries}:
            entries.append(Entry(served["model_version"], self.served_model.parent, served))
        return entries

    def entry(self, version: str) -> Entry:
        """Return the entry for *version* (or a unique prefix of it), or raise RegistryError."""
        version = version.strip().lower()
        if len(version) < MIN_PREFIX:
            raise RegistryError(f"Version {version!r} is too short: give at least 4 characters.")
        matches = [entry for entry in self.entries() if entry.version.startswith(version)]
        if not matches:
            raise RegistryError(
                f"No model version {version!r} in {self.root}: see `utilscli.py models list`."
            )
        if len(matches) > 1:
            names = ", ".join(entry.version for entry in matches)
            raise RegistryError(f"Version {version!r} is ambiguous: it matches {names}.")
        return matches[0]

    def served_metadata(self) -> dict[str, Any] | None:
        """Return the served model's verified metadata, or None when nothing valid is served."""
        if not self.served_model.exists():
            return None
        try:
            return verified_metadata(self.served_model)
        except ModelError:
            return None

    def served_version(self) -> str | None:
        """Return the served model's version, or None when nothing valid is served."""
        metadata = self.served_metadata()
        return None if metadata is None else metadata["model_version"]

    def history(self) -> list[str]:
        """Return the promoted versions, oldest first; the last one is the served model.

        The served pair is the truth: a crash between swapping the pair and writing
        the stack is read as if the stack had been written.
        """
        stack = [item["version"] for item in self._read_history()["stack"]]
        served = self.served_version()
        if served is not None and (not stack or stack[-1] != served):
            stack.append(served)
        return stack

    # ------------------------------------------------------------------ writing

    def register(self, staged_model: Path) -> Entry:
        """Move a freshly trained pair into ``models/<version>/``; keep an existing entry.

        *staged_model*'s folder must hold only that pair and live inside the registry
        root, so the rename that publishes it is one atomic step.
        """
        metadata = verified_metadata(staged_model)
        version = metadata["model_version"]
        folder = self.root / version
        if not (folder / ENTRY_MODEL).exists():
            try:
                os.rename(staged_model.parent, folder)
            except OSError:
                if not (folder / ENTRY_MODEL).exists():
                    raise
            fsync_dir(self.root)
        else:
            self._refresh_metadata(folder / ENTRY_MODEL, metadata, staged_model)
        shutil.rmtree(staged_model.parent, ignore_errors=True)
        return Entry(version, folder, read_metadata(folder / ENTRY_MODEL))

    def _refresh_metadata(
        self, entry_model: Path, metadata: dict[str, Any], staged_model: Path
    ) -> None:
        """Record newer metadata for an entry retrained to the very same bytes.

        The joblib file never changes (the version is its sha256). Only when what the
        training run says about it changed (a new field such as its interval, new
        metrics), not merely when or from which commit it ran, is the entry's
        ``model.json`` replaced, so retraining unchanged data changes no file. The entry's
        ONNX file never changes either: what ``model.json`` records of it (its sha256, its
        parity, the form that serves the model) stays the entry's own, never the record of
        the fresh conversion, whose file is discarded with the staging folder. A side file
        that only explains (the trees file) and that the entry lacks altogether (it was
        saved before the cookbook wrote that kind) is moved in from *staged_model*'s run:
        what the entry predicts does not change.
        """
        try:
            current = read_metadata(entry_model)
            verify_model_file(entry_model, metadata)
        except ModelError:
            return  # not the same bytes after all: an entry is never rewritten then
        for side in SIDE_FILES:
            if side.serves or side.key in current or side.key not in metadata:
                continue
            if side.is_recorded(metadata):
                if not side.path(staged_model).is_file():
                    continue
                os.replace(side.path(staged_model), side.path(entry_model))
            current = {**current, side.key: metadata[side.key]}
        metadata = _with_entry_files(metadata, current)
        if _substance(current) != _substance(metadata):
            write_json_atomic(metadata_path(entry_model), metadata)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """Yield a private folder inside the registry to train into; remove it afterwards."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        folder.chmod(0o755)  # mkdtemp makes 0700; a server under another user reads entries
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def adopt_served(self) -> Entry | None:
        """Register the served pair if it is valid and not registered yet; return its entry."""
        metadata = self.served_metadata()
        if metadata is None:
            return None
        folder = self.root / metadata["model_version"]
        if not (folder / ENTRY_MODEL).exists():
            with self.staging() as staged:
                shutil.copyfile(self.served_model, staged / ENTRY_MODEL)
                # The entry keeps the pair's side files (verified when it is loaded).
                for side in SIDE_FILES:
                    if side.path(self.served_model).exists():
                        shutil.copyfile(
                            side.path(self.served_model), side.path(staged / ENTRY_MODEL)
                        )
                write_json_atomic(metadata_path(staged / ENTRY_MODEL), metadata)
                return self.register(staged / ENTRY_MODEL)
        return self.entry(metadata["model_version"])

    def promote(self, version: str, *, reason: str = "promote") -> Entry:
        """Serve *version*: swap the served pair for the entry's, then record it."""
        with self._locked():
            self.adopt_served()  # keep the outgoing model so that rollback can return to it
            entry = self.entry(version)
            history = self._read_history()
            stack = self._stack_with_served(history)
            if stack != history["stack"]:
                # Record the outgoing model before the swap, so a crash cannot forget it.
                history["stack"] = stack
                self._write_history(history)
            swapped = self._serve(entry)
            if not stack or stack[-1]["version"] != entry.version:
                stack.append({"version": entry.version, "promoted_at": _now()})
            elif not swapped:
                return entry  # already served and on top: nothing happened, nothing to record
            history["stack"] = stack
            history["events"].append({"event": reason, "version": entry.version, "at": _now()})
            self._write_history(history)
        return entry

    def rollback(self) -> Entry:
        """Serve the previously promoted version again and drop the current one from the stack."""
        with self._locked():
            history = self._read_history()
            stack = self._stack_with_served(history)
            if len(stack) < 2:
                raise RegistryError(
                    "Nothing to roll back to: no model was promoted before the served one."
                )
            current, previous = stack[-1]["version"], stack[-2]["version"]
            entry = self.entry(previous)
            # Stack first, then the pair: a crash between reads as "rollback not done yet".
            history["stack"] = stack[:-1]
            history["events"].append(
                {"event": "rollback", "version": previous, "from": current, "at": _now()}
            )
            self._write_history(history)
            self._serve(entry)
        return entry

    # ---------------------------------------------------------------- internals

    def _serve(self, entry: Entry) -> bool:
        """Make *entry* the served pair; return False when it already was, byte for byte."""
        # Verify the entry before it is served: entries are immutable, an edit is tampering.
        verify_model_file(entry.model_file, entry.metadata)
        target_model, target_meta = self.served_model, metadata_path(self.served_model)
        source_meta = metadata_path(entry.model_file)
        if _same_bytes(entry.model_file, target_model) and _same_bytes(source_meta, target_meta):
            return False
        target_model.parent.mkdir(parents=True, exist_ok=True)
        staged_model = temporary_beside(target_model)
        staged_meta = temporary_beside(target_meta)
        try:
            copy_synced(entry.model_file, staged_model)
            copy_synced(source_meta, staged_meta)
            # Joblib first: in between, the registry lets readers recover the new pair.
            install_pair(staged_model, staged_meta, target_model)
            forget_loaded_models(target_model)
        finally:
            staged_model.unlink(missing_ok=True)
            staged_meta.unlink(missing_ok=True)
        return True

    def _stack_with_served(self, history: dict[str, Any]) -> list[dict[str, Any]]:
        stack = list(history["stack"])
        served = self.served_version()
        if served is not None and (not stack or stack[-1]["version"] != served):
            stack.append({"version": served, "promoted_at": None})
        return stack

    def _read_history(self) -> dict[str, Any]:
        path = self.root / HISTORY_FILE
        try:
            history = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"stack": [], "events": []}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"Promotion history {path} is unreadable ({exc}).") from None
        history.setdefault("stack", [])
        history.setdefault("events", [])
        return history

    def _write_history(self, history: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / HISTORY_FILE, history)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two promotions at once would interleave their renames; one waits for the other.
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# Facts about a training run, not about the model it produced.
_RUN_FIELDS = frozenset({"created_at", "code"})


# What model.json records of an entry's files besides the joblib: they never change.
_ENTRY_FILE_FIELDS = (*(side.key for side in SIDE_FILES), "serving")


def _with_entry_files(metadata: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Return *metadata* with *current*'s record of the entry's ONNX file and serving form
    (in *metadata*'s order of keys, so the rewritten file differs only where it must)."""
    merged = {
        key: current[key] if key in _ENTRY_FILE_FIELDS else value
        for key, value in metadata.items()
        if key not in _ENTRY_FILE_FIELDS or key in current
    }
    merged.update({key: current[key] for key in _ENTRY_FILE_FIELDS if key in current})
    return merged


def _substance(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if key not in _RUN_FIELDS}


def _same_bytes(left: Path, right: Path) -> bool:
    try:
        return left.read_bytes() == right.read_bytes()
    except OSError:
        return False
