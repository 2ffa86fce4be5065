"""Running tallies of served quality, kept as traffic and feedback arrive.

``/quality``, ``/rollout`` and the quality gauges of ``/metrics`` answer from sums, never
from the captured records: the records of a day can be a million, and decoding them took
seconds on the worker that also answers predictions. Each label adds its errors to its
minute's quality tally; each row a shadow scores adds its distance from the champion's
answer to its minute's rollout tally and to an hourly histogram (the 95th percentile is
read from it, within half a bin: ``BIN_RATIO``). A summary then sums at most one row per
minute of the window and model version, whatever the traffic.

The store (``cookbook.lifecycle.capture_store``) keeps the tallies in tables of their own
and adds to them with upserts; this module says what is added and how sums become figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MINUTE_SECONDS = 60
HOUR_SECONDS = 3600
# Histogram bins of |shadow - champion| grow by this ratio: a percentile read from them is
# off by at most half a bin, under 5%.
BIN_RATIO = 1.1
# Differences below this are one bin, "no difference" (shown as 0).
SMALLEST_DIFFERENCE = 1e-9
ZERO_BIN = -1


def minute_of(ts: float) -> int:
    """Return the minute (since the epoch) that the epoch seconds *ts* fall in."""
    return math.floor(ts / MINUTE_SECONDS)


def hour_of(ts: float) -> int:
    """Return the hour (since the epoch) that the epoch seconds *ts* fall in."""
    return math.floor(ts / HOUR_SECONDS)


def bin_of(difference: float) -> int:
    """Return the histogram bin of a non-negative *difference*."""
    if difference < SMALLEST_DIFFERENCE:
        return ZERO_BIN
    return math.floor(math.log(difference / SMALLEST_DIFFERENCE) / math.log(BIN_RATIO))


def bin_value(bin_index: int) -> float:
    """Return the value that stands for a bin: its geometric middle (0 for the zero bin)."""
    if bin_index == ZERO_BIN:
        return 0.0
    return SMALLEST_DIFFERENCE * BIN_RATIO ** (bin_index + 0.5)


def finite_or_none(value: float | None) -> float | None:
    """Return *value*, or None where JSON could not carry it (infinite or NaN)."""
    return value if value is not None and math.isfinite(value) else None


# ----------------------------------------------------------------------- quality


@dataclass
class QualitySums:
    """What labels add up to, for one model version and role."""

    labelled: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0
    error: float = 0.0  # predicted minus true
    with_interval: int = 0
    inside: int = 0

    def add(self, predicted: float, actual: float, low: float | None, high: float | None) -> None:
        """Add one labelled prediction."""
        error = predicted - actual
        self.labelled += 1
        self.abs_error += abs(error)
        self.squared_error += error * error
        self.error += error
        if low is not None and high is not None:
            self.with_interval += 1
            self.inside += low <= actual <= high

    def values(self) -> tuple[int, float, float, float, int, int]:
        """Return the sums in the store's column order."""
        return (self.labelled, self.abs_error, self.squared_error, self.error,
                self.with_interval, self.inside)  # fmt: skip


QUALITY_COLUMNS = ("labelled", "abs_error", "squared_error", "error", "with_interval", "inside")


def quality_report(rows: Iterable[tuple[str, str, *tuple[Any, ...]]]) -> dict[str, dict[str, Any]]:
    """Return, per model version, the figures of summed ``(version, role, *sums)`` rows."""
    by_version: dict[str, tuple[set[str], QualitySums]] = {}
    for version, role, *sums in rows:
        roles, total = by_version.setdefault(version, (set(), QualitySums()))
        roles.add(role)
        # float(): PostgreSQL sums integers as exact decimals.
        for name, value in zip(QUALITY_COLUMNS, sums, strict=True):
            setattr(total, name, getattr(total, name) + float(value or 0))
    report = {}
    for version, (roles, total) in by_version.items():
        n = total.labelled
        if not n:
            continue
        report[version] = {
            "roles": sorted(roles),
            "labelled": int(n),
            "mae": finite_or_none(total.abs_error / n),
            "rmse": finite_or_none(math.sqrt(total.squared_error / n)),
            "bias": finite_or_none(total.error / n),  # predicted minus true: > 0 is too high
            "interval_coverage": (
                total.inside / total.with_interval if total.with_interval else None
            ),  # fmt: skip
        }
    return report


