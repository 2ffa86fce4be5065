"""Split-conformal prediction intervals from held-out absolute residuals.

For ``n`` calibration rows with absolute residuals ``|y - ŷ|``, the half-width ``q`` is
the ``ceil((n + 1) · coverage)``-th smallest residual (the largest when that index
exceeds ``n``). If the calibration rows and a new row are exchangeable, ``ŷ ± q``
covers the new row's true value with probability at least ``coverage``.

The cookbook calibrates on the split's held-out rows, the rows its metrics are measured
on, so that the fitted model (and its version) stays exactly what it was: the training
rows are all used for fitting. The coverage measured on those same rows
(``held_out_coverage``) is therefore optimistic by construction (it is at least
``coverage`` whenever ``q`` is one of the residuals); an honest check needs other rows,
such as the gate's golden set when that is not the same rows (``interval_coverage``).
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_COVERAGE = 0.9
MIN_COVERAGE, MAX_COVERAGE = 0.5, 0.99
CALIBRATION = "held-out rows"


def conformal_rank(rows: int, coverage: float) -> int:
    """Return the 1-based rank of the residual that is the conformal quantile."""
    # round() first: (n + 1) · coverage is often a whole number a hair above itself.
    return min(math.ceil(round((rows + 1) * coverage, 9)), rows)


def half_width(residuals: Any, coverage: float) -> float:
    """Return the finite-sample conformal quantile of absolute *residuals*."""
    import numpy as np

    ordered = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    if ordered.size == 0:
        raise ValueError("A conformal interval needs at least one calibration row.")
    return float(ordered[conformal_rank(ordered.size, coverage) - 1])


def interval_coverage(actual: Any, predicted: Any, width: float) -> float | None:
    """Return the share of rows whose true value lies within *width* of the prediction."""
    import numpy as np

    residuals = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(predicted))
    return None if residuals.size == 0 else float(np.mean(residuals <= width))


def calibrate(actual: Any, predicted: Any, coverage: float = DEFAULT_COVERAGE) -> dict[str, Any]:
    """Return ``metadata["interval"]`` calibrated on *actual* against *predicted*."""
    import numpy as np

    if not MIN_COVERAGE <= coverage <= MAX_COVERAGE:
        raise ValueError(
            f"Coverage must be between {MIN_COVERAGE} and {MAX_COVERAGE}, got {coverage!r}."
        )
    residuals = np.asarray(actual, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    width = half_width(residuals, coverage)
    return {
        "method": "split-conformal",
        "coverage": coverage,
        "half_width": width,
        "calibration_rows": int(residuals.size),
        "calibration": CALIBRATION,
        "held_out_coverage": interval_coverage(actual, predicted, width),
    }


def set_quantile(scores: Any, coverage: float) -> float:
    """Return the conformal quantile of classification scores (1 - p(true class))."""
    return half_width(scores, coverage)  # the same rank rule, on non-negative scores


def set_coverage(probabilities: Any, truth: Any, quantile: float) -> float | None:
    """Return the share of rows whose true class is in its set (p(true) >= 1 - quantile)."""
    import numpy as np

    truth = np.asarray(truth)
    if truth.size == 0:
        return None
    true_probability = np.asarray(probabilities)[np.arange(truth.size), truth]
    return float(np.mean(true_probability >= 1.0 - quantile))


def calibrate_sets(
    probabilities: Any, truth: Any, coverage: float = DEFAULT_COVERAGE
) -> dict[str, Any]:
    """Return ``metadata["prediction_set"]`` calibrated on held-out rows: *probabilities*
    (rows × classes) and each row's true class index *truth*."""
    import numpy as np

    if not MIN_COVERAGE <= coverage <= MAX_COVERAGE:
        raise ValueError(
            f"Coverage must be between {MIN_COVERAGE} and {MAX_COVERAGE}, got {coverage!r}."
        )
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth)
    scores = 1.0 - probabilities[np.arange(truth.size), truth]
    quantile = set_quantile(scores, coverage)
    sizes = np.sum(probabilities >= 1.0 - quantile, axis=1)
    return {
        "method": "split-conformal",
        "score": "1 - probability of the true class",
        "coverage": coverage,
        "quantile": quantile,
        "calibration_rows": int(truth.size),
        "calibration": CALIBRATION,
        "held_out_coverage": set_coverage(probabilities, truth, quantile),
        "mean_set_size": float(np.mean(sizes)),
    }
