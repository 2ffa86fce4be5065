"""Hostile clients and awkward models against the production server: idle connections,
bodies too large or chunked, a clean stop, and a model that predicts on a thread pool."""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from harness import log_lines, port_of, read_until_closed, server, workers
from helpers import ROOT, free_port, server_env, stop, threaded_model

from cookbook.web.payload import BODY_TOO_LARGE, MAX_BODY_BYTES
from cookbook.web.server import ServerSettings

pytestmark = pytest.mark.reliability
READ_TIMEOUT_SECONDS = 2
IDLE_CONNECTIONS = 2000
BIG_BODY_BYTES = 64 << 20
# The server's peak memory may grow by less than this while refusing a 64 MiB body.
BIG_BODY_GROWTH_BOUND = 32 << 20
STOP_RUNS = 10
GRACEFUL_TIMEOUT_SECONDS = ServerSettings().graceful_timeout_seconds


def connect(base_url: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(base_url)), timeout=30)


def status_and_json(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def chunked(body: bytes, size: int = 4096) -> bytes:
    """Return *body* in HTTP/1.1 chunked coding, *size* bytes a chunk, with its last chunk."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def at_least_open_files(count: int) -> None:
    """Raise this process's soft limit of open files to *count* (within its hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_sockets(pid: int) -> int:
    """Return how many sockets process *pid* holds open."""
    folder = Path(f"/proc/{pid}/fd")
    count = 0
    for name in os.listdir(folder):
        try:
            count += os.readlink(folder / name).startswith("socket:")
        except FileNotFoundError:  # closed while listed
            continue
    return count


def peak_memory_bytes(master_pid: int) -> int:
    """Return the server's peak resident memory (VmHWM), summed over master and workers."""
    total = 0
    for pid in (master_pid, *workers(master_pid)):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


# ------------------------------------------------------------------ idle connections


def test_a_connection_that_sends_nothing_is_closed_after_the_read_timeout(trained_model, tmp_path):
    timeout = READ_TIMEOUT_SECONDS
    with server(trained_model, tmp_path, READ_TIMEOUT=str(timeout)) as (_, base_url, _log):
        silent = connect(base_url)
        received, seconds = read_until_closed(silent, timeout + 8)
        silent.close()
        healthy = requests.get(f"{base_url}/health", timeout=5).status_code
    print(f"\n[reliability] a connection that sends nothing: closed after {seconds:.2f} s "
          f"(READ_TIMEOUT={timeout})")  # fmt: skip
    assert b"<still open>" not in received, f"still open after {seconds:.1f} s"
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]
    assert seconds <= timeout + 3 and healthy == 200


def test_two_thousand_idle_connections_leave_the_service_answering(trained_model, tmp_path):
    at_least_open_files(IDLE_CONNECTIONS + 256)
    # A long READ_TIMEOUT: the idle connections stay open while the service is asked.
    with server(trained_model, tmp_path, READ_TIMEOUT="60") as (process, base_url, _log):
        idle = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                idle.append(connect(base_url))
            time.sleep(0.5)  # let the workers take what the kernel queued
            held = {pid: open_sockets(pid) for pid in workers(process.pid)}
            timings = {}
            for name, call in {
                "/health": lambda: requests.get(f"{base_url}/health", timeout=5),
                "/predict": lambda: requests.post(f"{base_url}/predict", json={"Weight": 200},
                                                  timeout=5),
            }.items():  # fmt: skip
                started = time.monotonic()
                answer = call()
                timings[name] = (answer.status_code, time.monotonic() - started)
        finally:
            for sock in idle:
                sock.close()
    print(f"\n[reliability] {IDLE_CONNECTIONS} idle connections: sockets per worker {held}; "
          + "; ".join(f"{name} {status} in {seconds * 1000:.1f} ms"
                      for name, (status, seconds) in timings.items()))  # fmt: skip
    assert sum(held.values()) >= IDLE_CONNECTIONS  # the workers took them all
    for name, (status, seconds) in timings.items():
        assert status == 200 and seconds < 1.0, (name, status, seconds)


