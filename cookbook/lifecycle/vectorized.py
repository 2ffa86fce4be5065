"""Predict whole columns at once with numpy: batch scoring, evaluation and the gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cookbook.core.linear import ClassifierForm, LinearForm
from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature


def predict_frame(predictor: Predictor, frame: Any):
    """Return predictions (a float64 numpy array) for a frame holding the model's features.

    A folded model is computed column by column; any other model goes through its
    predictor's ``predict_frame`` (its ONNX session, or its unpickled estimator).
    """
    import numpy as np

    linear = predictor.linear
    if linear is None:
        import pandas as pd

        table = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(dict(frame))
        columns = list(predictor.schema.feature_names)
        return np.asarray(predictor.predict_frame(table[columns]), dtype=np.float64)
    return evaluate_frame(linear, frame)


def evaluate_frame(linear: LinearForm | ClassifierForm, frame: Any):
    """Return *linear*'s values (a new float64 array) for a frame or a mapping of columns;
    a classifier's form gives its probabilities, one column per class."""
    import numpy as np
    import pandas as pd

    if isinstance(linear, ClassifierForm):
        logits = np.column_stack([evaluate_frame(form, frame) for form in linear.logits])
        return probabilities_of_logits(logits, linear.link)

    def number_column(name: str):
        column = frame[name]
        column = column.to_numpy(dtype=np.float64) if hasattr(column, "to_numpy") else column
        return np.asarray(column, dtype=np.float64)

    def offset_column(name: str, table: Mapping[str, float]):
        return pd.Series(frame[name]).map(table).to_numpy(dtype=np.float64)

    return linear.evaluate_columns(number_column, offset_column)


def probabilities_of_logits(logits: Any, link: str):
    """Return the probabilities (rows × classes) of logits: one column (logistic) or one per
    class (softmax), computed as ``cookbook.core.classes`` computes one row's."""
    import numpy as np

    from cookbook.core.classes import LOGISTIC

    logits = np.asarray(logits, dtype=np.float64)
    if link == LOGISTIC:
        positive = np.empty(len(logits))
        z = logits[:, 0]
        ahead = z >= 0
        positive[ahead] = 1.0 / (1.0 + np.exp(-z[ahead]))
        exp = np.exp(z[~ahead])
        positive[~ahead] = exp / (1.0 + exp)
        return np.column_stack([1.0 - positive, positive])
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


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
        outside |= feature.outside_training(np.asarray(frame[feature.name], dtype=np.float64))
    answers = predictor.write_answer(predicted)  # the API's own writer, given the whole column
    # Its text fields come back as lists (the core has no numpy): object arrays here.
    return {
        name: column if hasattr(column, "dtype") else np.array(column, dtype=object)
        for name, column in answers.items()
    }, outside
