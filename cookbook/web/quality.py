"""Ground truth and online quality: ``POST /feedback`` and ``GET /quality``.

Feedback joins a true value with a captured prediction, whichever worker answered it
(the capture store is shared). ``/quality`` reports, per model version, over the last
``QUALITY_WINDOW_SECONDS`` (24 hours by default, ``?window_seconds=`` to change it): the
labelled rows, MAE, RMSE, bias (predicted minus true) and the share of true values
inside the answer's prediction interval. Prometheus exports the same figures; they are
read from the shared store at scrape time, so any worker answers for all of them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from cookbook.core.validation import MAX_BATCH_ROWS as MAX_ROWS
from cookbook.lifecycle.capture_store import CaptureError, Feedback
from cookbook.web import payload
from cookbook.web.request_log import is_request_id
from cookbook.web.responses import json_response
from cookbook.web.served import service_state
from cookbook.web.shadow import rollout_report

blueprint = Blueprint("quality", __name__)


@blueprint.record_once
def export_quality_metrics(setup: Any) -> None:
    """Add the quality gauges to ``/metrics`` of the app this blueprint is registered on."""
    service_state(setup.app).metric_sources.append(quality_metrics)


QUALITY_WINDOW_SECONDS = 86_400
MAX_WINDOW_SECONDS = 1e9  # about 31 years: longer is a mistake
MAX_FEEDBACK_ITEMS = 10_000
EXAMPLE = 'send {"request_id": "...", "actual": 74.0} (or a list of them; "index" for a batch row)'


@blueprint.post("/feedback")
def feedback() -> Response:
    """Join true values with captured predictions; 200, 404 unknown, 409 already labelled."""
    capture = service_state().capture
    if capture is None:
        return json_response({"error": "Capture is off (CAPTURE_FRACTION=0): nothing to join."},
                             404)  # fmt: skip
    document = payload.decode(request.get_data(cache=False), EXAMPLE)
    items = parse_feedback(document)
    try:
        outcome = capture.store.add_feedback(items)
    except CaptureError as exc:
        return json_response({"error": str(exc)}, 503)
    body = {"joined": outcome["joined"]}
    if outcome["unknown"]:
        return json_response({"error": "Unknown or expired request id(s): "
                              f"{', '.join(outcome['unknown'][:20])}.", **body,
                              "unknown": outcome["unknown"]}, 404)  # fmt: skip
    if outcome["already"]:
        return json_response({"error": "Feedback was already given for: "
                              f"{', '.join(outcome['already'][:20])}; the first value stands.",
                              **body, "already": outcome["already"]}, 409)  # fmt: skip
    return json_response(body)


def parse_feedback(document: Any) -> list[Feedback]:
    """Return the feedback items of a request body, or raise ``PayloadError`` (400)."""
    items = document if isinstance(document, list) else [document]
    if not items:
        raise payload.PayloadError(f"The feedback list is empty: {EXAMPLE}.")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise payload.PayloadError(
            f"{len(items)} feedback items; the most one request may carry is "
            f"{MAX_FEEDBACK_ITEMS}.", 413)  # fmt: skip
    parsed = []
    for position, item in enumerate(items):
        where = f"item {position}: " if isinstance(document, list) else ""
        if not isinstance(item, dict):
            raise payload.PayloadError(f"{where}feedback must be a JSON object: {EXAMPLE}.")
        request_id = item.get("request_id")
        if not is_request_id(request_id):
            raise payload.PayloadError(
                f'{where}"request_id" must be the X-Request-ID of an answer.'
            )
        actual = item.get("actual")
        if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
            raise payload.PayloadError(f'{where}"actual" must be a number, got {actual!r}.')
        if not math.isfinite(float(actual)):
            raise payload.PayloadError(f'{where}"actual" must be finite, got {actual!r}.')
        index = item.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_ROWS:
            raise payload.PayloadError(
                f'{where}"index" must be a row index (0 to {MAX_ROWS - 1}), got {index!r}.'
            )
        parsed.append(Feedback(request_id, index, float(actual)))
    return parsed


@blueprint.get("/quality")
def quality() -> Response:
    """Return each model version's online quality over the window, from the capture store."""
    capture = service_state().capture
    window = request.args.get("window_seconds", str(QUALITY_WINDOW_SECONDS))
    try:
        window_seconds = float(window)
        if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
            raise ValueError
    except ValueError:
        return json_response({"error": f"window_seconds must be a number of seconds in "
                                       f"(0, {MAX_WINDOW_SECONDS:g}], got {window!r}."},
                             400)  # fmt: skip
    if capture is None:
        return json_response({"window_seconds": window_seconds, "versions": {}})
    try:
        versions = capture.store.quality(window_seconds)
    except CaptureError as exc:
        return json_response({"error": str(exc)}, 503)
    return json_response({"window_seconds": window_seconds, "versions": versions})


@blueprint.get("/rollout")
def rollout() -> Response:
    """Return the champion and the shadow: how far apart they answer, and their MAE where
    feedback arrived, over the quality window."""
    state = service_state()
    tolerance = current_app.config["ROLLOUT_TOLERANCE"]
    body: dict[str, Any] = {
        "window_seconds": QUALITY_WINDOW_SECONDS,
        "champion": {"version": state.served.version},
        "shadow": None,
        "canary": None,
    }
    versions = {} if state.capture is None else state.capture.store.quality(QUALITY_WINDOW_SECONDS)
    body["champion"]["quality"] = versions.get(state.served.version)
    if state.canary is not None:
        version = state.canary.predictor.version
        body["canary"] = {"version": version, "fraction": state.canary.fraction,
                          "quality": versions.get(version)}  # fmt: skip
    if state.shadow_refusal:
        body["shadow_refused"] = state.shadow_refusal
    if state.shadow is not None:
        pairs = [] if state.capture is None else state.capture.store.shadow_pairs(
            QUALITY_WINDOW_SECONDS)  # fmt: skip
        body["shadow"] = {"version": state.shadow.version, **rollout_report(pairs, tolerance)}
    return json_response(body)


def quality_metrics() -> bytes:
    """Return the online quality as Prometheus text (computed from the shared store)."""
    capture = service_state().capture
    if capture is None:
        return b""
    try:
        versions = capture.store.quality(QUALITY_WINDOW_SECONDS)
    except CaptureError:
        return b""
    registry = CollectorRegistry()
    gauges = {
        name: Gauge(f"model_quality_{name}", text, ["version"], registry=registry)
        for name, text in (
            ("labelled", "Predictions with feedback in the quality window."),
            ("mae", "Mean absolute error on the labelled predictions."),
            ("rmse", "Root mean squared error on the labelled predictions."),
            ("bias", "Mean of predicted minus true on the labelled predictions."),
        )
    }
    coverage = Gauge(
        "model_interval_coverage",
        "Share of true values inside the prediction interval, on the labelled predictions.",
        ["version"],
        registry=registry,
    )
    for version, stats in versions.items():
        for name, gauge in gauges.items():
            gauge.labels(version).set(stats[name])
        if stats["interval_coverage"] is not None:
            coverage.labels(version).set(stats["interval_coverage"])
    return generate_latest(registry)
