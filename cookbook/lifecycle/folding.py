"""Fold a fitted linear model into an intercept, coefficients and category offsets.

The folded form is proven against the estimator's own ``predict`` on a grid of rows
that spans every number feature's range and every category, to ``FOLD_TOLERANCE``
relative error; a model that is not linear in its features is simply not folded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cookbook.core.linear import ClassifierForm, LinearForm
from cookbook.core.schema import NumberFeature, Schema
from cookbook.lifecycle.vectorized import evaluate_frame

# The folded form must reproduce the estimator to this relative error.
FOLD_TOLERANCE = 1e-9
CHECK_ROWS = 2000


def feature_grid(feature: NumberFeature) -> tuple[float, float]:
    """Return the span a number feature is checked over: its bounds, or its training range
    widened by its own width on each side."""
    low, high = feature.training_range
    span = (high - low) or 1.0
    bounds = feature.bounds
    grid_low = bounds.minimum if bounds.minimum is not None else low - span
    grid_high = bounds.maximum if bounds.maximum is not None else high + span
    if bounds.minimum is not None and bounds.exclusive_minimum:
        grid_low += min(1.0, (grid_high - grid_low) / 1000)
    if bounds.maximum is not None and bounds.exclusive_maximum:
        grid_high -= min(1.0, (grid_high - grid_low) / 1000)
    return float(grid_low), float(grid_high)


def fold_linear(estimator: Any, schema: Schema) -> LinearForm | None:
    """Return *estimator*'s folded form if it is linear in *schema*'s features, else None."""
    return fold_column(estimator.predict, schema)


def fold_column(function: Any, schema: Schema) -> LinearForm | None:
    """Return the folded form of *function* (a frame of *schema*'s features to one value per
    row) if it is linear in the features, else None."""
    import numpy as np
    import pandas as pd

    names = schema.feature_names
    grids = {f.name: feature_grid(f) for f in schema.numeric}
    base: dict[str, Any] = {name: (low + high) / 2 for name, (low, high) in grids.items()}
    base.update({f.name: f.categories[0] for f in schema.categorical})

    def predict(rows: list[dict[str, Any]]) -> np.ndarray:
        frame = pd.DataFrame(rows, columns=list(names))
        return np.asarray(function(frame), dtype=np.float64).reshape(-1)

    probes = [dict(base)]
    for name, (low, high) in grids.items():
        probes += [{**base, name: low}, {**base, name: high}]
    for feature in schema.categorical:
        probes += [{**base, feature.name: category} for category in feature.categories]
    try:
        values = predict(probes).tolist()
    except Exception:  # e.g. an imported model that refuses values beyond its data's range
        return None  # not linear as far as anyone can tell: served by its own predict
    reference, position = values[0], 1
    coefficients = {}
    for name, (low, high) in grids.items():
        coefficients[name] = (values[position + 1] - values[position]) / (high - low)
        position += 2
    offsets = {}
    for feature in schema.categorical:
        count = len(feature.categories)
        offsets[feature.name] = {
            category: value - reference
            for category, value in zip(
                feature.categories, values[position : position + count], strict=True
            )
        }
        position += count
    intercept = reference - sum(coefficients[name] * base[name] for name in grids)

    # Check the fold on random rows across the whole grid.
    rng = np.random.default_rng(0)
    check = pd.DataFrame(
        {
            f.name: rng.uniform(*grids[f.name], CHECK_ROWS)
            if isinstance(f, NumberFeature)
            else rng.choice(np.array(f.categories, dtype=object), CHECK_ROWS)
            for f in schema.features
        },
        columns=list(names),
    )
    try:
        expected = np.asarray(function(check), dtype=np.float64).reshape(-1)
    except Exception:
        return None
    form = LinearForm(float(intercept), coefficients, offsets)
    folded = evaluate_frame(form, check)
    error = float(np.max(np.abs(folded - expected) / np.maximum(np.abs(expected), 1e-300)))
    if not np.isfinite(error) or error > FOLD_TOLERANCE:
        return None
    return dataclasses.replace(form, max_relative_error=error)


def fold_classifier(estimator: Any, schema: Schema) -> ClassifierForm | None:
    """Return a linear classifier's logits folded (``decision_function``: one column for a
    binary model, one per class otherwise) and its link, or None if it is not linear."""
    import numpy as np

    from cookbook.core.classes import link_of

    if not hasattr(estimator, "decision_function"):
        return None
    try:
        logits = np.asarray(estimator.decision_function(_probe_frame(schema)))
    except Exception:  # a pipeline whose last step has none: not a linear classifier
        return None
    columns = 1 if logits.ndim == 1 else logits.shape[1]
    forms = []
    for column in range(columns):

        def logit(frame: Any, column: int = column) -> Any:
            values = np.asarray(estimator.decision_function(frame), dtype=np.float64)
            return values if values.ndim == 1 else values[:, column]

        form = fold_column(logit, schema)
        if form is None:
            return None
        forms.append(form)
    link = link_of(schema.target.task)
    if (columns == 1) != (link == "logistic"):
        return None
    error = max(form.max_relative_error for form in forms)
    return ClassifierForm(tuple(forms), link, error)


def _probe_frame(schema: Schema) -> Any:
    import pandas as pd

    row = {f.name: (f.mean if isinstance(f, NumberFeature) else f.categories[0])
           for f in schema.features}  # fmt: skip
    return pd.DataFrame([row], columns=list(schema.feature_names))
