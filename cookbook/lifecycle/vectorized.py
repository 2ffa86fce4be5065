"""Predict whole columns at once with numpy: batch scoring, evaluation and the gate."""

from __future__ import annotations

from typing import Any

from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature


def predict_frame(predictor: Predictor, frame: Any):
    """Return predictions (a float64 numpy array) for a frame holding the model's features.

    A folded model is computed column by column; any other model goes through its
    unpickled estimator's ``predict``.
    """
    import numpy as np

    linear = predictor.linear
    if linear is None:
        import pandas as pd

        table = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(dict(frame))
        columns = list(predictor.schema.feature_names)
        return np.asarray(predictor.estimator.predict(table[columns]), dtype=np.float64)
    rows = len(frame) if hasattr(frame, "columns") else len(next(iter(frame.values())))
    values = None
    # In place, one array: a million rows cost two passes over memory, not five.
    for name, coefficient in linear.coefficients.items():
        column = frame[name]
        column = column.to_numpy(dtype=np.float64) if hasattr(column, "to_numpy") else column
        term = np.multiply(np.asarray(column, dtype=np.float64), coefficient)
        if values is None:
            values = term
        else:
            values += term
    if values is None:
        values = np.zeros(rows, dtype=np.float64)
    values += linear.intercept
    for name, table in linear.offsets.items():
        import pandas as pd

        values += pd.Series(frame[name]).map(table).to_numpy(dtype=np.float64)
    return values


def accepted_numbers(feature: NumberFeature, values: Any):
    """Return a boolean mask of the *values* that ``validate_number`` would accept."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    accepted = np.isfinite(values)
    bounds = feature.bounds
    if bounds.minimum is not None:
        low = bounds.minimum
        accepted &= values > low if bounds.exclusive_minimum else values >= low
    if bounds.maximum is not None:
        high = bounds.maximum
        accepted &= values < high if bounds.exclusive_maximum else values <= high
    return accepted
