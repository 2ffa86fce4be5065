"""The page's "why this answer": a prediction's explanation as one bar per feature.

The bars are sorted by the size of their contribution (the schema's order on a tie), each
signed: what a feature adds to the base (positive) or takes from it (negative), in the
target's unit for a regression, in the answered class's log-odds (a multiclass model's:
its logit; a random forest's: its probability) for a classifier. ``static/page.js`` draws
the same bars from ``POST /predict``'s answer by the same rules; the server draws them for
the form posted without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cookbook.core.explained import BASE, CONTRIBUTIONS, EXPLANATION_FIELD
from cookbook.core.explanations import explained_quantity
from cookbook.core.schema import Schema


def explained_as(schema: Schema, metadata: Mapping[str, Any]) -> str:
    """Return what a classifier's contributions are measured in (``log-odds``, ``logit`` or
    a random forest's ``probability`` of the answered class), or ``""`` for a regression's
    (its target's unit)."""
    return explained_quantity(schema, metadata) or ""


def unit_words(schema: Schema) -> str:
    """Return a regression's unit as a sentence names it ("inches"), else its target's name."""
    target = schema.target
    return target.unit_name or target.unit or target.name


def signed(value: float) -> str:
    """Return a contribution as the page writes it, to two decimals with its sign:
    ``+0.23``, ``-1.50`` (``static/page.js``'s ``signed`` writes the same)."""
    return f"{'-' if value < 0 else '+'}{abs(value):.2f}"


def why_this_answer(
    schema: Schema, metadata: Mapping[str, Any], prediction: Mapping[str, Any] | None
) -> dict | None:
    """Return the bars and the sentence of *prediction*'s explanation, or None without one."""
    explanation = (prediction or {}).get(EXPLANATION_FIELD)
    if not explanation:
        return None
    contributions = explanation[CONTRIBUTIONS]
    ordered = sorted(schema.feature_names, key=lambda name: -abs(contributions[name]))
    largest = max((abs(contributions[name]) for name in ordered), default=0.0) or 1.0
    kind = explained_as(schema, metadata)
    scale = f"the {kind} of {prediction.get('label')}" if kind else unit_words(schema)
    return {
        "base": f"Base {explanation[BASE]:.2f}: the model's answer at the training means. "
        f"Each bar is what a feature adds to it or takes from it, in {scale}.",
        "bars": [
            {
                "feature": name,
                "sign": "negative" if contributions[name] < 0 else "positive",
                "size": abs(contributions[name]) / largest,
                "text": signed(contributions[name]),
            }
            for name in ordered
        ],
    }
