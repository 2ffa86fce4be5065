"""The service's state: the model it serves, swapped whole, and what every worker shares.

One typed object lives on the Flask app (``init_app``, read back with ``service_state``),
registered the way Flask extensions are. ``ServiceState.served`` is replaced by one
assignment on reload, so a request sees the old model or the new one, never half of each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, request

from cookbook.core.classes import label_index
from cookbook.core.errors import MlibError
from cookbook.core.prediction import Predictor, Row
from cookbook.web.canary import CANARY, Canary, check_comparable
from cookbook.web.capture import CaptureSettings, CaptureWriter
from cookbook.web.metrics import ModelMetrics, ServiceMetrics
from cookbook.web.online_drift import DriftMonitor
from cookbook.web.reload import ReloadState, load_verified
from cookbook.web.request_log import SERVICE_LOGGER
from cookbook.web.shadow import ShadowScorer

log = logging.getLogger(SERVICE_LOGGER)
EXTENSION = "cookbook"
# Where the request plumbing leaves the response's request id in the WSGI environ.
REQUEST_ID_KEY = "cookbook.request_id"
# ... and the version of the model that answered, when it is not the champion.
MODEL_VERSION_KEY = "cookbook.model_version"
CHAMPION = "champion"
# Refresh the drift gauges every this many rows: PSI costs a few microseconds.
DRIFT_GAUGE_EVERY = 64


@dataclass
class ServedModel:
    """The model this process serves: its predictor, drift windows and metric recorders."""

    predictor: Predictor
    generation: int  # the reload generation it came from
    drift: DriftMonitor
    metrics: ModelMetrics
    rows_since_gauge: int = field(default=0)

    @classmethod
    def of(cls, predictor: Predictor, generation: int, metrics: ServiceMetrics) -> ServedModel:
        """Return the served model for *predictor*, with fresh windows and its recorders."""
        return cls(predictor, generation, DriftMonitor.of(predictor),
                   metrics.for_model(predictor.schema))  # fmt: skip

    @property
    def version(self) -> str:
        """Return the model version."""
        return self.predictor.version

    def observe(self, rows: Sequence[Row], values: Sequence[Any]) -> None:
        """Record answered rows in the ML metrics and the drift windows."""
        if self.predictor.is_classifier:
            # Each row's class at the model's own threshold, found once for the class
            # counts and the drift window.
            target = self.predictor.schema.target
            values = [label_index(target, probabilities, None) for probabilities in values]
            self.drift.add_classes(values)
        self.metrics.observe(rows, values)
        self.drift.add_rows(rows)
        self.rows_since_gauge += len(rows)
        if self.rows_since_gauge >= DRIFT_GAUGE_EVERY:
            self.rows_since_gauge = 0
            self.metrics.set_drift(self.drift.psis(), self.drift.class_psi())


@dataclass
class ServiceState:
    """What the app keeps: the served model, the metrics, and the reload state."""

    served: ServedModel
    metrics: ServiceMetrics
    reload: ReloadState  # created before gunicorn forks (preload_app): every worker shares it
    capture: CaptureWriter | None = None  # None: CAPTURE_FRACTION is 0
    shadow: ShadowScorer | None = None  # SHADOW_MODEL_PATH's model, when it loaded
    shadow_refusal: str | None = None  # why SHADOW_MODEL_PATH is not scoring
    canary: Canary | None = None  # CANARY_MODEL_PATH's model and its share of traffic
    # More Prometheus text for /metrics, computed at scrape time (the quality gauges).
    metric_sources: list[Callable[[], bytes]] = field(default_factory=list)

    def answering(self, canary_key: str | None) -> tuple[Predictor, str]:
        """Return the model that answers a request with this ``X-Canary-Key`` (or none) and
        its role (champion or canary)."""
        canary = self.canary
        if canary is not None and canary.answers(canary_key):
            return canary.predictor, CANARY
        return self.served.predictor, CHAMPION

    def record(self, rows: Sequence[Row], values: Sequence[float], body: dict, request_id: str,
               predictor: Predictor | None = None, role: str = "champion") -> None:  # fmt: skip
        """Count answered rows in the ML metrics and drift, and capture them with their answers.

        *body* is the response body (``prediction`` or ``predictions``) the rows were
        answered with; *request_id* is the one the response carries.
        """
        served = self.served
        served.observe(rows, values)
        predictor = predictor or served.predictor
        if self.capture is not None:
            answers = body["predictions"] if "predictions" in body else [body["prediction"]]
            self.capture.record(request_id, predictor, role, rows, values, answers)
        if self.shadow is not None and role == CHAMPION:
            self.shadow.submit(request_id, rows, values, predictor.schema.target)


def note_canary(version: str | None) -> None:
    """Leave the version of the canary that answered Flask's current request (None: the
    champion answered) in the WSGI environ, for the response's ``X-Model-Version``."""
    if version is not None:
        request.environ[MODEL_VERSION_KEY] = version


def request_id_of_request() -> str:
    """Return the request id the request plumbing gave Flask's current request."""
    return request.environ.get(REQUEST_ID_KEY, "")


def init_app(app: Flask, predictor: Predictor) -> ServiceState:
    """Put a new ServiceState serving *predictor* on *app*; return it.

    Raise ``CaptureError`` when the capture store cannot be used.
    """
    metrics = ServiceMetrics()
    settings: CaptureSettings = app.config["CAPTURE"]
    capture = None
    if settings.fraction > 0:
        capture = CaptureWriter(settings, metrics.capture_dropped, metrics.capture_errors)
        capture.prepare(predictor)
    state = ServiceState(ServedModel.of(predictor, 0, metrics), metrics, ReloadState(), capture)
    canary_path = app.config.get("CANARY_MODEL_PATH")
    if canary_path:  # verified and probed before serving: a bad canary stops the start
        state.canary = Canary.load(canary_path, app.config["CANARY_FRACTION"], predictor)
    shadow_path = app.config.get("SHADOW_MODEL_PATH")
    if shadow_path:
        try:
            shadow = load_verified(shadow_path)
            check_comparable(shadow, predictor, "Shadow")
        except MlibError as exc:
            # A shadow never affects the answers: a bad one is reported, not fatal.
            state.shadow_refusal = f"Shadow model {shadow_path} refused: {exc}"
            log.error(state.shadow_refusal, extra={"fields": {"event": "shadow_refused"}})
        else:
            state.shadow = ShadowScorer(shadow, capture, metrics.shadow_differences,
                                        metrics.shadow_errors,
                                        app.config["ROLLOUT_TOLERANCE"])  # fmt: skip
    app.extensions[EXTENSION] = state
    return state


def service_state(app: Flask | None = None) -> ServiceState:
    """Return the ServiceState of *app* (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
