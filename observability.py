"""Prometheus metrics for the service, correct across gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it before the app
is imported) every worker writes its samples to files in that folder and
``/metrics`` sums them, so any worker answers for all of them. Without it (``python
app.py``, tests) each app keeps its own registry, so several apps can live in one
process.

Beside the HTTP metrics are the model's own: the weights it is asked about, the
heights it answers, how many weights fall outside the training range, the input
drift (PSI) and refused model reloads.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Loopback requests take well under a millisecond; the top buckets catch stalls.
LATENCY_BUCKETS_SECONDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# MLB weights lie between about 150 and 290 lb; the outer buckets catch drift and mistakes.
WEIGHT_BUCKETS_POUNDS = (
    100, 125, 150, 165, 180, 195, 210, 225, 240, 260, 290, 350, 500, 1000,
)  # fmt: skip
HEIGHT_BUCKETS_INCHES = (60, 66, 68, 70, 71, 72, 73, 74, 75, 76, 78, 80, 84, 96)


def is_multiprocess() -> bool:
    """Return whether metrics are shared between processes through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServiceMetrics:
    """The service's counters, histograms and gauges, and their Prometheus text rendering."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )
        self.predictions = Counter(
            "predictions_total",
            "Heights predicted; a batch counts each weight.",
            registry=registry,
        )
        self.input_weight = Histogram(
            "model_input_weight_pounds",
            "Weights the model was asked about, in pounds.",
            buckets=WEIGHT_BUCKETS_POUNDS,
            registry=registry,
        )
        self.predicted_height = Histogram(
            "model_predicted_height_inches",
            "Heights the model answered, in inches.",
            buckets=HEIGHT_BUCKETS_INCHES,
            registry=registry,
        )
        self.out_of_range = Counter(
            "model_input_out_of_range_total",
            "Weights outside the training range (predicted by extrapolation), by side.",
            ["side"],
            registry=registry,
        )
        self.drift_psi = Gauge(
            "model_input_drift_psi",
            "Population Stability Index of recent input weights against the training "
            "weights; the highest among live workers (0.1 warn, 0.25 alert).",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.reloads = Counter(
            "model_reloads_total",
            "Model reloads accepted (counted once, by the process that verified the model).",
            registry=registry,
        )
        self.reload_refusals = Counter(
            "model_reload_refusals_total",
            "Model reloads refused because the model failed verification or its probe; "
            "the previous model kept serving.",
            registry=registry,
        )
        # labels() takes a lock and builds a key on every call: resolve each child once.
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._below = self.out_of_range.labels("below")
        self._above = self.out_of_range.labels("above")

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        key = (method, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(method, route, status)
        counter.inc()
        histogram = self._latency_children.get(route)
        if histogram is None:
            histogram = self._latency_children[route] = self.latency.labels(route)
        histogram.observe(seconds)

    def observe_prediction(self, weight_lbs: float, height_inches: float, low: float,
                           high: float) -> None:  # fmt: skip
        """Record one answered weight, its height, and whether it lay outside [low, high]."""
        self.predictions.inc()
        observe_one(self.input_weight, weight_lbs)
        observe_one(self.predicted_height, height_inches)
        if weight_lbs < low:
            self._below.inc()
        elif weight_lbs > high:
            self._above.inc()

    def observe_predictions(self, weights_lbs: Sequence[float], heights_inches: Sequence[float],
                            low: float, high: float) -> None:  # fmt: skip
        """Record a batch: one write per histogram bucket touched, not one per weight."""
        self.predictions.inc(len(weights_lbs))
        observe_many(self.input_weight, weights_lbs)
        observe_many(self.predicted_height, heights_inches)
        below = sum(1 for weight in weights_lbs if weight < low)
        above = sum(1 for weight in weights_lbs if weight > high)
        if below:
            self._below.inc(below)
        if above:
            self._above.inc(above)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format, summed over workers."""
        if is_multiprocess():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def observe_one(histogram: Histogram, value: float) -> None:
    """Observe *value* as ``histogram.observe`` does, finding its bucket by bisection.

    ``observe`` walks the buckets one by one; this is the per-request path. Like
    ``observe_many`` it reads prometheus_client's private bucket attributes.
    """
    histogram._sum.inc(value)
    histogram._buckets[bisect.bisect_left(histogram._upper_bounds, value)].inc(1)


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """Observe every value in *values*, as ``histogram.observe`` would one by one.

    A batch of 10,000 weights would otherwise write the multiprocess file 20,000
    times. This reads the histogram's bucket bounds and children, which are private in
    prometheus_client (pinned in requirements.txt; a test checks the two ways agree).
    """
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1  # the first bucket with value <= bound
    histogram._sum.inc(sum(values))
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)
