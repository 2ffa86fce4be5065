"""Prediction intervals: the split-conformal band stored in ``model.json``, in plain Python.

Training (``cookbook.lifecycle.conformal``) stores ``metadata["interval"]``: a half-width
``q`` such that about ``coverage`` of held-out rows lie within ``q`` of the prediction.
Every answer then carries ``{"low": ŷ-q, "high": ŷ+q, "coverage": ...}``, rounded like
the answer itself. A ``model.json`` without the key (older models) answers without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cookbook.core.answers import height_human, round_half_up, round_tenth
from cookbook.core.errors import ModelError
from cookbook.core.schema import HEIGHT_ANSWER, Schema

METHOD = "split-conformal"


@dataclass(frozen=True)
class Interval:
    """A symmetric band of ``half_width`` around every prediction, covering ``coverage``."""

    half_width: float
    coverage: float
    method: str = METHOD

    @classmethod
    def of_metadata(cls, metadata: Mapping[str, Any]) -> Interval | None:
        """Return the interval stored in *metadata*, or None when it has none."""
        stored = metadata.get("interval")
        if not stored:
            return None
        try:
            half_width, coverage = float(stored["half_width"]), float(stored["coverage"])
        except (KeyError, TypeError, ValueError):
            raise ModelError("model.json's interval is malformed: retrain.") from None
        if not (math.isfinite(half_width) and half_width >= 0 and 0 < coverage < 1):
            raise ModelError("model.json's interval is malformed: retrain.")
        return cls(half_width, coverage, str(stored.get("method", METHOD)))


def interval_writer(schema: Schema, interval: Interval) -> Callable[[float], dict[str, Any]]:
    """Return the function that turns a predicted value into its answer's ``interval``."""
    half_width, coverage = interval.half_width, interval.coverage
    if schema.answer_format == HEIGHT_ANSWER:

        def height_interval(value: float) -> dict[str, Any]:
            low, high = value - half_width, value + half_width
            return {
                "low": round_tenth(low),
                "high": round_tenth(high),
                "coverage": coverage,
                "low_human_readable": height_human(low),
                "high_human_readable": height_human(high),
            }

        return height_interval
    digits = schema.answer_digits

    def value_interval(value: float) -> dict[str, Any]:
        return {
            "low": round_half_up(value - half_width, digits),
            "high": round_half_up(value + half_width, digits),
            "coverage": coverage,
        }

    return value_interval