# ------------------------------------------------------------------ big and chunked bodies


def test_a_body_whose_length_is_over_the_limit_is_refused_unread(trained_model, tmp_path):
    with server(trained_model, tmp_path) as (_, base_url, log):
        sock = connect(base_url)
        # The headers only: the answer must come without a byte of the body.
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % BIG_BODY_BYTES)  # fmt: skip
        received, _seconds = read_until_closed(sock, 10)
        sock.close()
    assert b"<still open>" not in received, "the connection stayed open after the 413"
    assert status_and_json(received) == (413, {"error": BODY_TOO_LARGE})
    assert b"\r\nconnection: close\r\n" in received.lower()
    assert not [line for line in log_lines(log) if line.get("path") == "/predict"]


def test_a_chunked_body_is_read_up_to_the_limit_and_refused_past_it(trained_model, tmp_path):
    with server(trained_model, tmp_path) as (_, base_url, log):
        sock = connect(base_url)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        # The server answers once the limit is passed: stop sending when it closes.
        with suppress(BrokenPipeError, ConnectionResetError):
            while sent <= MAX_BODY_BYTES + 65536:
                sock.sendall(piece)
                sent += 65536
        received, _seconds = read_until_closed(sock, 10)
        sock.close()
    assert b"<still open>" not in received, "the connection stayed open after the 413"
    assert status_and_json(received) == (413, {"error": BODY_TOO_LARGE})
    assert not [line for line in log_lines(log) if line.get("path") == "/predict"]


def test_a_stalled_chunked_body_is_answered_408(trained_model, tmp_path):
    timeout = READ_TIMEOUT_SECONDS
    with server(trained_model, tmp_path, READ_TIMEOUT=str(timeout)) as (_, base_url, log):
        sock = connect(base_url)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b'9\r\n{"Weight"\r\n')  # and nothing more  # fmt: skip
        received, seconds = read_until_closed(sock, timeout + 8)
        sock.close()
    assert received.startswith(b"HTTP/1.1 408") and seconds <= timeout + 3, received[:200]
    assert not [line for line in log_lines(log) if line.get("path") == "/predict"]


def test_a_chunked_body_cut_short_never_reaches_the_app(trained_model, tmp_path):
    with server(trained_model, tmp_path) as (_, base_url, log):
        sock = connect(base_url)
        body = b'{"Weight": 200}'
        # A whole JSON document, but the client gives up before the last chunk.
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(body).removesuffix(b"0\r\n\r\n"))  # fmt: skip
        sock.shutdown(socket.SHUT_WR)
        received, _seconds = read_until_closed(sock, 10)
        sock.close()
    assert received == b"" or received.startswith(b"HTTP/1.1 400"), received[:200]
    assert not [line for line in log_lines(log) if line.get("path") == "/predict"]


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
def test_a_64_mib_body_leaves_the_servers_memory_alone(trained_model, tmp_path, framing):
    body = b" " * BIG_BODY_BYTES
    with server(trained_model, tmp_path) as (process, base_url, _log):
        before = peak_memory_bytes(process.pid)
        sock = connect(base_url)
        head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        if framing == "chunked":
            wire = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, 1 << 16)
        else:
            wire = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        with suppress(BrokenPipeError, ConnectionResetError):  # the server closes early
            sock.sendall(wire)  # a client that sends it all regardless
        received, _seconds = read_until_closed(sock, 10)
        sock.close()
        after = peak_memory_bytes(process.pid)
        healthy = requests.get(f"{base_url}/health", timeout=5).status_code
    growth = after - before
    print(f"\n[reliability] a 64 MiB body ({framing}): peak memory {before / 2**20:.1f} MiB "
          f"-> {after / 2**20:.1f} MiB (+{growth / 2**20:.1f} MiB); answer "
          f"{received[:12]!r}")  # fmt: skip
    assert growth < BIG_BODY_GROWTH_BOUND
    assert received == b"" or received.startswith(b"HTTP/1.1 413"), received[:200]
    assert healthy == 200


