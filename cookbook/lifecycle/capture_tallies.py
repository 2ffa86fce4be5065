"""Running tallies of served quality, kept as traffic and feedback arrive.

``/quality``, ``/rollout`` and the quality gauges of ``/metrics`` answer from sums, never
from the captured records: the records of a day can be a million, and decoding them took
seconds on the worker that also answers predictions. Each label adds its errors to its
minute's quality tally (a classifier's row is scored by ``cookbook.lifecycle.class_tallies``,
whose bins are hourly); each row a shadow scores adds its distance from the champion's
answer to its minute's rollout tally and to an hourly histogram (the 95th percentile is
read from it, within half a bin: ``BIN_RATIO``). A summary then sums at most one row per
minute of the window and model version, whatever the traffic.

A classifier's distance from the champion is the mean over classes of the absolute
differences of their probabilities (for a binary model, the positive class's difference),
and the shadow's rows also count whether both models answered the same label (each at
its own threshold).

The store (``cookbook.lifecycle.capture_feedback``) keeps the tallies in tables of their own
and adds to them with upserts; this module says what is added and how sums become figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cookbook.lifecycle.class_tallies import ClassModel, RowScore, class_figures

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


def prediction_difference(champion: Any, shadow: Any) -> float:
    """Return how far apart two models answered a row: |shadow - champion| for numbers; for
    a classifier's probabilities (in one class order), the mean over classes of their
    absolute differences."""
    if isinstance(champion, int | float):
        return abs(shadow - champion)
    return sum(abs(s - c) for c, s in zip(champion, shadow, strict=True)) / len(champion)


# ----------------------------------------------------------------------- quality


@dataclass
class QualitySums:
    """What labels add up to, for one model version and role: a regression's errors, or a
    classifier's scores (``class_tallies.RowScore``)."""

    labelled: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0
    error: float = 0.0  # predicted minus true
    with_interval: int = 0
    inside: int = 0
    log_loss: float = 0.0
    brier: float = 0.0
    correct: int = 0
    with_set: int = 0
    inside_set: int = 0

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

    def add_class(self, score: RowScore) -> None:
        """Add one labelled row of a classifier."""
        self.labelled += 1
        self.log_loss += score.log_loss
        self.brier += score.brier
        self.correct += score.correct
        if score.in_set is not None:
            self.with_set += 1
            self.inside_set += score.in_set

    def values(self) -> tuple[float, ...]:
        """Return the sums in the store's column order (``QUALITY_COLUMNS``)."""
        return tuple(getattr(self, name) for name in QUALITY_COLUMNS)


QUALITY_COLUMNS = ("labelled", "abs_error", "squared_error", "error", "with_interval", "inside",
                   "log_loss", "brier", "correct", "with_set", "inside_set")  # fmt: skip


