"""Score predictions against true values: R², RMSE and MAE in the target's unit, or a
classifier's metrics; and the share of true values an interval or a prediction set holds."""

from __future__ import annotations

import math
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.prediction import Predictor
from cookbook.lifecycle.class_scoring import label_indices, score_classes
from cookbook.lifecycle.conformal import interval_coverage, set_coverage
from cookbook.lifecycle.vectorized import predict_frame


def score(actual: Any, predicted: Any) -> dict[str, float | None]:
    """Return r2, rmse, mae and rows of *predicted* against *actual*; r2 is None below two rows."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rows = int(len(actual))
    if rows == 0:
        return {"r2": None, "rmse": None, "mae": None, "rows": 0}
    return {
        # R² needs a variance to explain: undefined (and warned about) for one row.
        "r2": float(r2_score(actual, predicted)) if rows > 1 else None,
        "rmse": float(math.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "rows": rows,
    }


def score_predictor(predictor: Predictor, frame: Any) -> dict[str, float | None]:
    """Return the task's metrics of *predictor* on a frame with its features and target:
    r2, rmse and mae, or a classifier's (``class_scoring.score_classes``).

    Raise ``DataError`` naming the labels that are not among a classifier's classes.
    """
    target = predictor.schema.target
    if target.is_classification:
        labels = frame[target.name].astype(str).tolist()
        try:
            return score_classes(target, labels, predict_frame(predictor, frame))
        except ValueError as exc:  # a label the model does not know
            raise DataError(f"{target.name}: {exc}.") from None
    actual = frame[target.name].to_numpy(dtype="float64")
    return score(actual, predict_frame(predictor, frame))


def coverage_of(predictor: Predictor, frame: Any) -> float | None:
    """Return the share of *frame*'s rows inside *predictor*'s interval, or a classifier's
    rows whose true class is in its prediction set (None without either)."""
    if predictor.is_classifier:
        if predictor.prediction_set is None:
            return None
        target = predictor.schema.target
        truth = label_indices(target, frame[target.name].astype(str).tolist())
        return set_coverage(
            predict_frame(predictor, frame), truth, predictor.prediction_set.quantile
        )
    if predictor.interval is None:
        return None
    actual = frame[predictor.schema.target.name].to_numpy(dtype="float64")
    return interval_coverage(actual, predict_frame(predictor, frame), predictor.interval.half_width)
