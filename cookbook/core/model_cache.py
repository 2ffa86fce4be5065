"""The process's loaded models: each model file verified and loaded once, until it is replaced.

Loading a model verifies its sha256 (and may unpickle it), which costs far more than a
prediction, so the library, the Lambda handler and batch workers keep what they loaded
here. Whoever replaces a model file calls ``forget_loaded_models`` with its path, so the
next use loads the new one: the cache is never cleared as a side effect of anything else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from cookbook.core.prediction import Predictor

_loaded: dict[Path, Predictor] = {}
# Held while loading, so threads that ask for the same model at once load it once.
_lock = threading.Lock()


def _key(model_file: Path | str) -> Path:
    return Path(os.path.abspath(model_file))


def cached_predictor(model_file: Path | str, load: Callable[[Path], Predictor]) -> Predictor:
    """Return the Predictor loaded for *model_file*, calling ``load(path)`` the first time."""
    key = _key(model_file)
    with _lock:
        predictor = _loaded.get(key)
        if predictor is None:
            predictor = _loaded[key] = load(Path(model_file))
    return predictor


def forget_loaded_models(model_file: Path | str | None = None) -> None:
    """Drop the loaded model of *model_file* (every model when None): call it after replacing
    a model file, so the next ``cached_predictor`` verifies and loads the new one."""
    with _lock:
        if model_file is None:
            _loaded.clear()
        else:
            _loaded.pop(_key(model_file), None)
