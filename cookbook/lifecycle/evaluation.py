"""Score the served model on labelled data: overall, and per value of one categorical column.

A regression is scored by R², RMSE and MAE; a classifier by log loss, Brier score, accuracy,
ROC AUC (binary), expected calibration error and the share of true labels in its
prediction sets (``set_coverage``), the metrics its training recorded.

The column is the one asked for, else the model's first category feature, else the first
column ``column_info`` marks for evaluation (the MLB data's Position) that the data has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.files import sha256_file
from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.column_info import evaluation_groups
from cookbook.lifecycle.model_spec import ModelSpec
from cookbook.lifecycle.scoring import coverage_of, score_predictor
from cookbook.lifecycle.training import load_labelled
from cookbook.lifecycle.vectorized import accepted_numbers


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


def group_column(predictor: Predictor, frame: Any, group_by: str | None = None) -> str | None:
    """Return the column to break an evaluation down by, or None when the data has none."""
    if group_by is not None:
        if group_by not in frame.columns:
            raise DataError(f"The data has no column {group_by!r} to group the evaluation by.")
        return group_by
    candidates = [f.name for f in predictor.schema.categorical] + list(evaluation_groups())
    return next((name for name in candidates if name in frame.columns), None)


def evaluate(served_model: Path, data_file: Path, group_by: str | None = None) -> dict[str, Any]:
    """Return the served model's metrics on labelled rows, overall and per group.

    ``group_by`` names the column (``group_column`` picks one by default); the report's
    ``group_by`` is the column used and ``by_group`` the metrics per value, both None
    when there is no such column.
    """
    predictor = load_predictor(served_model)
    spec = ModelSpec.of_schema(predictor.schema)
    frame, dropped = load_labelled(data_file, spec, what="Data")
    valid = valid_rows(predictor, frame)
    rejected = int(len(frame) - valid.sum())
    frame = frame[valid]
    if frame.empty:
        raise DataError(f"{data_file} has no rows the model accepts to evaluate.")
    column = group_column(predictor, frame, group_by)
    result: dict[str, Any] = {
        "model_version": predictor.version,
        "data": {"file": str(data_file), "sha256": sha256_file(data_file)},
        "rows_missing_values": int(dropped),
        "rows_invalid": rejected,
        "overall": scores(predictor, frame),
        "group_by": column,
        "by_group": None,
    }
    if column is not None:
        groups = frame.groupby(frame[column].astype(str).str.strip(), sort=True)
        result["by_group"] = {str(key): scores(predictor, rows) for key, rows in groups}
    return result


def scores(predictor: Predictor, frame: Any) -> dict[str, Any]:
    """Return the task's metrics of *predictor* on *frame*: a classifier's with its
    ``set_coverage`` (None for a model without prediction sets)."""
    metrics = score_predictor(predictor, frame)
    if predictor.is_classifier:
        metrics["set_coverage"] = coverage_of(predictor, frame)
    return metrics
