"""utilscli.py's operations commands (predict --retries, health, loadtest) and loadgen,
against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import ANSWER_200_LBS, run_script

from cookbook.cli import loadgen


def free_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (a dead server's address)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ANSWER = {"prediction": ANSWER_200_LBS}


@pytest.fixture
def scripted_server():
    """A server that answers /predict with the statuses in ``server.script``, then 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            server.hits += 1
            server.times.append(time.monotonic())
            status = server.script.pop(0) if server.script else 200
            status, retry_after = status if isinstance(status, tuple) else (status, None)
            body = json.dumps(ANSWER if status == 200 else {"error": f"scripted {status}"})
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hits, server.script, server.times = 0, [], []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/predict"
    yield server
    server.shutdown()
    server.server_close()


def predict(url: str, *extra: str):
    return run_script("utilscli.py", "predict", "--weight", "200", "--host", url,
                      "--backoff", "0.01", *extra, env={})  # fmt: skip


@pytest.mark.parametrize("status", [502, 503, 504])
def test_predict_retries_gateway_and_overload_answers(scripted_server, status):
    scripted_server.script = [status, status]
    result = predict(scripted_server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6 foot, 2 inches" and scripted_server.hits == 3


def test_predict_waits_as_long_as_retry_after_says(scripted_server):
    scripted_server.script = [(503, "1"), 503]
    result = predict(scripted_server.url)
    assert result.returncode == 0, result.stderr
    first, second, third = scripted_server.times
    # Retry-After: 1 is honoured over the 0.01 s backoff; without it the backoff applies.
    assert second - first >= 1.0 and third - second < 0.5


def test_predict_gives_up_after_its_retries(scripted_server):
    scripted_server.script = [503] * 5
    result = predict(scripted_server.url, "--retries", "2")
    assert result.returncode == 1 and scripted_server.hits == 3
    assert result.stderr.strip() == f"Error: {scripted_server.url} answered 503: scripted 503"


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500])
def test_predict_never_retries_a_client_error_or_a_500(scripted_server, status):
    scripted_server.script = [status]
    result = predict(scripted_server.url)
    assert result.returncode == 1 and scripted_server.hits == 1
    assert f"answered {status}" in result.stderr and "Traceback" not in result.stderr


def test_predict_retries_a_refused_connection_then_reports_it():
    dead = f"http://127.0.0.1:{free_port()}/predict"
    result = predict(dead, "--retries", "2")
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: Cannot reach {dead}: Connection refused"


def test_health_of_a_ready_deployment(live_server):
    for host in (live_server, f"{live_server}/predict"):
        result = run_script("utilscli.py", "health", "--host", host, "--json", env={})
        assert result.returncode == 0, result.stderr
        findings = json.loads(result.stdout)
        assert findings["live"] and findings["ready"] and len(findings["model_version"]) == 12


def test_health_of_a_dead_deployment_exits_non_zero():
    result = run_script("utilscli.py", "health", "--host", f"http://127.0.0.1:{free_port()}",
                        env={})  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Ready: no (Connection refused)" in result.stdout


def test_health_of_a_live_but_unready_deployment(scripted_server):
    # The scripted server answers GET with 501: alive enough to answer, not ready.
    url = scripted_server.url.removesuffix("/predict")
    result = run_script("utilscli.py", "health", "--host", url, env={})
    assert result.returncode == 1 and "Ready: no (HTTP 501)" in result.stdout


def test_loadtest_prints_its_figures(live_server):
    result = run_script("utilscli.py", "loadtest", "--host", f"{live_server}/predict",
                        "--seconds", "1", "--concurrency", "4", env={})  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Requests:") and "req/s" in lines[0]
    assert lines[1] == "Failures:  0 (by status: none)"
    assert lines[2].startswith("Latency:   p50") and "p99" in lines[2]
    assert int(lines[0].split()[1]) > 0


def test_loadtest_counts_failures_by_status_and_exits_non_zero(live_server):
    result = run_script("utilscli.py", "loadtest", "--host", f"{live_server}/nowhere",
                        "--seconds", "0.5", "--concurrency", "2", "--json", env={})  # fmt: skip
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["failed"] == summary["requests"] > 0
    assert summary["failures"] == {"404": summary["requests"]}


@pytest.mark.parametrize(
    ("option", "value"), [("--seconds", "301"), ("--seconds", "0"), ("--concurrency", "257")]
)
def test_loadtest_refuses_unbounded_runs(option, value):
    result = run_script("utilscli.py", "loadtest", option, value, env={})
    assert result.returncode == 2 and "Invalid value" in result.stderr


def test_loadgen_refuses_bad_arguments():
    for args in (("http://x/", 301, 1), ("http://x/", 1, 0), ("ftp://x/", 1, 1)):
        with pytest.raises(ValueError):
            loadgen.run(*args)


def test_loadgen_counts_refused_connects_apart_from_failures():
    result = loadgen.run(f"http://127.0.0.1:{free_port()}/predict", 0.2, 2)
    assert result.failures["refused"] > 0 and result.failed == 0 and result.requests == 0
