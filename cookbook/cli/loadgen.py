"""A bounded HTTP load generator: threads, each with its own keep-alive connection.

``utilscli.py loadtest`` and the reliability suite (tests/reliability/) both use it, so
the figures a person sees are the ones the tests assert on. Every run stops by itself
after ``seconds`` (at most ``MAX_SECONDS``). Failures are counted by kind: an HTTP
status other than 2xx, ``refused`` (no connection was accepted, e.g. while a server
stops), or a named error on a connection the server had accepted (``reset``,
``closed``, ``timeout``), which is the kind a graceful stop must never cause.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cookbook.cli.http_client import cannot_reach, not_a_url, refused_token_hint

MAX_SECONDS = 300
MAX_CONCURRENCY = 256
DEFAULT_BODY = b'{"Weight": 200}'  # the cookbook's model's example; other models pass body=
# A refused connection is retried after this pause, so a stopped server is not hammered.
REFUSED_PAUSE_SECONDS = 0.01


@dataclass
class LoadResult:
    """What a run did: requests sent, failures by kind, latencies and model versions seen."""

    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        """Return how many requests got an answer or an error (refused connects excluded)."""
        return len(self.latencies_s) + sum(
            count for kind, count in self.failures.items() if not kind.isdigit()
            and kind != "refused"
        )  # fmt: skip

    @property
    def failed(self) -> int:
        """Return how many requests failed, whatever the kind (refused connects excluded)."""
        return sum(count for kind, count in self.failures.items() if kind != "refused")

    @property
    def rate(self) -> float:
        """Return answered requests per second."""
        return len(self.latencies_s) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, share: float) -> float:
        """Return the latency in ms below which *share* (0-1) of answered requests fall."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(int(share * len(ordered)), len(ordered) - 1)] * 1000

    def summary(self) -> dict:
        """Return the figures as a flat dict (what ``utilscli.py loadtest --json`` prints)."""
        return {
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "failed": self.failed,
            "failures": dict(sorted(self.failures.items())),
            "refused_connects": self.failures.get("refused", 0),
            "requests_per_second": round(self.rate, 1),
            "p50_ms": round(self.percentile_ms(0.50), 2),
            "p95_ms": round(self.percentile_ms(0.95), 2),
            "p99_ms": round(self.percentile_ms(0.99), 2),
            "model_versions": dict(self.versions),
        }

    def report(self) -> str:
        """Return the figures as a few lines for a person (and for test output)."""
        s = self.summary()
        failures = ", ".join(f"{k}: {v}" for k, v in s["failures"].items()) or "none"
        return (
            f"{s['requests']} requests in {s['seconds']} s, {s['requests_per_second']} req/s; "
            f"failed {s['failed']} (by kind: {failures}); "
            f"latency p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms"
        )


def run(
    url: str,
    seconds: float,
    concurrency: int,
    *,
    body: bytes | None = DEFAULT_BODY,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> LoadResult:
    """Send requests to *url* from *concurrency* threads for *seconds*; return the figures.

    With *body* the requests are POSTs of it, otherwise GETs.
    """
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}], got {seconds}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be in [1, {MAX_CONCURRENCY}], got {concurrency}")
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or not target.hostname:
        raise ValueError(not_a_url(url))
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    results = [LoadResult() for _ in range(concurrency)]
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=_worker,
            args=(target, body, request_headers, timeout, deadline, result),
            daemon=True,
        )
        for result in results
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 5)
    total = LoadResult(seconds=time.perf_counter() - started)
    for result in results:  # each thread kept its own tallies: no lock on the hot path
        total.latencies_s.extend(result.latencies_s)
        total.failures.update(result.failures)
        total.statuses.update(result.statuses)
        total.versions.update(result.versions)
    return total


def _connect(target, timeout: float) -> http.client.HTTPConnection:
    port = target.port or (443 if target.scheme == "https" else 80)
    kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    connection = kind(target.hostname, port, timeout=timeout)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _worker(target, body, headers, timeout, deadline, result: LoadResult) -> None:
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    method = "POST" if body is not None else "GET"
    connection = None
    clock = time.perf_counter
    while time.monotonic() < deadline:
        if connection is None:
            try:
                connection = _connect(target, timeout)
            except ConnectionRefusedError:
                result.failures["refused"] += 1
                time.sleep(REFUSED_PAUSE_SECONDS)
                continue
            except OSError as exc:
                result.failures[_kind(exc)] += 1
                time.sleep(REFUSED_PAUSE_SECONDS)
                continue
        began = clock()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            result.failures[_kind(exc)] += 1
            connection.close()
            connection = None
            continue
        result.latencies_s.append(clock() - began)
        status = response.status
        result.statuses[status] += 1
        if not 200 <= status < 300:
            result.failures[str(status)] += 1
        version = response.getheader("X-Model-Version")
        if version:
            result.versions[version] += 1
        if response.will_close:  # gunicorn's sync workers close after every response
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def _kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    return type(exc).__name__


def failure_line(result: LoadResult, url: str, token_sent: bool) -> str:
    """Return one line saying why a run failed: no connection, or which answers failed."""
    if not result.latencies_s and not result.failed:
        refused = result.failures.get("refused", 0)
        return cannot_reach(url, f"every connection was refused ({refused} attempts).")
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(result.failures.items()))
    line = f"{result.failed} of {result.requests} requests failed ({kinds})."
    if result.failures.get("401"):
        line += f" 401: {refused_token_hint(token_sent)}."
    return line
