"""The readiness probe, with a deadline: a model that cannot answer is reported, not waited on.

``/ready``, ``/v2/health/ready`` and SageMaker's ``/ping`` predict for a typical row
(``Predictor.probe``). A model that hangs (a native thread pool that did not survive a
fork, a deadlock in a library) would hang those routes with it, silently, while
``/health`` kept answering. So the probe runs in a helper thread that the route waits on
for at most ``PROBE_TIMEOUT`` seconds; past it the route answers 503 and logs why. A
probe still stuck from an earlier call is waited on again rather than doubled, so a hung
model holds one helper thread, not one per probe.
"""

from __future__ import annotations

import logging
import threading
import weakref

from flask import current_app

from cookbook.core.errors import MlibError, ModelError
from cookbook.core.prediction import Predictor
from cookbook.web.request_log import SERVICE_LOGGER
from cookbook.web.served import service_state

log = logging.getLogger(SERVICE_LOGGER)
# Below the Kubernetes probe's own timeout (deploy/kubernetes), so the 503 arrives first.
DEFAULT_PROBE_TIMEOUT_SECONDS = 1.0


class _Probe:
    """One probe prediction running in its own thread, and what it came to."""

    def __init__(self, predictor: Predictor) -> None:
        self.value: float | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(
            target=self._run, args=(predictor,), name="readiness-probe", daemon=True
        )
        self.thread.start()

    def _run(self, predictor: Predictor) -> None:
        try:
            self.value = predictor.probe()
        except Exception as exc:  # handed to the caller, which answers 503
            self.error = exc


_running: weakref.WeakKeyDictionary[Predictor, _Probe] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def probe(predictor: Predictor, timeout_seconds: float) -> float:
    """Return *predictor*'s probe value within *timeout_seconds*, or raise ``ModelError``."""
    with _lock:
        running = _running.get(predictor)
        if running is None or not running.thread.is_alive():
            running = _running[predictor] = _Probe(predictor)
    running.thread.join(timeout_seconds)
    if running.thread.is_alive():
        message = (
            f"Model {predictor.version} did not answer its probe prediction within "
            f"{timeout_seconds:g} s (PROBE_TIMEOUT)."
        )
        log.error(message, extra={"fields": {"event": "probe_timeout",
                                             "model_version": predictor.version}})  # fmt: skip
        raise ModelError(message)
    with _lock:
        if _running.get(predictor) is running:
            del _running[predictor]
    if isinstance(running.error, MlibError):
        raise running.error
    if running.error is not None:  # the estimator's own exception: a model fault all the same
        raise ModelError(
            f"Model {predictor.version} failed its probe prediction ({running.error})."
        ) from None
    assert running.value is not None
    return running.value


def probe_served() -> tuple[Predictor, float]:
    """Probe the current app's served model within its ``PROBE_TIMEOUT``.

    Return ``(predictor, probe value)``; raise ``ModelError`` when it fails or is late.
    """
    predictor = service_state().served.predictor
    return predictor, probe(predictor, current_app.config["PROBE_TIMEOUT"])
