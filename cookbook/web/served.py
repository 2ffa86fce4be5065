"""The service's state: the model it serves, swapped whole, and what every worker shares.

One typed object lives on the Flask app (``init_app``, read back with ``service_state``),
registered the way Flask extensions are. ``ServiceState.served`` is replaced by one
assignment on reload, so a request sees the old model or the new one, never half of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flask import Flask, current_app

from cookbook.core.prediction import Predictor, Row
from cookbook.web.metrics import ModelMetrics, ServiceMetrics
from cookbook.web.online_drift import DriftMonitor
from cookbook.web.reload import ReloadState

EXTENSION = "cookbook"
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
        schema = predictor.schema
        return cls(predictor, generation, DriftMonitor(schema), metrics.for_model(schema))

    @property
    def version(self) -> str:
        """Return the model version."""
        return self.predictor.version

    def observe(self, rows: Sequence[Row], values: Sequence[float]) -> None:
        """Record answered rows in the ML metrics and the drift windows."""
        self.metrics.observe(rows, values)
        self.drift.add_rows(rows)
        self.rows_since_gauge += len(rows)
        if self.rows_since_gauge >= DRIFT_GAUGE_EVERY:
            self.rows_since_gauge = 0
            self.metrics.set_drift(self.drift.psis())


@dataclass
class ServiceState:
    """What the app keeps: the served model, the metrics, and the reload state."""

    served: ServedModel
    metrics: ServiceMetrics
    reload: ReloadState  # created before gunicorn forks (preload_app): every worker shares it


def init_app(app: Flask, predictor: Predictor) -> ServiceState:
    """Put a new ServiceState serving *predictor* on *app*; return it."""
    metrics = ServiceMetrics()
    state = ServiceState(ServedModel.of(predictor, 0, metrics), metrics, ReloadState())
    app.extensions[EXTENSION] = state
    return state


def service_state(app: Flask | None = None) -> ServiceState:
    """Return the ServiceState of *app* (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
