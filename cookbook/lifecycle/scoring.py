"""Score predictions against true values: R², RMSE and MAE, in the target's unit."""

from __future__ import annotations

import math
from typing import Any

from cookbook.core.prediction import Predictor
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
    r2, rmse and mae, or a classifier's (``class_scoring.score_classes``)."""
    target = predictor.schema.target
    if target.is_classification:
        from cookbook.lifecycle.class_scoring import score_classes

        labels = frame[target.name].astype(str).tolist()
        return score_classes(target, labels, predict_frame(predictor, frame))
    actual = frame[target.name].to_numpy(dtype="float64")
    return score(actual, predict_frame(predictor, frame))
