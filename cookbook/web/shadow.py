"""Shadow scoring: a candidate model scores the champion's traffic, off the request path.

With ``SHADOW_MODEL_PATH`` set, every answered request's validated rows go (through a
bounded buffer per worker, drained every half second) to a thread that predicts them with
the shadow model, records the absolute difference from the champion's answer
(``model_shadow_abs_difference``; for classifiers the mean over classes of the absolute
differences of their probabilities, and whether both answered the same label, each at its
own threshold) and captures the shadow's answer under the role ``shadow``, beside the
champion's. The shadow never answers, and a shadow that fails to load or errors never
affects an answer: the failure is logged and counted (``model_shadow_errors_total``).
``GET /rollout`` compares the two on the same rows, with both models' MAE (classifiers: log
loss and accuracy) where feedback arrived.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from cookbook.core.classes import label_index
from cookbook.core.prediction import Predictor, Row
from cookbook.core.schema import Target
from cookbook.lifecycle.capture_tallies import RolloutTally, prediction_difference
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

    def submit(self, request_id: str, rows: Sequence[Row], values: Sequence[Any],
               champion: Target) -> None:  # fmt: skip
        """Queue a request's rows and the champion's values (and target, whose threshold
        gives its labels); drop (and count) when full."""
        if self.drain.room() < 1:
            self.errors.inc()
            return
        self.drain.put((request_id, rows, values, champion))

    def _score_all(self, items: list) -> None:
        tally = RolloutTally()
        scored = []
        for request_id, rows, values, champion in items:
            try:
                scored.append((request_id, rows, self.score(rows, values, tally, champion)))
            except Exception as exc:  # the shadow's failure is its own, never the answer's
                self._failed([(request_id, rows, values, champion)], exc)
        if self.capture is None:
            return
        # The running sums /rollout reads, one upsert per drain; written before the records,
        # so a shadow record in the store is always in /rollout's figures.
        self.capture.store.add_rollout(tally)
        for request_id, rows, shadow_values in scored:
            answers = [self.predictor.answer_row(row, value)
                       for row, value in zip(rows, shadow_values, strict=True)]  # fmt: skip
            self.capture.record(request_id, self.predictor, SHADOW, rows, shadow_values, answers)

    def _failed(self, items: list, exc: Exception) -> None:
        self.errors.inc(len(items))
        log.error("shadow scoring failed", extra={"fields": {
            "event": "shadow_failed", "model_version": self.version,
            "reason": str(exc)}})  # fmt: skip

    def score(self, rows: Sequence[Row], values: Sequence[Any], tally: RolloutTally,
              champion: Target) -> list[Any]:  # fmt: skip
        """Return the shadow's predictions for *rows*; record their differences from the
        champion's *values* (a classifier's: and whether their labels agree) in the metrics
        and in *tally*."""
        shadow_values = self.predictor.predict_rows(rows)
        differences = [prediction_difference(c, s)
                       for c, s in zip(values, shadow_values, strict=True)]  # fmt: skip
        if not all(math.isfinite(d) for d in differences):
            raise ValueError("the shadow predicted a non-finite value")
        observe_many(self.differences, differences)
        agreed = None
        if self.predictor.is_classifier:
            own = self.predictor.schema.target
            agreed = [champion.classes[label_index(champion, c, None)]
                      == own.classes[label_index(own, s, None)]
                      for c, s in zip(values, shadow_values, strict=True)]  # fmt: skip
        tally.add_scores(time.time(), self.version, differences, self.tolerance, agreed)
        return shadow_values