@pytest.mark.parametrize(
    "body", [b'{"Weight": 200}', b'{"Weight": [180, 200, 250]}', b'{"Weight": "x"}'],
    ids=["one row", "batch", "bad row"],
)  # fmt: skip
def test_a_chunked_body_is_answered_like_the_same_body_with_a_length(trained_model, tmp_path, body):
    with server(trained_model, tmp_path) as (_, base_url, _log):
        answers = []
        for framing in ("Content-Length", "chunked"):
            connection = http.client.HTTPConnection("127.0.0.1", port_of(base_url), timeout=10)
            if framing == "chunked":
                connection.request("POST", "/predict", body=iter([body[:7], body[7:]]),
                                   encode_chunked=True)  # fmt: skip
            else:
                connection.request("POST", "/predict", body=body)
            response = connection.getresponse()
            answers.append((response.status, response.read()))
            connection.close()
    print(f"\n[reliability] chunked vs Content-Length {body!r}: {answers[1][0]} / {answers[0][0]}")
    assert answers[1] == answers[0]
    assert answers[0][0] in (200, 400)


# ------------------------------------------------------------------ clean stops

# Loaded by the server's interpreter through PYTHONPATH: after granian's watcher thread
# reaps a worker, it is descheduled for 20 ms before it records the exit code, as a busy
# machine may do to it. Only the master has watcher threads; nothing else changes.
DESCHEDULED_WATCHER = """
import os, threading, time
import multiprocessing.popen_fork as popen_fork

def poll(self, flag=os.WNOHANG):
    if self.returncode is None:
        try:
            pid, status = os.waitpid(self.pid, flag)
        except OSError:
            return None
        if pid == self.pid:
            if threading.current_thread() is not threading.main_thread():
                time.sleep(0.02)
            self.returncode = os.waitstatus_to_exitcode(status)
    return self.returncode

popen_fork.Popen.poll = poll
"""


def python_path(folder: Path) -> str:
    """Return PYTHONPATH with *folder* first (its sitecustomize.py loads at start)."""
    return os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def stop_and_read(process, log: Path) -> tuple[int, float, list[str]]:
    """SIGTERM the server; return its exit code, how long it took, and its log messages."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=GRACEFUL_TIMEOUT_SECONDS + 10)
    return code, time.monotonic() - started, [line.get("message", "") for line in log_lines(log)]


@pytest.mark.parametrize("run", range(STOP_RUNS))
def test_sigterm_stops_an_idle_server_without_killing_a_worker(trained_model, tmp_path, run):
    with server(trained_model, tmp_path) as (process, base_url, log):
        requests.post(f"{base_url}/predict", json={"Weight": 200}, timeout=5)  # threads started
        code, seconds, messages = stop_and_read(process, log)
    killed = [message for message in messages if message.startswith("Killing")]
    print(f"\n[reliability] SIGTERM, run {run + 1}: exit {code} after {seconds:.2f} s")
    assert code == 0 and not killed, killed
    assert sum(message.startswith("Stopped worker") for message in messages) == 2


def test_sigterm_kills_no_worker_even_when_the_watcher_is_descheduled(trained_model, tmp_path):
    injected = tmp_path / "descheduled"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(DESCHEDULED_WATCHER)
    with server(trained_model, tmp_path, PYTHONPATH=python_path(injected)) as (process, _, log):
        code, seconds, messages = stop_and_read(process, log)
    killed = [message for message in messages if message.startswith("Killing")]
    print(f"\n[reliability] SIGTERM with a descheduled watcher: exit {code} after {seconds:.2f} s")
    assert code == 0 and not killed, killed


# Loaded by the server's interpreter through PYTHONPATH: each worker takes 3 s between its
# fork and installing its own signal handlers, as a worker does on a slow or busy machine.
SLOW_TO_TAKE_SIGNALS = """
import time
import granian._signals as signals

