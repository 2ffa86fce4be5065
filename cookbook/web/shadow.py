"""Shadow scoring: a candidate model scores the champion's traffic, off the request path.

With ``SHADOW_MODEL_PATH`` set, every answered request's validated rows go (through a
bounded buffer per worker, drained every half second) to a thread that predicts them with
the shadow model, records the absolute difference from the champion's answer
(``model_shadow_abs_difference``) and captures the shadow's answer under the role
``shadow``, beside the champion's. The shadow
never answers, and a shadow that fails to load or errors never affects an answer: the
failure is logged and counted (``model_shadow_errors_total``). ``GET /rollout`` compares
the two on the same rows, with both models' MAE where feedback arrived.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from cookbook.core.prediction import Predictor, Row
from cookbook.lifecycle.capture_tallies import RolloutTally
from cookbook.web.background import BackgroundDrain
from cookbook.web.capture import CaptureWriter
from cookbook.web.metrics import observe_many
from cookbook.web.request_log import SERVICE_LOGGER

log = logging.getLogger(SERVICE_LOGGER)
SHADOW = "shadow"
QUEUE_REQUESTS = 10_000
INTERVAL_SECONDS = 0.5
BATCH_REQUESTS = 1000


class ShadowScorer:
    """Score the champion's rows with a shadow model in a thread of each worker."""

    def __init__(self, predictor: Predictor, capture: CaptureWriter | None, differences: Any,
                 errors: Any, tolerance: float) -> None:  # fmt: skip
        self.predictor = predictor
        self.capture = capture
        self.tolerance = tolerance  # a difference beyond it counts as disagreeing
        self.differences = differences  # histogram of |shadow - champion|
        self.errors = errors
        self.drain = BackgroundDrain("shadow-scorer", self._score_all, self._failed,
                                     limit=QUEUE_REQUESTS, interval=INTERVAL_SECONDS,
                                     batch=BATCH_REQUESTS)  # fmt: skip

    @property
    def version(self) -> str:
        """Return the shadow model's version."""
        return self.predictor.version

    def submit(self, request_id: str, rows: Sequence[Row], values: Sequence[float]) -> None:
        """Queue a request's rows and the champion's values; drop (and count) when full."""
        if self.drain.room() < 1:
            self.errors.inc()
            return
        self.drain.put((request_id, rows, values))

    def _score_all(self, items: list) -> None:
        tally = RolloutTally()
        scored = []
        for request_id, rows, values in items:
            try:
                scored.append((request_id, rows, self.score(rows, values, tally)))
            except Exception as exc:  # the shadow's failure is its own, never the answer's
                self._failed([(request_id, rows, values)], exc)
        if self.capture is None:
            return
        # The running sums /rollout reads, one upsert per drain; written before the records,
        # so a shadow record in the store is always in /rollout's figures.
        self.capture.store.add_rollout(tally)
        for request_id, rows, shadow_values in scored:
            answers = [self.predictor.answer_row(row, value)
                       for row, value in zip(rows, shadow_values, strict=True)]  # fmt: skip
            self.capture.record(request_id, self.version, SHADOW,
                                self.predictor.schema.feature_names, rows, shadow_values,
                                answers)  # fmt: skip

    def _failed(self, items: list, exc: Exception) -> None:
        self.errors.inc(len(items))
        log.error("shadow scoring failed", extra={"fields": {
            "event": "shadow_failed", "model_version": self.version,
            "reason": str(exc)}})  # fmt: skip

    def score(self, rows: Sequence[Row], values: Sequence[float],
              tally: RolloutTally) -> list[float]:  # fmt: skip
        """Return the shadow's predictions for *rows*; record their differences from the
        champion's *values* in the metrics and in *tally*."""
        shadow_values = self.predictor.predict_rows(rows)
        differences = [abs(s - c) for s, c in zip(shadow_values, values, strict=True)]
        if not all(math.isfinite(d) for d in differences):
            raise ValueError("the shadow predicted a non-finite value")
        observe_many(self.differences, differences)
        tally.add_scores(time.time(), self.version, values, shadow_values, self.tolerance)
        return shadow_values
