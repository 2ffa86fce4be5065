"""Online input drift: a bounded window of recent weights, compared with the training data.

Each gunicorn worker keeps its own window (the workers share one listening socket, so
each sees a random sample of the same traffic). ``GET /drift`` answers for the worker
that serves it; the ``model_input_drift_psi`` gauge exports the highest PSI among the
live workers. The comparison is ``mlib``'s Population Stability Index against the
``weight_histogram`` stored in ``model.json``, with its thresholds (0.1 warn, 0.25 alert).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import mlib

WINDOW_WEIGHTS = 1000
# PSI over a handful of weights is noise; below this many, the answer says so.
MIN_WEIGHTS_FOR_VERDICT = 100


class DriftWindow:
    """The last *capacity* input weights, kept as histogram bin counts (O(1) per weight)."""

    def __init__(self, histogram: Mapping[str, Any], capacity: int = WINDOW_WEIGHTS) -> None:
        self.edges = [float(edge) for edge in histogram["edges"]]
        self.expected = [float(count) for count in histogram["counts"]]
        if len(self.edges) != len(self.expected) + 1 or len(self.expected) < 1:
            raise mlib.ModelError("model.json's weight_histogram is malformed: retrain.")
        self.capacity = capacity
        self.counts = [0] * len(self.expected)
        self._bins: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._bins)

    def add(self, weights_lbs: Iterable[float]) -> None:
        """Put *weights_lbs* in the window, dropping the oldest beyond its capacity."""
        edges, counts, bins = self.edges, self.counts, self._bins
        for weight in weights_lbs:
            index = mlib.weight_bin(weight, edges)
            counts[index] += 1
            bins.append(index)
            if len(bins) > self.capacity:
                counts[bins.popleft()] -= 1

    def psi(self) -> float:
        """Return the PSI of the window against the training histogram (0.0 when empty)."""
        return mlib.psi_from_counts(self.expected, self.counts)

    def report(self) -> dict[str, Any]:
        """Return the PSI, window size and verdict, as ``GET /drift`` answers them."""
        psi = self.psi()
        return {
            "psi": round(psi, 6),
            "verdict": mlib.drift_verdict(psi),
            "window_size": len(self),
            "window_capacity": self.capacity,
            "enough_data": len(self) >= MIN_WEIGHTS_FOR_VERDICT,
            "thresholds": {"warn": mlib.PSI_WARN, "alert": mlib.PSI_ALERT},
            "bins": {"edges_lbs": self.edges, "window_counts": list(self.counts)},
            "scope": "worker",
        }
