"""Where a model pair's files and its registry live, relative to the served model file.

The one place that knows the layout::

    model.joblib, model.json      the served pair (or what MODEL_PATH names, and its .json)
    model.onnx                    the serving form of a model that is not folded, when it
                                  passed its parity check (same stem, ``.onnx``)
    models/<version>/model.joblib one immutable registry entry per trained model; the
    models/<version>/model.json   version is the first 12 hex digits of the joblib's sha256
    models/promotions.json        the promotion stack and event log
    models/golden.json            the pinned golden evaluation set
"""

from __future__ import annotations

from pathlib import Path

REGISTRY_DIRNAME = "models"
ENTRY_MODEL = "model.joblib"
HISTORY_FILE = "promotions.json"
GOLDEN_FILE = "golden.json"
LOCK_FILE = ".lock"
VERSION_DIGITS = 12


def metadata_path(model_file: Path | str) -> Path:
    """Return the metadata file that belongs to *model_file*: same stem, ``.json``."""
    return Path(model_file).with_suffix(".json")


def onnx_path(model_file: Path | str) -> Path:
    """Return the ONNX file that belongs to *model_file*: same stem, ``.onnx``."""
    return Path(model_file).with_suffix(".onnx")


def registry_root(served_model: Path | str) -> Path:
    """Return the registry folder that belongs to the served model file *served_model*."""
    return Path(served_model).parent / REGISTRY_DIRNAME


def entry_model(registry: Path, version: str) -> Path:
    """Return the joblib file of registry entry *version* in the registry folder *registry*."""
    return registry / version / ENTRY_MODEL


def version_of(sha256: str) -> str:
    """Return the model version named by a joblib file's sha256."""
    return sha256[:VERSION_DIGITS]
