"""Predict whole columns at once with numpy: batch scoring, evaluation and the gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cookbook.core.linear import ClassifierForm, LinearForm
from cookbook.core.prediction import Predictor
from cookbook.core.schema import BINARY, NumberFeature, Schema


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
    class (softmax), the same floats, bit for bit, as ``cookbook.core.classes`` gives a row.

    numpy's own ``exp`` differs from ``math.exp`` in the last bit for some values, so the
    exponentials are ``math.exp``'s; every other step is one IEEE operation done in the
    core's order (a softmax's total is added left to right, as the core adds it).
    """
    import numpy as np

    from cookbook.core.classes import LOGISTIC

    logits = np.asarray(logits, dtype=np.float64)
    if link == LOGISTIC:
        z = logits[:, 0]
        ahead = z >= 0
        exp = exact_exp(-np.abs(z))  # exp(-z) where z >= 0, exp(z) where z < 0
        positive = np.where(ahead, 1.0 / (1.0 + exp), exp / (1.0 + exp))
        return np.column_stack([1.0 - positive, positive])
    exps = exact_exp(logits - logits.max(axis=1, keepdims=True))
    total = exps[:, 0].copy()
    for column in range(1, exps.shape[1]):
        total += exps[:, column]
    return exps / total[:, None]


def exact_exp(values: Any):
    """Return ``math.exp`` of every value of a float64 array, in its shape."""
    import math

    import numpy as np

    flat = np.fromiter(map(math.exp, values.ravel().tolist()), dtype=np.float64, count=values.size)
    return flat.reshape(values.shape)


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
    ``extrapolation``). The columns are ``schema.table_fields()``: a regression's answer
    fields without its ``interval``; a classifier's ``label`` (at the model's own
    threshold) and its probability of each class, unrounded, without its ``set``.
    """
    import numpy as np

    schema = predictor.schema
    rows = len(frame) if hasattr(frame, "columns") else len(next(iter(frame.values())))
    outside = np.zeros(rows, dtype=bool)
    for feature in schema.numeric:
        outside |= feature.outside_training(np.asarray(frame[feature.name], dtype=np.float64))
    if predictor.is_classifier:
        classes = len(schema.target.classes)
        # An estimator refuses zero rows; a partition of rejects only still gets its columns.
        probabilities = predict_frame(predictor, frame) if rows else np.empty((0, classes))
        return class_columns(schema, probabilities), outside
    predicted = predict_frame(predictor, frame) if rows else np.empty(0)
    answers = predictor.write_answer(predicted)  # the API's own writer, given the whole column
    # Its text fields come back as lists (the core has no numpy): object arrays here.
    return {
        name: column if hasattr(column, "dtype") else np.array(column, dtype=object)
        for name, column in answers.items()
    }, outside


def class_columns(schema: Schema, probabilities: Any) -> dict[str, Any]:
    """Return a classifier's answers as columns: each row's label, then one probability
    column per class (``schema.table_fields()``).

    The label follows ``cookbook.core.classes.label_index``'s rule at the model's own
    threshold: a binary model's positive class when its probability is at least the
    threshold, else the most probable class, the first of equal ones (``argmax``'s too).
    """
    import numpy as np

    target = schema.target
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if target.task == BINARY:
        positive = target.positive_index
        chosen = np.where(probabilities[:, positive] >= target.threshold, positive, 1 - positive)
    else:
        chosen = probabilities.argmax(axis=1)
    label, *columns = schema.table_fields()
    answers = {label: np.array(target.classes, dtype=object)[chosen]}
    for index, name in enumerate(columns):
        answers[name] = probabilities[:, index]
    return answers