# ----------------------------------------------------------------------- rollout


@dataclass
class RolloutSums:
    """What a shadow's scored rows and their labels add up to, in one minute."""

    scored: int = 0
    abs_difference: float = 0.0
    beyond: int = 0  # rows whose difference exceeded the tolerance in force when scored
    labelled: int = 0  # rows both models scored and feedback labelled
    champion_abs_error: float = 0.0
    shadow_abs_error: float = 0.0

    def values(self) -> tuple[int, float, int, int, float, float]:
        """Return the sums in the store's column order."""
        return (self.scored, self.abs_difference, self.beyond, self.labelled,
                self.champion_abs_error, self.shadow_abs_error)  # fmt: skip


ROLLOUT_COLUMNS = ("scored", "abs_difference", "beyond", "labelled", "champion_abs_error",
                   "shadow_abs_error")  # fmt: skip


@dataclass
class RolloutTally:
    """Shadow scores to add to the store: sums per (minute, shadow version), and bin counts
    per (hour, shadow version, bin)."""

    sums: dict[tuple[int, str], RolloutSums] = field(default_factory=dict)
    bins: dict[tuple[int, str, int], int] = field(default_factory=dict)

    def add_scores(self, ts: float, shadow_version: str, champion: Iterable[float],
                   shadow: Iterable[float], tolerance: float) -> None:  # fmt: skip
        """Add the rows a shadow scored at *ts*: the champion's and the shadow's values."""
        sums = self.sums.setdefault((minute_of(ts), shadow_version), RolloutSums())
        hour = hour_of(ts)
        for champion_value, shadow_value in zip(champion, shadow, strict=True):
            difference = abs(shadow_value - champion_value)
            sums.scored += 1
            sums.abs_difference += difference
            sums.beyond += difference > tolerance
            key = (hour, shadow_version, bin_of(difference))
            self.bins[key] = self.bins.get(key, 0) + 1

    def add_label(self, ts: float, shadow_version: str, champion: float, shadow: float,
                  actual: float) -> None:  # fmt: skip
        """Add a true value for a row both models scored at *ts*."""
        sums = self.sums.setdefault((minute_of(ts), shadow_version), RolloutSums())
        sums.labelled += 1
        sums.champion_abs_error += abs(champion - actual)
        sums.shadow_abs_error += abs(shadow - actual)

    def __bool__(self) -> bool:
        return bool(self.sums or self.bins)


def rollout_report(sums: tuple[Any, ...] | None, bins: Mapping[int, int],
                   tolerance: float) -> dict[str, Any]:  # fmt: skip
    """Return the shadow's figures from its summed ``ROLLOUT_COLUMNS`` and bin counts."""
    total = RolloutSums(*(float(value or 0) for value in sums)) if sums else RolloutSums()
    n = int(total.scored)
    labelled = int(total.labelled)
    return {
        "n": n,
        "mean_abs_difference": finite_or_none(total.abs_difference / n) if n else None,
        "p95_abs_difference": percentile(bins, 0.95),
        "share_beyond_tolerance": total.beyond / n if n else None,
        "tolerance": tolerance,
        "labelled": labelled,
        "champion_mae": finite_or_none(total.champion_abs_error / labelled) if labelled else None,
        "shadow_mae": finite_or_none(total.shadow_abs_error / labelled) if labelled else None,
    }


def percentile(bins: Mapping[int, int], share: float) -> float | None:
    """Return the value below which *share* of the binned differences lie (None: no rows)."""
    bins = {int(b): int(count) for b, count in bins.items()}
    n = sum(bins.values())
    if not n:
        return None
    rank = max(1, math.ceil(share * n))
    seen = 0
    for bin_index in sorted(bins):
        seen += bins[bin_index]
        if seen >= rank:
            return bin_value(bin_index)
    return bin_value(max(bins))  # unreachable: the counts add up to n
