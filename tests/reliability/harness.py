"""Helpers shared by the reliability tests: the real production server, its workers and logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from helpers import start_server, stop

import mlib
from cookbook.cli import loadgen


def report(test: str, result: loadgen.LoadResult, **extra) -> None:
    """Print a test's figures (shown by `make test-reliability`, which runs pytest -s)."""
    details = "".join(f"; {key} {value}" for key, value in extra.items())
    print(f"\n[reliability] {test}: {result.report()}{details}")


@contextmanager
def server(model_file: Path, tmp_path: Path, **env: str):
    """Run the production server (2 workers) serving *model_file*; yield (process, url, log)."""
    process, base_url = start_server(model_file, tmp_path, **env)
    log = next(tmp_path.glob(f"server-{base_url.rsplit(':', 1)[1]}.log"))
    try:
        yield process, base_url, log
    finally:
        if process.poll() is None:
            stop(process)


def workers(master_pid: int) -> list[int]:
    """Return the pids of the server's worker processes (the master's children)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def log_lines(log: Path) -> list[dict]:
    """Return the JSON lines of a server log (other lines are skipped)."""
    lines = []
    for text in log.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


def served_requests(log: Path, path: str = "/predict") -> list[dict]:
    """Return the server's request log lines for *path*."""
    return [
        line for line in log_lines(log)
        if line.get("logger") == "app.requests" and line.get("path") == path
    ]  # fmt: skip


def metric(base_url: str, sample: str) -> float:
    """Return one sample's value from /metrics (summed over workers)."""
    for line in requests.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


class Background:
    """Run a load in a thread while the test does something to the server."""

    def __init__(self, url: str, seconds: float, concurrency: int, **kwargs) -> None:
        self.result: loadgen.LoadResult | None = None
        self._thread = threading.Thread(
            target=self._run, args=(url, seconds, concurrency), kwargs=kwargs, daemon=True
        )

    def _run(self, *args, **kwargs) -> None:
        self.result = loadgen.run(*args, **kwargs)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(timeout=loadgen.MAX_SECONDS)

    def wait(self) -> loadgen.LoadResult:
        """Wait for the load to end and return its figures."""
        self._thread.join(timeout=loadgen.MAX_SECONDS)
        assert self.result is not None, "the load generator did not finish"
        return self.result


def put_model(source: Path, target: Path) -> None:
    """Copy the model pair at *source* over *target*, each file replaced atomically."""
    for src, dst in ((source, target), (mlib.metadata_path(source), mlib.metadata_path(target))):
        temporary = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, temporary)
        os.replace(temporary, dst)


def hup(process) -> None:
    """Ask the gunicorn master to reload the model."""
    os.kill(process.pid, signal.SIGHUP)


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def port_of(base_url: str) -> int:
    """Return the port of a server's base URL."""
    return int(base_url.rsplit(":", 1)[1])


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Return what the server sent before it closed (ends in b"<still open>" if it did not
    within *seconds*) and how long it took."""
    started = time.monotonic()
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        received += b"<still open>"
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started
