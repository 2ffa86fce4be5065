"""Prometheus metrics for the service, correct across gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it before the app
is imported) every worker writes its samples to files in that folder and
``/metrics`` sums them, so any worker answers for all of them. Without it (``python
app.py``, tests) each app keeps its own registry, so several apps can live in one
process.

Beside the HTTP metrics are the model's own, named from its schema: one histogram per
number feature (``model_input_weight_pounds``) and of the predicted target
(``model_predicted_height_inches``), category counts, values outside the training
range and the input drift (PSI) by feature, and accepted and refused model reloads.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Sequence
from functools import partial

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from cookbook.core.prediction import Row
from cookbook.core.schema import NumberFeature, Schema, Target

# Loopback requests take well under a millisecond; the top buckets catch stalls.
LATENCY_BUCKETS_SECONDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# Shadow disagreement, in the target's unit (inches for the MLB models).
SHADOW_DIFFERENCE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
# Used for a feature or target whose schema names no buckets of its own.
DEFAULT_VALUE_BUCKETS = (0.01, 0.1, 1, 10, 100, 1000, 10_000)


def is_multiprocess() -> bool:
    """Return whether metrics are shared between processes through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ProcessId:
    """This process's id, read again only after a fork.

    prometheus_client's multi-process values call ``os.getpid()`` on every write, to notice
    a fork and open the new process's own files: a system call on each of a request's eight
    writes (0.06 to 0.14 µs a write with timeit, more under load). The id only changes at a
    fork, so it is read then, and the library's own hook
    (``MultiProcessValue(process_identifier=...)``) is given this cached one.
    """

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self.refresh)

    def refresh(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


# Chosen before any metric exists: prometheus_client decided on multi-process mode at
# import (from the environment), and a metric's values take the class current when made.
if getattr(values.ValueClass, "_multiprocess", False):
    values.ValueClass = values.MultiProcessValue(process_identifier=ProcessId())


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
            "Predictions answered; a batch counts each row.",
            registry=registry,
        )
        self.out_of_range = Counter(
            "model_input_out_of_range_total",
            "Inputs outside the training range (predicted by extrapolation), by feature and side.",
            ["feature", "side"],
            registry=registry,
        )
        self.categories = Counter(
            "model_input_category_total",
            "Category inputs answered, by feature and category.",
            ["feature", "category"],
            registry=registry,
        )
        self.predicted_classes = Counter(
            "model_predicted_class_total",
            "Rows a classifier answered, by the class it answered at its own threshold.",
            ["class"],
            registry=registry,
        )
        self.drift_psi = Gauge(
            "model_input_drift_psi",
            "Population Stability Index of recent inputs against the training data, by "
            "feature; the highest among live workers (0.1 warn, 0.25 alert).",
            ["feature"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.class_drift_psi = Gauge(
            "model_predicted_class_drift_psi",
            "Population Stability Index of a classifier's recent answered classes against "
            "those it answered on its held-out rows, by target; the highest among live "
            "workers.",
            ["target"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.capture_dropped = Counter(
            "capture_dropped_total",
            "Predictions not captured because the capture queue was full (never the request).",
            registry=registry,
        )
        self.capture_errors = Counter(
            "capture_errors_total",
            "Predictions not captured because the capture store failed to write them.",
            registry=registry,
        )
        self.capture_read_errors = Counter(
            "capture_read_errors_total",
            "Summaries (/quality, /rollout, the quality gauges) that the capture store "
            "failed to answer.",
            registry=registry,
        )
        self.shadow_differences = Histogram(
            "model_shadow_abs_difference",
            "Absolute difference between the shadow model's prediction and the champion's, "
            "in the target's unit; a classifier's mean over classes of its probabilities' "
            "(one observation per row).",
            buckets=SHADOW_DIFFERENCE_BUCKETS,
            registry=registry,
        )
        self.shadow_errors = Counter(
            "model_shadow_errors_total",
            "Shadow scorings that failed or were dropped (the answers were not affected).",
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
        self._histograms: dict[str, Histogram] = {}

    def value_histogram(self, name: str, text: str, buckets: Sequence[float]) -> Histogram:
        """Return the histogram called *name*, made on first use (a reload may bring it)."""
        histogram = self._histograms.get(name)
        if histogram is None:
            histogram = Histogram(name, text, buckets=tuple(buckets), registry=self.registry)
            self._histograms[name] = histogram
        return histogram

    def for_model(self, schema: Schema) -> ModelMetrics:
        """Return the recorder of *schema*'s model metrics."""
        return ModelMetrics(self, schema)

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

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format, summed over workers."""
        if is_multiprocess():
            forget_dead_processes()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def forget_dead_processes() -> None:
    """Drop the live gauges of worker processes that have exited (a replaced worker's).

    gunicorn reports each dead worker (``child_exit`` in gunicorn.conf.py); granian does not,
    so the files are checked here: one folder listing per scrape.
    """
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith("gauge_live") or not name.endswith(".db"):
            continue
        pid = name[:-3].rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metric_name(name: str, unit_name: str | None) -> str:
    """Return a Prometheus name part for a column and its unit: ``weight_pounds``."""
    text = f"{name}_{unit_name}" if unit_name else name
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "value"


class ModelMetrics:
    """Record one model's inputs and answers in the service's metrics, as its schema names them."""

    def __init__(self, metrics: ServiceMetrics, schema: Schema) -> None:
        self.predictions = metrics.predictions
        self.numbers = []  # (row index, feature, histogram, below counter, above counter)
        self.categories = []  # (row index, {category: counter})
        for index, feature in enumerate(schema.features):
            if isinstance(feature, NumberFeature):
                histogram = metrics.value_histogram(
                    f"model_input_{metric_name(feature.name, feature.unit_name)}",
                    f"Values of {feature.name} the model was asked about"
                    + (f", in {feature.unit_name}." if feature.unit_name else "."),
                    feature.metric_buckets or DEFAULT_VALUE_BUCKETS,
                )
                below = metrics.out_of_range.labels(feature.name, "below")
                above = metrics.out_of_range.labels(feature.name, "above")
                self.numbers.append((index, feature, histogram, below, above))
            else:
                children = {
                    c: metrics.categories.labels(feature.name, c) for c in feature.categories
                }
                self.categories.append((index, children))
        target = schema.target
        if target.is_classification:
            self.observe_values = self._class_counter(metrics, target)
        else:
            predicted = metrics.value_histogram(
                f"model_predicted_{metric_name(target.name, target.unit_name)}",
                f"Values of {target.name} the model answered"
                + (f", in {target.unit_name}." if target.unit_name else "."),
                target.metric_buckets or DEFAULT_VALUE_BUCKETS,
            )
            self.observe_values = partial(observe_values, predicted)
        self.drift = {f.name: metrics.drift_psi.labels(f.name) for f in schema.features}
        self.class_drift = (metrics.class_drift_psi.labels(target.name)
                            if target.is_classification else None)  # fmt: skip

    def observe(self, rows: Sequence[Row], values: Sequence[float]) -> None:
        """Record answered rows and their predicted values (a classifier's: the index of
        each row's class at its own threshold): one write per bucket touched."""
        if len(rows) == 1:  # the per-request path: no lists, no sums
            row = rows[0]
            self.predictions.inc()
            for index, feature, histogram, below, above in self.numbers:
                value = row[index]
                observe_one(histogram, value)
                if feature.below_training(value):
                    below.inc()
                elif feature.above_training(value):
                    above.inc()
            for index, children in self.categories:
                children[row[index]].inc()
            self.observe_values(values)
            return
        self.predictions.inc(len(rows))
        for index, feature, histogram, below, above in self.numbers:
            column = [row[index] for row in rows]
            observe_many(histogram, column)
            under = sum(1 for value in column if feature.below_training(value))
            over = sum(1 for value in column if feature.above_training(value))
            if under:
                below.inc(under)
            if over:
                above.inc(over)
        for index, children in self.categories:
            for row in rows:
                children[row[index]].inc()
        self.observe_values(values)

    @staticmethod
    def _class_counter(metrics: ServiceMetrics, target: Target) -> Callable[[Sequence], None]:
        """Return the recorder of a classifier's answered classes (their indexes, at its own
        threshold)."""
        children = [metrics.predicted_classes.labels(name) for name in target.classes]

        def observe_classes(indexes: Sequence[int]) -> None:
            for index in indexes:
                children[index].inc()

        return observe_classes

    def set_drift(self, psis: dict[str, float], class_psi: float | None = None) -> None:
        """Export each feature's PSI, and a classifier's answered classes'."""
        for name, psi in psis.items():
            self.drift[name].set(psi)
        if class_psi is not None and self.class_drift is not None:
            self.class_drift.set(class_psi)


def observe_values(histogram: Histogram, values: Sequence[float]) -> None:
    """Observe predicted values: one by bisection (a request's row), many in one pass."""
    if len(values) == 1:
        observe_one(histogram, values[0])
    else:
        observe_many(histogram, values)


def observe_one(histogram: Histogram, value: float) -> None:
    """Observe *value* as ``histogram.observe`` does, finding its bucket by bisection.

    ``observe`` walks the buckets one by one; this is the per-request path. Like
    ``observe_many`` it reads prometheus_client's private bucket attributes.
    """
    histogram._sum.inc(value)
    histogram._buckets[bisect.bisect_left(histogram._upper_bounds, value)].inc(1)


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """Observe every value in *values*, as ``histogram.observe`` would one by one.

    A batch of ``MAX_BATCH_ROWS`` weights would otherwise write the multiprocess file 20,000
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