def quality_report(rows: Iterable[tuple[str, str, *tuple[Any, ...]]],
                   bins: Iterable[tuple[str, str, int, Any, Any, Any]] = (),
                   models: Mapping[str, ClassModel] | None = None
                   ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Return, per model version, the figures of summed ``(version, role, *sums)`` rows:
    a regression's, or a classifier's (the versions in *models*, with their summed
    ``(version, kind, bin, count, hits, confidence)`` *bins*)."""
    models = models or {}
    by_version: dict[str, tuple[set[str], QualitySums]] = {}
    for version, role, *sums in rows:
        roles, total = by_version.setdefault(version, (set(), QualitySums()))
        roles.add(role)
        # float(): PostgreSQL sums integers as exact decimals.
        for name, value in zip(QUALITY_COLUMNS, sums, strict=True):
            setattr(total, name, getattr(total, name) + float(value or 0))
    class_bins: dict[str, dict[tuple[str, int], tuple[float, float, float]]] = {}
    for version, kind, bin_index, *values in bins:
        class_bins.setdefault(version, {})[(kind, int(bin_index))] = tuple(
            float(value or 0) for value in values)  # fmt: skip
    report = {}
    for version, (roles, total) in by_version.items():
        n = total.labelled
        if not n:
            continue
        if version in models:
            sums = {name: getattr(total, name) for name in QUALITY_COLUMNS}
            report[version] = {"roles": sorted(roles), **class_figures(
                n, sums, class_bins.get(version, {}), models[version])}  # fmt: skip
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
    agreed: int = 0  # a classifier's rows both models answered with the same label
    champion_log_loss: float = 0.0
    shadow_log_loss: float = 0.0
    champion_correct: int = 0
    shadow_correct: int = 0

    def values(self) -> tuple[float, ...]:
        """Return the sums in the store's column order (``ROLLOUT_COLUMNS``)."""
        return tuple(getattr(self, name) for name in ROLLOUT_COLUMNS)


ROLLOUT_COLUMNS = ("scored", "abs_difference", "beyond", "labelled", "champion_abs_error",
                   "shadow_abs_error", "agreed", "champion_log_loss", "shadow_log_loss",
                   "champion_correct", "shadow_correct")  # fmt: skip


@dataclass
class RolloutTally:
    """Shadow scores to add to the store: sums per (minute, shadow version), and bin counts
    per (hour, shadow version, bin)."""

    sums: dict[tuple[int, str], RolloutSums] = field(default_factory=dict)
    bins: dict[tuple[int, str, int], int] = field(default_factory=dict)

    def add_scores(self, ts: float, shadow_version: str, differences: Iterable[float],
                   tolerance: float, agreed: Iterable[bool] | None = None) -> None:  # fmt: skip
        """Add the rows a shadow scored at *ts*: each row's ``prediction_difference`` from
        the champion and, for a classifier, whether both answered the same label."""
        sums = self.sums.setdefault((minute_of(ts), shadow_version), RolloutSums())
        hour = hour_of(ts)
        for difference in differences:
            sums.scored += 1
            sums.abs_difference += difference
            sums.beyond += difference > tolerance
            key = (hour, shadow_version, bin_of(difference))
            self.bins[key] = self.bins.get(key, 0) + 1
        if agreed is not None:
            sums.agreed += sum(agreed)

    def add_label(self, ts: float, shadow_version: str, champion: float, shadow: float,
                  actual: float) -> None:  # fmt: skip
        """Add a true value for a row both models scored at *ts*."""
        sums = self.sums.setdefault((minute_of(ts), shadow_version), RolloutSums())
        sums.labelled += 1
        sums.champion_abs_error += abs(champion - actual)
        sums.shadow_abs_error += abs(shadow - actual)

    def add_class_label(self, ts: float, shadow_version: str, champion: RowScore,
                        shadow: RowScore) -> None:  # fmt: skip
        """Add a true label for a row both classifiers scored at *ts*: their scores."""
        sums = self.sums.setdefault((minute_of(ts), shadow_version), RolloutSums())
        sums.labelled += 1
        sums.champion_log_loss += champion.log_loss
        sums.shadow_log_loss += shadow.log_loss
        sums.champion_correct += champion.correct
        sums.shadow_correct += shadow.correct

    def __bool__(self) -> bool:
        return bool(self.sums or self.bins)


def rollout_report(sums: tuple[Any, ...] | None, bins: Mapping[int, int], tolerance: float,
                   classifier: bool = False) -> dict[str, Any]:  # fmt: skip
    """Return the shadow's figures from its summed ``ROLLOUT_COLUMNS`` and bin counts: both
    models' MAE on the labelled rows, or a *classifier*'s label agreement, log loss and
    accuracy."""
    total = RolloutSums(*(float(value or 0) for value in sums)) if sums else RolloutSums()
    n = int(total.scored)
    labelled = int(total.labelled)

    def mean(value: float, rows: int) -> float | None:
        return finite_or_none(value / rows) if rows else None

    report = {
        "n": n,
        "mean_abs_difference": mean(total.abs_difference, n),
        "p95_abs_difference": percentile(bins, 0.95),
        "share_beyond_tolerance": mean(total.beyond, n),
        "tolerance": tolerance,
    }
    if classifier:
        return report | {
            "label_agreement": mean(total.agreed, n),
            "labelled": labelled,
            "champion_log_loss": mean(total.champion_log_loss, labelled),
            "shadow_log_loss": mean(total.shadow_log_loss, labelled),
            "champion_accuracy": mean(total.champion_correct, labelled),
            "shadow_accuracy": mean(total.shadow_correct, labelled),
        }
    return report | {
        "labelled": labelled,
        "champion_mae": mean(total.champion_abs_error, labelled),
        "shadow_mae": mean(total.shadow_abs_error, labelled),
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
