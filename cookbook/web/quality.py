"""Ground truth and online quality: ``POST /feedback`` and ``GET /quality``.

Feedback joins a true value with a captured prediction, whichever worker answered it (the
capture store is shared): a number for a regression, one of its classes for a classifier.
``/quality`` reports, per model version, over the last ``QUALITY_WINDOW_SECONDS`` (24 hours
by default, ``?window_seconds=`` to change it): the labelled rows, MAE, RMSE, bias
(predicted minus true) and the share of true values inside the answer's prediction interval;
for a classifier, log loss, Brier score, accuracy, ROC AUC (binary), expected calibration
error and the share of true labels inside the answer's prediction set
(``cookbook.lifecycle.class_tallies``). Prometheus exports the same figures; they are read
from the shared store at scrape time, so any worker answers for all of them. Every summary
adds up running sums (``cookbook.lifecycle.capture_tallies``), at most a row per minute of
the window, so it costs the worker about a millisecond however much traffic the window
holds; a store that fails answers 503 here and is counted in ``/metrics``.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from cookbook.core.errors import InvalidInput
from cookbook.core.schema import Target
from cookbook.core.validation import MAX_BATCH_ROWS as MAX_ROWS
from cookbook.core.validation import as_float, json_type
from cookbook.lifecycle.capture_database import CaptureError
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_tallies import rollout_report
from cookbook.web import payload
from cookbook.web.payload import MAX_FEEDBACK_ITEMS
from cookbook.web.request_log import is_request_id
from cookbook.web.responses import json_response
from cookbook.web.served import service_state

blueprint = Blueprint("quality", __name__)


@blueprint.record_once
def export_quality_metrics(setup: Any) -> None:
    """Add the quality gauges to ``/metrics`` of the app this blueprint is registered on."""
    service_state(setup.app).metric_sources.append(quality_metrics)


QUALITY_WINDOW_SECONDS = 86_400
MAX_WINDOW_SECONDS = 1e9  # about 31 years: longer is a mistake
EXAMPLE = 'send {"request_id": "...", "actual": 74.0} (or a list of them; "index" for a batch row)'


def feedback_example(target: Target) -> str:
    """Return how to send feedback to a model of *target*, for error messages."""
    if not target.is_classification:
        return EXAMPLE
    return EXAMPLE.replace("74.0", json.dumps(target.classes[0]))


@blueprint.post("/feedback")
def feedback() -> Response:
    """Join true values with captured predictions; 200, 404 unknown, 409 already labelled."""
    capture = service_state().capture
    if capture is None:
        return json_response({"error": "Capture is off (CAPTURE_FRACTION=0): nothing to join."},
                             404)  # fmt: skip
    target = service_state().served.predictor.schema.target
    document = payload.decode(request.get_data(cache=False), feedback_example(target))
    items = parse_feedback(document, target)
    try:
        outcome = capture.store.add_feedback(items)
    except CaptureError as exc:
        return json_response({"error": str(exc)}, 503)
    body = {"joined": outcome["joined"]}
    if outcome["unknown"]:
        return json_response({"error": "Unknown or expired request id(s): "
                              f"{', '.join(outcome['unknown'][:20])}.", **body,
                              "unknown": outcome["unknown"]}, 404)  # fmt: skip
    if outcome["mismatched"]:
        return json_response({"error": "The true value does not fit the model that answered "
                              f"{', '.join(outcome['mismatched'][:20])} (a regression takes a "
                              "number, a classifier one of its classes).", **body,
                              "mismatched": outcome["mismatched"]}, 400)  # fmt: skip
    if outcome["already"]:
        return json_response({"error": "Feedback was already given for: "
                              f"{', '.join(outcome['already'][:20])}; the first value stands.",
                              **body, "already": outcome["already"]}, 409)  # fmt: skip
    return json_response(body)


def parse_feedback(document: Any, target: Target) -> list[Feedback]:
    """Return the feedback items of a request body for a model of *target*, or raise
    ``InvalidInput`` (400)."""
    example = feedback_example(target)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise InvalidInput(f"The feedback list is empty: {example}.")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise InvalidInput(
            f"{len(items)} feedback items; the most one request may carry is "
            f"{MAX_FEEDBACK_ITEMS}.", 413)  # fmt: skip
    parsed = []
    for position, item in enumerate(items):
        where = f"item {position}: " if isinstance(document, list) else ""
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}feedback must be a JSON object: {example}.")
        request_id = item.get("request_id")
        if not is_request_id(request_id):
            raise InvalidInput(f'{where}"request_id" must be the X-Request-ID of an answer.')
        if target.is_classification:
            value = true_label(item.get("actual"), target, where)
        else:
            value = true_value(item.get("actual"), target, where)
        index = item.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_ROWS:
            raise InvalidInput(
                f'{where}"index" must be a row index (0 to {MAX_ROWS - 1}), got {index!r}.'
            )
        parsed.append(Feedback(request_id, index, value))
    return parsed


def true_value(actual: Any, target: Target, where: str) -> float:
    """Return a regression's true value, or raise ``InvalidInput`` naming what is wrong."""
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        raise InvalidInput(f'{where}"actual" must be a number, got {actual!r}.')
    value = as_float(actual)
    if not math.isfinite(value):
        raise InvalidInput(f'{where}"actual" must be finite, got {payload.shorten(actual)}.')
    low, high = target.plausible_range()
    if not low <= value <= high:
        unit = f" {target.unit}" if target.unit else ""
        raise InvalidInput(
            f'{where}"actual" must be between {low:g} and {high:g}{unit} (the training '
            f"range, widened by its width on each side), got {payload.shorten(actual)}."
        )
    return value


