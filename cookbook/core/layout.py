"""Where a model pair's files and its registry live, relative to the served model file.

The one place that knows the layout::

    model.joblib, model.json      the served pair (or what MODEL_PATH names, and its .json)
    model.onnx                    side files: the serving form of a model that is not
    model.trees.npz               folded (when it passed its parity check) and its trees'
                                  arrays for explanations (``SIDE_FILES``; same stem)
    models/<version>/model.joblib one immutable registry entry per trained model; the
    models/<version>/model.json   version is the first 12 hex digits of the joblib's sha256
    models/promotions.json        the promotion stack and event log
    models/golden.json            the pinned golden evaluation set
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_DIRNAME = "models"
ENTRY_MODEL = "model.joblib"
HISTORY_FILE = "promotions.json"
GOLDEN_FILE = "golden.json"
LOCK_FILE = ".lock"
VERSION_DIGITS = 12


def metadata_path(model_file: Path | str) -> Path:
    """Return the metadata file that belongs to *model_file*: same stem, ``.json``."""
    return Path(model_file).with_suffix(".json")


@dataclass(frozen=True)
class SideFile:
    """A file that belongs to a model pair beside its joblib file: same stem, its own suffix,
    recorded in ``model.json`` under *key* (``{"file": name, "sha256": ..., ...}``; a record
    whose file is None says why there is none)."""

    key: str
    suffix: str
    description: str  # how messages name it: "ONNX file"
    serves: bool  # predictions come from it (else it only explains them)

    def path(self, model_file: Path | str) -> Path:
        """Return this side file of *model_file*."""
        return Path(model_file).with_suffix(self.suffix)

    def is_recorded(self, metadata: Mapping[str, Any]) -> bool:
        """Return whether *metadata* records a file of this kind."""
        record = metadata.get(self.key)
        return isinstance(record, Mapping) and bool(record.get("file"))


# The serving form of a model that is not folded; a tree model's arrays, for its explanations.
ONNX = SideFile("onnx", ".onnx", "ONNX file", serves=True)
TREES = SideFile("trees", ".trees.npz", "Trees file", serves=False)
# Every side file: what copies, promotes, snapshots or lists a model pair handles these.
SIDE_FILES = (ONNX, TREES)


def recorded_side_files(metadata: Mapping[str, Any]) -> tuple[SideFile, ...]:
    """Return the side files *metadata* records."""
    return tuple(side for side in SIDE_FILES if side.is_recorded(metadata))


def present_side_files(model_file: Path | str) -> list[Path]:
    """Return the side files of *model_file* that exist."""
    return [path for path in (side.path(model_file) for side in SIDE_FILES) if path.is_file()]


def registry_root(served_model: Path | str) -> Path:
    """Return the registry folder that belongs to the served model file *served_model*."""
    return Path(served_model).parent / REGISTRY_DIRNAME


def entry_model(registry: Path, version: str) -> Path:
    """Return the joblib file of registry entry *version* in the registry folder *registry*."""
    return registry / version / ENTRY_MODEL


def version_of(sha256: str) -> str:
    """Return the model version named by a joblib file's sha256."""
    return sha256[:VERSION_DIGITS]
