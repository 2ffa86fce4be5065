"""Save a trained model pair atomically, and load any verified pair as a Predictor.

A folded model is served from its plain numbers (``cookbook.core.loading``); any other
is unpickled here, and only after its sha256 matched ``model.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.errors import ModelError
from cookbook.core.files import (
    fsync_dir,
    fsync_file,
    sha256_file,
    temporary_beside,
    write_synced,
)
from cookbook.core.layout import metadata_path, version_of
from cookbook.core.loading import (
    check_sklearn_version,
    folded_predictor,
    linear_form_of,
    schema_of,
    verified_metadata,
)
from cookbook.core.model_cache import cached_predictor, forget_loaded_models
from cookbook.core.prediction import Predictor, Row
from cookbook.core.settings import model_path


class EstimatorPredictor(Predictor):
    """A model served by its unpickled estimator's ``predict`` (one that cannot be folded)."""

    def __init__(self, metadata: Mapping[str, Any], path: Path, estimator: Any) -> None:
        super().__init__(metadata, path, schema_of(metadata))
        self.estimator = estimator

    def predict_rows(self, rows: Sequence[Row]) -> list[float]:
        """Return the estimator's predictions for validated rows, in order."""
        import pandas as pd

        frame = pd.DataFrame(list(rows), columns=list(self.schema.feature_names))
        return [float(value) for value in self.estimator.predict(frame)]


def load_predictor(model_file: Path | str | None = None) -> Predictor:
    """Verify the model pair at *model_file* (default ``model_path()``) and return a Predictor.

    The joblib file's sha256 is checked against ``model.json`` before anything is
    unpickled. A model with a folded form predicts from it without unpickling, whatever
    scikit-learn is installed.
    """
    path = Path(model_file) if model_file is not None else model_path()
    metadata = verified_metadata(path)
    predictor = folded_predictor(metadata, path)
    if predictor is not None:
        return predictor
    return EstimatorPredictor(metadata, path, unpickle_verified(path, metadata))


def load_estimator(model_file: Path | str | None = None) -> Any:
    """Return the fitted estimator at *model_file* (default ``model_path()``), verified first."""
    path = Path(model_file) if model_file is not None else model_path()
    return unpickle_verified(path, verified_metadata(path))


def unpickle_verified(path: Path, metadata: Mapping[str, Any]) -> Any:
    """Unpickle a joblib file whose sha256 was already verified, or raise ``ModelError``.

    Refused when the pickle was made by another scikit-learn minor: it may load and
    predict differently. A folded model never comes here, so that check never blocks it.
    """
    import joblib

    check_sklearn_version(metadata)
    try:
        return joblib.load(path)
    except Exception as exc:  # a verified file that still fails to load: say so in one line
        raise ModelError(f"Model file {path} could not be loaded ({exc}): retrain.") from None


def default_predictor() -> Predictor:
    """Return the Predictor for ``model_path()``, loaded once and reused."""
    return cached_predictor(model_path(), load_predictor)


def save_model(
    estimator: Any, metadata: dict[str, Any], model_file: Path | str, *, rows: Any = None
) -> dict:
    """Write *estimator* and its metadata beside it, each atomically; return the metadata.

    The model's version and sha256 are filled in from the bytes written. The joblib
    file is renamed into place first and ``model.json`` last, so readers that verify
    the pair see either the old pair or the new one, or refuse a mismatch.

    A folded form in *metadata* is served instead of the estimator, so it must give the
    estimator's own predictions on *rows* (the model's features; required with a folded
    form), else ``ModelError`` and nothing is written.
    """
    import joblib

    if metadata.get("folded"):
        check_folded(estimator, metadata, rows)
    destination = Path(model_file)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged_model = temporary_beside(destination)
    staged_meta = temporary_beside(metadata_path(destination))
    try:
        joblib.dump(estimator, staged_model)
        digest = sha256_file(staged_model)
        metadata = {
            "model_version": version_of(digest),
            "model_file": destination.name,
            "model_sha256": digest,
            **metadata,
        }
        write_synced(staged_meta, (json.dumps(metadata, indent=2) + "\n").encode("utf-8"))
        fsync_file(staged_model)
        install_pair(staged_model, staged_meta, destination)
        forget_loaded_models(destination)
    finally:
        staged_model.unlink(missing_ok=True)
        staged_meta.unlink(missing_ok=True)
    return metadata


def check_folded(estimator: Any, metadata: dict[str, Any], rows: Any) -> None:
    """Raise ``ModelError`` unless the folded form predicts *rows* as *estimator* does."""
    import numpy as np

    from cookbook.lifecycle.folding import FOLD_TOLERANCE
    from cookbook.lifecycle.vectorized import evaluate_frame

    if rows is None or len(rows) == 0:
        raise ModelError("A folded form is saved only with rows to check it against.")
    names = list(schema_of(metadata).feature_names)
    expected = np.asarray(estimator.predict(rows[names]), dtype=np.float64).reshape(-1)
    folded = evaluate_frame(linear_form_of(metadata), rows[names])
    scale = max(float(np.max(np.abs(expected))), 1.0)
    if not np.allclose(folded, expected, rtol=FOLD_TOLERANCE, atol=FOLD_TOLERANCE * scale):
        worst = float(np.max(np.abs(folded - expected)))
        raise ModelError(
            f"The folded form does not reproduce the estimator on the data (off by up to "
            f"{worst:.3g}): refusing to save numbers that are not the model's own."
        )


def install_pair(staged_model: Path, staged_meta: Path, model_file: Path) -> None:
    """Rename a synced, staged joblib file and its metadata into place as *model_file*'s pair.

    The joblib file goes first and ``model.json`` last: a crash in between leaves the
    new joblib beside the old metadata, which readers refuse (or recover from the
    registry), never a half-written file. The staged files must lie beside *model_file*.
    The caller forgets the model it replaced (``forget_loaded_models``).
    """
    os.replace(staged_model, model_file)
    os.replace(staged_meta, metadata_path(model_file))
    fsync_dir(Path(model_file).parent)
