"""Score the served model on labelled data: overall, and by Position when the data has it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.files import sha256_file
from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.scoring import score_predictor
from cookbook.lifecycle.training import ModelSpec, load_labelled
from cookbook.lifecycle.vectorized import accepted_numbers

GROUP_COLUMN = "Position"


def valid_rows(predictor: Predictor, frame: Any):
    """Return a boolean mask of *frame*'s rows whose features the model's schema accepts."""
    import numpy as np

    mask = np.ones(len(frame), dtype=bool)
    for feature in predictor.schema.features:
        column = frame[feature.name]
        if isinstance(feature, NumberFeature):
            accepted = accepted_numbers(feature, column.to_numpy(dtype=np.float64))
        else:
            accepted = column.astype(str).isin(feature.categories).to_numpy()
        mask &= accepted
    return mask


def evaluate(served_model: Path, data_file: Path) -> dict[str, Any]:
    """Return the served model's metrics on labelled rows, overall and by Position."""
    predictor = load_predictor(served_model)
    frame, dropped = load_labelled(data_file, ModelSpec.of_schema(predictor.schema), what="Data")
    valid = valid_rows(predictor, frame)
    rejected = int(len(frame) - valid.sum())
    frame = frame[valid]
    if frame.empty:
        raise DataError(f"{data_file} has no rows the model accepts to evaluate.")
    result: dict[str, Any] = {
        "model_version": predictor.version,
        "data": {"file": str(data_file), "sha256": sha256_file(data_file)},
        "rows_missing_values": int(dropped),
        "rows_invalid": rejected,
        "overall": score_predictor(predictor, frame),
        "by_position": None,
    }
    if GROUP_COLUMN in frame.columns:
        groups = frame.groupby(frame[GROUP_COLUMN].astype(str).str.strip(), sort=True)
        result["by_position"] = {
            str(position): score_predictor(predictor, rows) for position, rows in groups
        }
    return result
