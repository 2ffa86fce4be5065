"""Online input drift: bounded windows of recent inputs, compared with the training data.

Each gunicorn worker keeps its own windows (the workers share one listening socket, so
each sees a random sample of the same traffic). ``GET /drift`` answers for the worker
that serves it; the ``model_input_drift_psi`` gauge exports, per feature, the highest PSI
among the live workers. Number features are binned on the training histogram stored in
the schema, category features by category; both are compared with the core's PSI.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from cookbook.core.psi import (
    PSI_ALERT,
    PSI_WARN,
    bin_index,
    drift_verdict,
    psi_from_counts,
    worst_verdict,
)
from cookbook.core.schema import CategoryFeature, NumberFeature, Schema

WINDOW_ROWS = 1000
# PSI over a handful of rows is noise; below this many, the answer says so.
MIN_ROWS_FOR_VERDICT = 100


class DriftWindow:
    """The last *capacity* values of one feature, kept as bin counts (O(1) per value)."""

    def __init__(self, feature: NumberFeature | CategoryFeature, capacity: int = WINDOW_ROWS):
        self.feature = feature
        self.capacity = capacity
        if isinstance(feature, NumberFeature):
            self.edges = [float(edge) for edge in feature.histogram["edges"]]
            self.expected = [float(count) for count in feature.histogram["counts"]]
            self.categories: dict[str, int] | None = None
        else:
            self.edges = []
            self.categories = {name: i for i, name in enumerate(feature.categories)}
            self.expected = [float(feature.frequencies.get(c, 0)) for c in feature.categories]
        self.counts = [0] * len(self.expected)
        self._bins: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._bins)

    def add(self, values: Iterable[Any]) -> None:
        """Put *values* in the window, dropping the oldest beyond its capacity."""
        counts, bins, categories = self.counts, self._bins, self.categories
        for value in values:
            index = bin_index(value, self.edges) if categories is None else categories[value]
            counts[index] += 1
            bins.append(index)
            if len(bins) > self.capacity:
                counts[bins.popleft()] -= 1

    def add_one(self, value: Any) -> None:
        """Put one value in the window (the per-request path of ``add``)."""
        categories = self.categories
        index = bin_index(value, self.edges) if categories is None else categories[value]
        self.counts[index] += 1
        bins = self._bins
        bins.append(index)
        if len(bins) > self.capacity:
            self.counts[bins.popleft()] -= 1

    def psi(self) -> float:
        """Return the PSI of the window against the training data (0.0 when empty)."""
        return psi_from_counts(self.expected, self.counts)

    def report(self) -> dict[str, Any]:
        """Return this feature's PSI, verdict and window counts."""
        psi = self.psi()
        bins: dict[str, Any] = {"window_counts": list(self.counts)}
        if self.categories is None:
            bins["edges"] = self.edges
        else:
            bins["categories"] = list(self.categories)
        return {
            "feature": self.feature.name,
            "psi": round(psi, 6),
            "verdict": drift_verdict(psi),
            "bins": bins,
        }


class DriftMonitor:
    """One window per feature of a model's schema."""

    def __init__(self, schema: Schema, capacity: int = WINDOW_ROWS) -> None:
        self.windows = [DriftWindow(feature, capacity) for feature in schema.features]
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self.windows[0])

    def add_rows(self, rows: Sequence[tuple]) -> None:
        """Put validated rows (values in schema order) in every feature's window."""
        if len(rows) == 1:
            row = rows[0]
            for index, window in enumerate(self.windows):
                window.add_one(row[index])
            return
        for index, window in enumerate(self.windows):
            window.add(row[index] for row in rows)

    def psis(self) -> dict[str, float]:
        """Return each feature's PSI."""
        return {window.feature.name: window.psi() for window in self.windows}

    def report(self) -> dict[str, Any]:
        """Return the worst feature's PSI and verdict, and every feature's, as ``GET /drift``."""
        features = [window.report() for window in self.windows]
        worst = max(features, key=lambda report: report["psi"])
        return {
            "psi": worst["psi"],
            "verdict": worst_verdict([report["verdict"] for report in features]),
            "worst_feature": worst["feature"],
            "window_size": len(self),
            "window_capacity": self.capacity,
            "enough_data": len(self) >= MIN_ROWS_FOR_VERDICT,
            "thresholds": {"warn": PSI_WARN, "alert": PSI_ALERT},
            "features": features,
            "scope": "worker",
        }
