"""The global view of a model's explanations: each feature's mean absolute contribution.

Computed when a model is saved (trained or imported) on its held-out rows (an import's: the
labelled rows it is given), with the explainer that serves it (the folded form's, or
TreeSHAP over the stored trees), so the card's and ``/model``'s figures are the per-answer
explanations averaged. A classifier's rows are each explained for the class the model
answers at its own threshold, as ``/predict`` does without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cookbook.core.classes import label_index
from cookbook.core.explanations import Explainer
from cookbook.core.schema import NumberFeature, Schema

# At most this many held-out rows (the first ones): the mean settles long before, and saving
# a model trained on millions of rows must not explain them all.
IMPORTANCE_ROWS = 2000


def validated_rows(frame: Any, schema: Schema) -> list[tuple]:
    """Return a frame's rows as validated rows: floats for numbers, text for categories."""
    columns = [
        [float(v) for v in frame[f.name]]
        if isinstance(f, NumberFeature)
        else [str(v) for v in frame[f.name]]
        for f in schema.features
    ]
    return list(zip(*columns, strict=True))


def feature_importance(
    explainer: Explainer, schema: Schema, frame: Any, outputs: Sequence[Any]
) -> dict[str, Any]:
    """Return ``{"importance": {feature: mean |contribution|}, "importance_rows": n}`` of
    *frame*'s first ``IMPORTANCE_ROWS`` rows, predicted as *outputs* (a classifier's
    probabilities, in the schema's class order); empty without rows."""
    count = min(len(frame), IMPORTANCE_ROWS)
    if count == 0:
        return {}
    rows = validated_rows(frame.iloc[:count], schema)
    if schema.target.is_classification:
        answered = [label_index(schema.target, tuple(p), None) for p in outputs[:count]]
    else:
        answered = [0] * count
    totals = dict.fromkeys(schema.feature_names, 0.0)
    for explanation in explainer.explain_rows(rows, answered):
        for name, contribution in explanation["contributions"].items():
            totals[name] += abs(contribution)
    return {
        "importance": {name: total / count for name, total in totals.items()},
        "importance_rows": count,
    }
