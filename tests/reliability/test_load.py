"""2. Load: 60 s at 32 connections, zero failed requests."""

from __future__ import annotations

import pytest
from harness import metric, report, served_requests, server

from cookbook.cli import loadgen

pytestmark = pytest.mark.reliability
SECONDS = 60
CONNECTIONS = 32


def test_sixty_seconds_at_thirty_two_connections(trained_model, tmp_path):
    with server(trained_model, tmp_path) as (_, base_url, log):
        result = loadgen.run(f"{base_url}/predict", SECONDS, CONNECTIONS)
        counted = metric(base_url, 'http_requests_total{method="POST",route="/predict",'
                                   'status="200"}')  # fmt: skip
    report("load", result, server_counted=int(counted))
    assert result.requests > 0
    assert result.failed == 0 and result.failures["refused"] == 0, result.failures
    # The server's own count (metrics summed over workers, and its log) agrees with the client.
    assert counted == result.requests == len(served_requests(log))
