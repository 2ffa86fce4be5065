"""5. Worker crash, 6. graceful stop, 7. disk and input faults at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import Background, report, served_requests, server, workers
from helpers import ROOT, break_model, free_port, server_env, wait_until_ready

from cookbook.cli import loadgen
from cookbook.web.server import ServerSettings

pytestmark = pytest.mark.reliability
GRACEFUL_TIMEOUT_SECONDS = ServerSettings().graceful_timeout_seconds


def test_a_killed_worker_is_replaced(trained_model, tmp_path):
    with server(trained_model, tmp_path) as (process, base_url, _):
        before = all_workers(process.pid)
        with Background(f"{base_url}/predict", 15, 16) as load:
            time.sleep(3)
            os.kill(before[0], signal.SIGKILL)
            result = load.wait()
        after = all_workers(process.pid)
        still_serving = loadgen.run(f"{base_url}/predict", 1, 2)
    report("worker SIGKILL", result, workers_before=before, workers_after=after)
    assert len(after) == len(before) == 2 and before[0] not in after
    assert result.failed <= 0.01 * result.requests, result.failures
    assert still_serving.failed == 0 and still_serving.requests > 0


def all_workers(master_pid: int, count: int = 2) -> list[int]:
    """Return the master's workers once all *count* have booted (bounded wait)."""
    deadline = time.monotonic() + 30
    while len(found := workers(master_pid)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


CONNECTIONS = 16


def test_sigterm_drains_in_flight_requests(trained_model, tmp_path):
    with (
        server(trained_model, tmp_path) as (process, base_url, log),
        Background(f"{base_url}/predict", 8, CONNECTIONS) as load,
    ):
        time.sleep(3)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=GRACEFUL_TIMEOUT_SECONDS + 10)
        stop_seconds = time.monotonic() - stopped_at
        result = load.wait()
    served = served_requests(log)
    broken = {kind: n for kind, n in result.failures.items() if kind != "refused"}
    report("graceful stop", result, exit_code=code, stop_seconds=round(stop_seconds, 2),
           server_answered=len(served))  # fmt: skip
    assert code == 0 and stop_seconds < GRACEFUL_TIMEOUT_SECONDS
    # Every request a worker accepted was answered: the server logged exactly the requests
    # the client got answers to. Afterwards new connections are refused.
    assert len(served) == len(result.latencies_s)
    assert result.failures["refused"] > 0
    # Each stopping worker takes the connections waiting in the kernel's accept queue
    # before it closes the socket (worker_exit in gunicorn.conf.py), which took the
    # resets from 16 a run to almost always none. Between the last worker's final
    # accept() and its close() a connection can still slip into the queue and be reset
    # (seen once in ten runs); the kernel gives no way to close that window, so the
    # bound is what holds for certain: each client connection can be caught at most once.
    assert set(broken) <= {"reset"} and broken.get("reset", 0) <= CONNECTIONS, broken


FAULTS = ["missing", "directory", "empty", "truncated", "metadata missing",
          "metadata truncated", "metadata empty", "path is a folder"]  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_model_path_is_refused_at_start_in_one_line(model_copy, fault):
    model_path = break_model(model_copy, fault)
    port = free_port()
    command = [sys.executable, "-m", "cookbook.web.server"]
    result = subprocess.run(command, cwd=ROOT, env=server_env(model_path, port),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    print(f"\n[reliability] start with {fault}: exit {result.returncode}: {output}")
    assert result.returncode != 0
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1 and output.startswith("Error: "), output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_the_process_group_leaves_no_process_behind(trained_model, tmp_path, stop_signal):
    port = free_port()
    env = server_env(trained_model, port, WEB_CONCURRENCY="2", HOST="127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "cookbook.web.server"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        group = os.getpgid(process.pid)
        assert len(all_workers(process.pid)) == 2
        os.killpg(group, stop_signal)  # what a terminal's Ctrl-C or `kill -- -PGID` does
        code = process.wait(timeout=GRACEFUL_TIMEOUT_SECONDS + 10)
        deadline = time.monotonic() + 10
        while (left := processes_in_group(group)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"\n[reliability] {stop_signal.name} to the process group: exit {code}, left {left}")
    assert code == 0 and left == []


def processes_in_group(group: int) -> list[int]:
    """Return the live (not zombie) processes whose process group is *group*."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(entry))
    return found
