"""Online input drift: bounded windows of recent inputs, compared with the training data.

Each gunicorn worker keeps its own windows (the workers share one listening socket, so
each sees a random sample of the same traffic). ``GET /drift`` answers for the worker
that serves it; the ``model_input_drift_psi`` gauge exports, per feature, the highest PSI
among the live workers. Number features are binned on the training histogram stored in
the schema, category features by category; both are compared with the core's PSI.

A classifier's answered classes (at its own threshold) get a window too, compared with the
classes it answered on its held-out rows at training (the answered columns of
``model.json``'s ``diagnostics.confusion``): a change in what the model answers shows there
even when no single input moved much. ``GET /drift`` reports it as ``predicted_classes``, and its
verdict counts in the overall one.

A model that records its features' importance (``cookbook.core.importance``) gets it beside
each feature's PSI, with its rank, and ``features_by_concern`` lists the drifting features that
matter first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cookbook.core.importance import importance_unit, rank_drift
from cookbook.core.prediction import Predictor
from cookbook.core.psi import (
    PSI_ALERT,
    PSI_WARN,
    bin_index,
    drift_verdict,
    expected_class_counts,
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
        categories, edges = self.categories, self.edges
        self.add_bins(bin_index(value, edges) if categories is None else categories[value]
                      for value in values)  # fmt: skip

    def add_bins(self, indexes: Iterable[int]) -> None:
        """Put values already binned (their bins' *indexes*) in the window."""
        counts, bins = self.counts, self._bins
        for index in indexes:
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
    """One window per feature of a model's schema, and one of a classifier's answers."""

    def __init__(self, schema: Schema, capacity: int = WINDOW_ROWS,
                 class_counts: Sequence[float] | None = None,
                 importance: Mapping[str, float] | None = None,
                 importance_unit: str = "") -> None:  # fmt: skip
        self.windows = [DriftWindow(feature, capacity) for feature in schema.features]
        self.capacity = capacity
        self.schema = schema
        self.importance = importance
        self.importance_unit = importance_unit
        self.classes: DriftWindow | None = None
        if class_counts is not None:
            target = schema.target
            answered = CategoryFeature(
                target.name, target.classes, dict(zip(target.classes, class_counts, strict=True))
            )
            self.classes = DriftWindow(answered, capacity)

    @classmethod
    def of(cls, predictor: Predictor) -> DriftMonitor:
        """Return the windows of *predictor*'s inputs (and of its answered classes, when
        its ``model.json`` has their distribution at training), with its features' importance
        when it records it."""
        counts = None
        if predictor.is_classifier:
            counts = expected_class_counts(predictor.metadata, predictor.schema.target.classes)
        return cls(
            predictor.schema,
            class_counts=counts,
            importance=predictor.importance,
            importance_unit=importance_unit(predictor.schema, predictor.metadata),
        )

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

    def add_classes(self, indexes: Sequence[int]) -> None:
        """Put a classifier's answered classes (their indexes) in its window, if it has one."""
        if self.classes is not None:
            self.classes.add_bins(indexes)

    def psis(self) -> dict[str, float]:
        """Return each feature's PSI."""
        return {window.feature.name: window.psi() for window in self.windows}

    def class_psi(self) -> float | None:
        """Return the answered classes' PSI (None: not a classifier, or no distribution)."""
        return None if self.classes is None else self.classes.psi()

    def report(self) -> dict[str, Any]:
        """Return the worst feature's PSI and verdict, and every feature's (with its
        importance and rank), and the features by concern, as ``GET /drift``."""
        features = [window.report() for window in self.windows]
        concern = rank_drift(features, self.importance, self.importance_unit)
        worst = max(features, key=lambda report: report["psi"])
        verdicts = [report["verdict"] for report in features]
        predicted = None
        if self.classes is not None:
            predicted = self.classes.report()
            predicted["target"] = predicted.pop("feature")
            verdicts.append(predicted["verdict"])
        report = {
            "psi": worst["psi"],
            "verdict": worst_verdict(verdicts),
            "worst_feature": worst["feature"],
            "window_size": len(self),
            "window_capacity": self.capacity,
            "enough_data": len(self) >= MIN_ROWS_FOR_VERDICT,
            "thresholds": {"warn": PSI_WARN, "alert": PSI_ALERT},
            "features": features,
            **concern,
            "scope": "worker",
        }
        if predicted is not None:
            report["predicted_classes"] = predicted
        return report
