"""Predict whole columns at once with numpy: batch scoring, evaluation and the gate."""

from __future__ import annotations

from typing import Any

from cookbook.core.answers import height_human
from cookbook.core.prediction import Predictor
from cookbook.core.schema import HEIGHT_ANSWER, NumberFeature


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


def answer_columns(predictor: Predictor, frame: Any) -> tuple[dict[str, Any], Any]:
    """Return the answer fields ``POST /predict`` gives for valid rows, as columns, and a mask.

    *frame* holds the model's features (a DataFrame or a mapping of arrays). The mask is
    true where the API adds its out-of-training-range warning (batch output's
    ``extrapolation``). The answer's ``interval`` is not among the columns.
    """
    import numpy as np

    schema = predictor.schema
    rows = len(frame) if hasattr(frame, "columns") else len(next(iter(frame.values())))
    # An estimator refuses zero rows; a partition of rejects only still gets its columns.
    predicted = predict_frame(predictor, frame) if rows else np.empty(0)
    outside = np.zeros(rows, dtype=bool)
    for feature in schema.numeric:
        low, high = feature.training_range
        column = np.asarray(frame[feature.name], dtype=np.float64)
        outside |= (column < low) | (column > high)
    if schema.answer_format != HEIGHT_ANSWER:
        return {schema.target.name: np.round(predicted, schema.answer_digits)}, outside
    inches = np.floor(predicted + 0.5).astype(np.int64)  # height_human's rounding, bit for bit
    answers = {
        "height_inches": np.floor(predicted * 10 + 0.5) / 10,  # round_tenth's, bit for bit
        "height_human_readable": human_heights(inches),
    }
    return answers, outside


def human_heights(inches: Any):
    """Return ``height_human`` of each whole inch in *inches*, as an object array.

    A chunk's heights span a few dozen inches, so each text is made once and looked up.
    """
    import numpy as np

    if not len(inches):
        return np.empty(0, dtype=object)
    low, high = int(inches.min()), int(inches.max())
    if high - low > len(inches):  # a spread too wide for a table: one by one
        return np.array([height_human(i) for i in inches.tolist()], dtype=object)
    table = np.array([height_human(i) for i in range(low, high + 1)], dtype=object)
    return table[inches - low]
