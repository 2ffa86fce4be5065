"""Where the project's files are, and the environment variables that move them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_PATH = PROJECT_ROOT / "model.joblib"
DEFAULT_DATA_PATH = PROJECT_ROOT / "htwtmlb.csv"


def model_path() -> Path:
    """Return the served model's path: ``MODEL_PATH`` if set, else ``model.joblib`` here."""
    return Path(os.environ.get("MODEL_PATH") or DEFAULT_MODEL_PATH)


def data_path() -> Path:
    """Return the training data's path: ``DATA_PATH`` if set, else ``htwtmlb.csv`` here."""
    return Path(os.environ.get("DATA_PATH") or DEFAULT_DATA_PATH)


def project_path(name: Path | str) -> Path:
    """Return *name* as a path in the project when it is relative, whatever the working folder."""
    path = Path(name)
    return path if path.is_absolute() else PROJECT_ROOT / path


def env_number(
    environ: Mapping[str, str], name: str, default: Any, *, kind: type = float,
    minimum: float | None = None,
) -> Any:  # fmt: skip
    """Return the number the variable *name* holds in *environ*, or *default* when unset.

    Raise ValueError with a one-line message naming the variable when it is not a number
    of *kind* (``int``: a whole number) or is below *minimum*.
    """
    text = environ.get(name)
    if text in (None, ""):
        return default
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {text!r}.") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {value}.")
    return value
