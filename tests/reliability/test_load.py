"""2. Load: 60 s at 32 connections with data capture on, zero failed requests."""

from __future__ import annotations

import time

import pytest
from harness import metric, report, served_requests, server

from cookbook.cli import loadgen
from cookbook.lifecycle.capture_store import open_store

pytestmark = pytest.mark.reliability
SECONDS = 60
CONNECTIONS = 32


def test_sixty_seconds_at_thirty_two_connections(trained_model, tmp_path):
    capture_url = f"sqlite:///{tmp_path}/capture.sqlite3"
    with server(trained_model, tmp_path, CAPTURE_URL=capture_url) as (_, base_url, log):
        result = loadgen.run(f"{base_url}/predict", SECONDS, CONNECTIONS)
        counted = metric(base_url, 'http_requests_total{method="POST",route="/predict",'
                                   'status="200"}')  # fmt: skip
        time.sleep(1.0)  # the writers' last batches
        dropped = metric(base_url, "capture_dropped_total")
        failed_writes = metric(base_url, "capture_errors_total")
    captured = len(open_store(capture_url).rows())
    report("load", result, server_counted=int(counted), captured=captured,
           capture_dropped=int(dropped))  # fmt: skip
    assert result.requests > 0
    assert result.failed == 0 and result.failures["refused"] == 0, result.failures
    # The server's own count (metrics summed over workers, and its log) agrees with the client.
    assert counted == result.requests == len(served_requests(log))
    # Every answer was captured, or dropped and counted; none was lost without a trace.
    assert failed_writes == 0 and captured + dropped == result.requests