installed = signals.set_loop_signals

def set_loop_signals(loop):
    time.sleep(3)
    return installed(loop)

signals.set_loop_signals = set_loop_signals
"""


def test_sigterm_while_the_workers_start_is_not_lost(trained_model, tmp_path):
    injected = tmp_path / "slow-signals"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(SLOW_TO_TAKE_SIGNALS)
    port = free_port()
    log = tmp_path / "server.log"
    env = server_env(trained_model, port, WEB_CONCURRENCY="2", HOST="127.0.0.1",
                     PYTHONPATH=python_path(injected))  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "cookbook.web.server"], cwd=ROOT,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Spawning worker-2" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)  # both workers forked, neither has its own handlers yet
        code, seconds, messages = stop_and_read(process, log)
    finally:
        if process.poll() is None:
            stop(process)
    killed = [message for message in messages if message.startswith("Killing")]
    print(f"\n[reliability] SIGTERM while the workers start: exit {code} after {seconds:.2f} s")
    assert code == 0 and not killed and seconds < GRACEFUL_TIMEOUT_SECONDS / 2, killed


# ------------------------------------------------------------------ models with thread pools


# Loaded by the server's interpreter through PYTHONPATH: in the forked workers, the model's
# probe prediction never returns (the master's, before the fork, is left alone).
HUNG_IN_WORKERS = """
import os, threading

def hang_after_fork():
    from cookbook.core import prediction

    never = threading.Event()
    prediction.Predictor.probe = lambda self: never.wait() or 0.0

os.register_at_fork(after_in_child=hang_after_fork)
"""


def test_a_model_that_hangs_makes_ready_answer_503(trained_model, tmp_path):
    injected = tmp_path / "hung"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(HUNG_IN_WORKERS)
    port = free_port()
    env = server_env(trained_model, port, WEB_CONCURRENCY="2", HOST="127.0.0.1",
                     PYTHONPATH=python_path(injected), PROBE_TIMEOUT="1")  # fmt: skip
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "cookbook.web.server"], cwd=ROOT,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        answers = {path: requests.get(f"{base_url}{path}", timeout=10)
                   for path in ("/ready", "/v2/health/ready", "/ping", "/health")}  # fmt: skip
    finally:
        stop(process)
    statuses = {path: answer.status_code for path, answer in answers.items()}
    print(f"\n[reliability] a model whose probe hangs in the workers: {statuses}")
    assert statuses == {"/ready": 503, "/v2/health/ready": 503, "/ping": 503, "/health": 200}
    assert "within 1 s (PROBE_TIMEOUT)" in answers["/ready"].json()["error"]
    assert answers["/v2/health/ready"].json() == {"ready": False}
    assert any(line.get("event") == "probe_timeout" for line in log_lines(log))


def wait_until_healthy(base_url: str, process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} did not answer /health within {seconds} s")


def test_a_model_predicting_on_a_thread_pool_serves_after_the_fork(serving, tmp_path):
    import mlib

    model_file = threaded_model(tmp_path)
    predictor = mlib.load_predictor(model_file)
    row = {name: 0.01 for name in predictor.schema.feature_names}
    expected = predictor.answer(row)
    base_url = serving(model_file)  # waits for /ready: it never came before
    ready = requests.get(f"{base_url}/ready", timeout=5)
    answers = [requests.post(f"{base_url}/predict", json=row, timeout=5) for _ in range(10)]
    assert ready.status_code == 200 and ready.json()["model_version"] == predictor.version
    assert {answer.status_code for answer in answers} == {200}
    assert all(answer.json() == expected for answer in answers)
