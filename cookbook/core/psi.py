"""Population Stability Index: how far a sample's distribution is from the training one.

Shared by the service's online drift window and the offline ``utilscli.py drift`` check,
so that both read the same bins and thresholds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

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


def drift_verdict(psi: float) -> str:
    """Return "ok", "warn" or "alert" for a PSI value (thresholds 0.1 and 0.25)."""
    if psi < PSI_WARN:
        return "ok"
    return "warn" if psi < PSI_ALERT else "alert"


def worst_verdict(verdicts: Sequence[str]) -> str:
    """Return the most severe of *verdicts*."""
    return max(verdicts, key=VERDICTS.index, default="ok")
