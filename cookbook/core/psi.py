"""Population Stability Index: how far a sample's distribution is from the training one.

Shared by the service's online drift window and the offline ``utilscli.py drift`` check,
so that both read the same bins and thresholds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any

# The industry's usual reading of PSI.
PSI_WARN = 0.1
PSI_ALERT = 0.25
# An empty bin would make PSI infinite; treat it as this small share instead.
PSI_FLOOR = 1e-4
VERDICTS = ("ok", "warn", "alert")


def bin_index(value: float, edges: Sequence[float]) -> int:
    """Return the histogram bin of *value*; the outer bins take everything beyond them."""
    index = bisect.bisect_right(edges, value) - 1
    return min(max(index, 0), len(edges) - 2)


def psi_from_counts(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Return the Population Stability Index of *actual* bin counts against *expected*."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return 0.0
    psi = 0.0
    for want, got in zip(expected, actual, strict=True):
        p = max(want / expected_total, PSI_FLOOR)
        q = max(got / actual_total, PSI_FLOOR)
        psi += (q - p) * math.log(q / p)
    return psi


def expected_class_counts(metadata: Mapping[str, Any],
                          classes: Sequence[str]) -> list[float] | None:  # fmt: skip
    """Return how many of its scored rows (held out at training, or given at import) a
    classifier answered with each of *classes*: the column sums of ``model.json``'s
    ``diagnostics.confusion`` (true classes by row, answered ones by column, in the order of
    *classes*); None for a model without it."""
    confusion = (metadata.get("diagnostics") or {}).get("confusion")
    if not isinstance(confusion, list) or not confusion:
        return None
    if any(not isinstance(row, list) or len(row) != len(classes) for row in confusion):
        return None
    return [float(sum(row[column] for row in confusion)) for column in range(len(classes))]


def drift_verdict(psi: float) -> str:
    """Return "ok", "warn" or "alert" for a PSI value (thresholds 0.1 and 0.25)."""
    if psi < PSI_WARN:
        return "ok"
    return "warn" if psi < PSI_ALERT else "alert"


def worst_verdict(verdicts: Sequence[str]) -> str:
    """Return the most severe of *verdicts*."""
    return max(verdicts, key=VERDICTS.index, default="ok")
