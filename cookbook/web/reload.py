"""Swap the served model without downtime, in every gunicorn worker.

gunicorn forks its workers from a master that preloaded the app, so the model cannot
simply be replaced in one process. ``ReloadState`` lives in memory shared across the
fork: a generation number that a successful reload bumps, and a lock so two reloads
never interleave. The process that reloads (the master on SIGHUP, or the worker that
answers ``POST /admin/reload``) verifies the model pair, runs the probe prediction,
swaps its own model and bumps the generation. Every other worker compares the shared
generation with its own before each request (one read of shared memory) and, when
it lags, loads, verifies and probes the model itself. A model that fails is refused:
the process keeps serving the model it has, logs the refusal and counts it.

The reloading process first copies the model pair into a snapshot folder named after
the new generation, and verifies the copy: workers load that snapshot, never
``MODEL_PATH`` itself, so a worker that catches up late (it was idle, or was forked
later) still gets exactly the model that was accepted, even if the files at
``MODEL_PATH`` have changed since. The snapshot's ``model.json`` is the metadata that
verified against the joblib file, so a pair recovered from the registry after a
half-finished promotion (new joblib, old json) snapshots whole, with no registry
needed beside the copy.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from multiprocessing import Lock
from multiprocessing.sharedctypes import RawValue
from pathlib import Path

from cookbook.core.errors import MlibError, ModelError
from cookbook.core.files import write_json_atomic
from cookbook.core.layout import metadata_path, recorded_side_files
from cookbook.core.loading import verified_metadata
from cookbook.core.prediction import Predictor
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.web.request_log import SERVICE_LOGGER

log = logging.getLogger(SERVICE_LOGGER)
# A reload takes milliseconds; a lock held longer belongs to a process that died holding it.
LOCK_TIMEOUT_SECONDS = 10.0
# Snapshots kept: the newest, and two before it for workers still loading those.
KEEP_SNAPSHOTS = 3
SNAPSHOT_MODEL = "model.joblib"


class ReloadBusy(Exception):
    """Another reload holds the lock."""


@dataclass
class Outcome:
    """What one reload attempt did."""

    accepted: bool
    model_version: str
    previous_version: str
    generation: int
    reason: str = ""


class ReloadState:
    """A reload generation shared by every process forked after this is created."""

    def __init__(self) -> None:
        # An 8-byte aligned integer: workers read it without a lock, writers hold the lock.
        self._generation = RawValue("Q", 0)
        self._lock = Lock()
        self.snapshots = Path(tempfile.mkdtemp(prefix="model-reloads-"))
        owner = os.getpid()
        # Forked workers run exit handlers too: only the process that made the folder removes it.
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(self.snapshots, True))

    @property
    def generation(self) -> int:
        """Return the number of accepted reloads so far, across every process."""
        return self._generation.value

    def reload(self, model_path: Path | str, current: Predictor):
        """Snapshot, verify and probe *model_path*; return (predictor to serve, Outcome).

        On refusal the predictor returned is *current*. Raises ``ReloadBusy`` when another
        reload has held the lock too long.
        """
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            raise ReloadBusy("Another model reload is in progress: try again in a moment.")
        try:
            generation = self._generation.value + 1
            folder = self.snapshots / str(generation)
            try:
                candidate = load_verified(_snapshot(model_path, folder))
            except MlibError as exc:
                shutil.rmtree(folder, ignore_errors=True)
                log_refusal(model_path, current, exc)
                return current, Outcome(
                    False, current.version, current.version, generation - 1, str(exc)
                )
            self._generation.value = generation
            shutil.rmtree(self.snapshots / str(generation - KEEP_SNAPSHOTS), ignore_errors=True)
        finally:
            self._lock.release()
        log.info(
            "model reloaded",
            extra={"fields": {"event": "model_reload", "model_version": candidate.version,
                              "previous_version": current.version, "generation": generation}},
        )  # fmt: skip
        return candidate, Outcome(True, candidate.version, current.version, generation)

    def load_generation(self, generation: int) -> Predictor:
        """Load, verify and probe the model accepted as *generation* (its snapshot)."""
        return load_verified(self.snapshots / str(generation) / SNAPSHOT_MODEL)


def _snapshot(model_path: Path | str, folder: Path) -> Path:
    """Copy the verified model pair at *model_path* (and the side files it records) into
    *folder*; return the copy's path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SNAPSHOT_MODEL
    metadata = verified_metadata(model_path)  # recovers a half-promoted pair from the registry
    try:
        shutil.copyfile(model_path, target)
        for side in recorded_side_files(metadata):
            if side.path(model_path).is_file():
                # Verified against the metadata's sha256 when the snapshot is loaded.
                shutil.copyfile(side.path(model_path), side.path(target))
    except OSError:
        raise ModelError(f"Model {model_path} could not be read: retrain.") from None
    # The copy is verified against this metadata on load: a joblib replaced since is refused.
    write_json_atomic(metadata_path(target), metadata)
    return target


def load_verified(model_path: Path | str) -> Predictor:
    """Return the verified model at *model_path* once its probe prediction succeeds."""
    predictor = load_predictor(model_path)
    predictor.probe()
    return predictor


def log_refusal(model_path: Path | str, current: Predictor, exc: Exception) -> None:
    """Log that the model at *model_path* was refused and *current* keeps serving."""
    log.error(
        "model reload refused; the previous model keeps serving",
        extra={"fields": {"event": "model_reload_refused", "model_path": str(model_path),
                          "reason": str(exc), "model_version": current.version}},
    )  # fmt: skip