def true_label(actual: Any, target: Target, where: str) -> str:
    """Return a classifier's true label, or raise ``InvalidInput`` naming its classes."""
    classes = ", ".join(json.dumps(name) for name in target.classes)
    if not isinstance(actual, str):
        shown = json_type(actual) if isinstance(actual, bool | dict | list) or actual is None \
            else payload.shorten(actual)  # fmt: skip
        raise InvalidInput(f'{where}"actual" must be the true label, one of the classes '
                           f"{classes} (as text), got {shown}.")  # fmt: skip
    if actual not in target.classes:
        raise InvalidInput(f'{where}"actual" {payload.shorten(actual)} is not a class of this '
                           f"model: its classes are {classes}.")  # fmt: skip
    return actual


@blueprint.get("/quality")
def quality() -> Response:
    """Return each model version's online quality over the window, from the capture store."""
    window = request.args.get("window_seconds", str(QUALITY_WINDOW_SECONDS))
    try:
        window_seconds = float(window)
        if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
            raise ValueError
    except ValueError:
        return json_response({"error": f"window_seconds must be a number of seconds in "
                                       f"(0, {MAX_WINDOW_SECONDS:g}], got {window!r}."},
                             400)  # fmt: skip
    try:
        versions = quality_by_version(window_seconds)
    except CaptureError as exc:
        return json_response({"error": str(exc)}, 503)
    return json_response({"window_seconds": window_seconds, "versions": versions})


def quality_by_version(window_seconds: float) -> dict[str, dict[str, Any]]:
    """Return the figures per model version over the window (none when capture is off).

    Raise ``CaptureError`` (and count it) when the store cannot answer.
    """
    state = service_state()
    if state.capture is None:
        return {}
    try:
        return state.capture.store.quality(window_seconds)
    except CaptureError:
        state.metrics.capture_read_errors.inc()
        raise


@blueprint.get("/rollout")
def rollout() -> Response:
    """Return the champion and the shadow: how far apart they answer, and their MAE (a
    classifier's log loss and accuracy) where feedback arrived, over the quality window."""
    state = service_state()
    body: dict[str, Any] = {
        "window_seconds": QUALITY_WINDOW_SECONDS,
        "champion": {"version": state.served.version},
        "shadow": None,
        "canary": None,
    }
    try:
        versions = quality_by_version(QUALITY_WINDOW_SECONDS)
        if state.shadow is not None:
            body["shadow"] = {"version": state.shadow.version,
                              **shadow_figures(state.shadow.version)}  # fmt: skip
    except CaptureError as exc:
        return json_response({"error": str(exc)}, 503)
    body["champion"]["quality"] = versions.get(state.served.version)
    if state.canary is not None:
        version = state.canary.predictor.version
        body["canary"] = {"version": version, "fraction": state.canary.fraction,
                          "quality": versions.get(version)}  # fmt: skip
    if state.shadow_refusal:
        body["shadow_refused"] = state.shadow_refusal
    return json_response(body)


def shadow_figures(shadow_version: str) -> dict[str, Any]:
    """Return how the shadow compares with the champion over the window, from the store."""
    state = service_state()
    tolerance = current_app.config["ROLLOUT_TOLERANCE"]
    classifier = state.served.predictor.is_classifier  # the shadow predicts what it predicts
    if state.capture is None:
        return rollout_report(None, {}, tolerance, classifier)
    try:
        return state.capture.store.rollout(QUALITY_WINDOW_SECONDS, shadow_version, tolerance,
                                           classifier)  # fmt: skip
    except CaptureError:
        state.metrics.capture_read_errors.inc()
        raise


# /quality's figures as Prometheus gauges (by version): a regression's, then a classifier's.
QUALITY_GAUGES = (
    ("labelled", "model_quality_labelled", "Predictions with feedback in the quality window."),
    ("mae", "model_quality_mae", "Mean absolute error on the labelled predictions."),
    ("rmse", "model_quality_rmse", "Root mean squared error on the labelled predictions."),
    ("bias", "model_quality_bias", "Mean of predicted minus true on the labelled predictions."),
    ("interval_coverage", "model_interval_coverage",
     "Share of true values inside the prediction interval, on the labelled predictions."),
    ("log_loss", "model_quality_log_loss", "A classifier's log loss on the labelled rows."),
    ("brier", "model_quality_brier", "A classifier's Brier score on the labelled rows."),
    ("accuracy", "model_quality_accuracy",
     "Share of a classifier's labelled rows answered with the true label."),
    ("roc_auc", "model_quality_roc_auc",
     "A binary classifier's ROC AUC on the labelled rows (from 100 probability bins)."),
    ("ece", "model_quality_ece",
     "A classifier's expected calibration error on the labelled rows (10 bins)."),
    ("set_coverage", "model_set_coverage",
     "Share of true labels inside the prediction set, on a classifier's labelled rows."),
)  # fmt: skip


def quality_metrics() -> bytes:
    """Return the online quality as Prometheus text (summed from the shared store).

    A store that cannot answer leaves the gauges out (and is counted): the rest of the
    scrape still answers.
    """
    try:
        versions = quality_by_version(QUALITY_WINDOW_SECONDS)
    except CaptureError:
        return b""
    if not versions:
        return b""
    registry = CollectorRegistry()
    reported = {stat for stats in versions.values() for stat in stats}  # the tasks' figures
    gauges = {
        stat: Gauge(name, text, ["version"], registry=registry)
        for stat, name, text in QUALITY_GAUGES
        if stat in reported
    }
    for version, stats in versions.items():
        for stat, gauge in gauges.items():
            if stats.get(stat) is not None:
                gauge.labels(version).set(stats[stat])
    return generate_latest(registry)
