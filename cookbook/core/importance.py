"""What the model relies on: each feature's importance from ``model.json``, ranked, and drift
ordered by it.

A model may record, at training or import, ``"importance": {"<feature>": value, ...}`` (in
its schema's feature order) and ``"importance_rows": n``: the mean absolute contribution of
each feature to its predictions on *n* held-out rows (rows given at import for an imported
model), in the target's unit for a regression and in what the classifier's explanations
measure of the answered class (``explanations.explained_quantity``: log-odds, logit, or a
random forest's probability). It is optional: a model saved before it was
recorded, imported without held-out rows, or that cannot explain its answers has none.

Drift reports, online and offline, put each feature's importance and rank beside its PSI and
list the features by concern: a drifting feature that matters is what an operator must see
first. Standard library only, like the rest of the core.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from cookbook.core.errors import ModelError
from cookbook.core.explanations import explained_quantity
from cookbook.core.psi import VERDICTS
from cookbook.core.schema import Schema

IMPORTANCE_FIELD = "importance"
IMPORTANCE_ROWS_FIELD = "importance_rows"


def importance_of(metadata: Mapping[str, Any], schema: Schema) -> dict[str, float] | None:
    """Return each feature's importance in *schema*'s feature order, or None when the model
    records none; raise ``ModelError`` when ``model.json`` records one that is malformed (a
    feature missing, or a value that is not a finite number at least 0)."""
    stored = metadata.get(IMPORTANCE_FIELD)
    if stored is None:
        return None
    if not isinstance(stored, Mapping):
        raise ModelError("model.json's importance is not a mapping of feature to value.")
    values = {}
    for name in schema.feature_names:
        value = stored.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"model.json's importance has no number for {name}.")
        if not math.isfinite(value) or value < 0:
            raise ModelError(f"model.json's importance of {name} is {value}, not a number >= 0.")
        values[name] = float(value)
    return values


def importance_unit(schema: Schema, metadata: Mapping[str, Any]) -> str:
    """Return what an importance of a model is measured in: the target's unit, or what its
    explanations measure of the answered class (``explained_quantity``)."""
    quantity = explained_quantity(schema, metadata)
    if quantity is not None:
        return f"{quantity} of the answered class"
    target = schema.target
    return target.unit_name or target.unit or f"units of {target.name}"


def importance_ranks(importance: Mapping[str, float]) -> dict[str, int]:
    """Return each feature's rank by importance, 1 the largest (ties in the given order)."""
    ordered = sorted(importance, key=lambda name: -importance[name])
    return {name: rank for rank, name in enumerate(ordered, start=1)}


def by_importance(importance: Mapping[str, float]) -> list[tuple[str, float]]:
    """Return the features and their importance, the largest first (ties in the given order)."""
    ranks = importance_ranks(importance)
    return sorted(importance.items(), key=lambda item: ranks[item[0]])


def rank_drift(
    features: Sequence[MutableMapping[str, Any]],
    importance: Mapping[str, float] | None,
    unit: str,
) -> dict[str, Any]:
    """Add ``importance`` and ``importance_rank`` (None without importance) to each feature's
    drift entry in *features* (each with ``feature``, ``psi`` and ``verdict``); return the
    report's own fields: ``features_by_concern`` and ``importance_unit`` (None without).

    By concern: the drifting features (verdict warn or alert) first, the most important
    first, then the others the same way; within one importance (or without any), the worse
    verdict, then the larger PSI, first.
    """
    ranks = importance_ranks(importance) if importance else {}
    for entry in features:
        name = entry["feature"]
        entry["importance"] = importance[name] if importance else None
        entry["importance_rank"] = ranks.get(name)

    def concern(entry: Mapping[str, Any]) -> tuple[bool, float, int, float]:
        weight = entry["importance"] if entry["importance"] is not None else 0.0
        severity = VERDICTS.index(entry["verdict"])
        return (severity == 0, -weight, -severity, -entry["psi"])

    return {
        "features_by_concern": [entry["feature"] for entry in sorted(features, key=concern)],
        "importance_unit": unit if importance else None,
    }


def entries_by_concern(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return a drift report's feature entries in its ``features_by_concern`` order."""
    entries = {entry["feature"]: entry for entry in report["features"]}
    return [entries[name] for name in report["features_by_concern"]]
