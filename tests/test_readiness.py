"""The readiness probe's deadline: a model that hangs makes /ready answer 503, never hang."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from app import create_app
from cookbook.web.request_log import SERVICE_LOGGER
from cookbook.web.served import service_state

READY_ROUTES = ["/ready", "/v2/health/ready", "/ping"]


@pytest.fixture
def hung(trained_model, monkeypatch, caplog):
    """An app whose served model's probe hangs until the test releases it."""
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True, "PROBE_TIMEOUT": 0.2})
    predictor = service_state(app).served.predictor
    release = threading.Event()
    answer = predictor.probe
    calls = []

    def hanging_probe() -> float:
        calls.append(1)
        release.wait()
        return answer()

    monkeypatch.setattr(predictor, "probe", hanging_probe)
    logger = logging.getLogger(SERVICE_LOGGER)
    logger.addHandler(caplog.handler)
    yield app.test_client(), release, calls, caplog
    release.set()
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("route", READY_ROUTES)
def test_a_hung_probe_is_a_503_with_a_log_line(hung, route):
    client, release, _calls, caplog = hung
    started = time.monotonic()
    answer = client.get(route)
    seconds = time.monotonic() - started
    assert answer.status_code == 503 and seconds < 5
    if route != "/v2/health/ready":  # the Open Inference Protocol's body is {"ready": false}
        assert "did not answer its probe prediction within 0.2 s" in answer.json["error"]
    events = [getattr(record, "fields", {}).get("event") for record in caplog.records]
    assert "probe_timeout" in events


def test_a_stuck_probe_is_waited_on_not_started_again(hung):
    client, release, calls, _caplog = hung
    assert [client.get("/ready").status_code for _ in range(3)] == [503] * 3
    assert len(calls) == 1  # one helper thread holds the hung model, not one per probe
    release.set()
    answer = client.get("/ready")
    assert answer.status_code == 200 and answer.json["status"] == "ready"


def test_a_probe_that_raises_is_a_503(app, monkeypatch):
    predictor = service_state(app).served.predictor

    def broken() -> float:
        raise RuntimeError("the estimator broke")

    monkeypatch.setattr(predictor, "probe", broken)
    answer = app.test_client().get("/ready")
    assert answer.status_code == 503 and "the estimator broke" in answer.json["error"]


def test_a_bad_probe_timeout_stops_the_start(trained_model, monkeypatch):
    from cookbook.core.errors import MlibError

    monkeypatch.setenv("PROBE_TIMEOUT", "soon")
    with pytest.raises(MlibError, match="PROBE_TIMEOUT must be a number"):
        create_app({"MODEL_PATH": str(trained_model)})
