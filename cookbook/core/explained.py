"""What the adapters read from an answer's explanation, whatever model made it.

``Predictor.answer_row`` writes ``{"base", "contributions", "prediction"}`` per row when a
request asks for it (``cookbook.core.explanations``). The contracts that lay it out as
numbers (V2's ``contributions`` tensor, the capture record, the export's columns, the page's
bars) read it here: the contributions in the schema's feature order, by name, so none of
them depends on the order a given explainer happens to build its mapping in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cookbook.core.prediction import Predictor

EXPLANATION_FIELD = "explanation"  # the field each answered row gains
BASE = "base"
CONTRIBUTIONS = "contributions"
EXPLAINED_VALUE = "prediction"  # the unrounded value (a classifier: the answered logit)


def can_explain(predictor: Predictor) -> bool:
    """Return whether *predictor* answers ``"explain": true`` (a folded model today)."""
    return predictor.explainer is not None


def contributions_in_order(explanation: Mapping[str, Any],
                           feature_names: Sequence[str]) -> list[float]:  # fmt: skip
    """Return an explanation's contributions as a list, in *feature_names*' order."""
    contributions = explanation[CONTRIBUTIONS]
    return [contributions[name] for name in feature_names]
