#!/usr/bin/env python
"""Measure the service's speed and memory; print each figure as min / median / max.

Run with ``make bench``. Load comes from wrk (Debian's ``wrk`` package) on 127.0.0.1
only, bounded in time. Nothing here asserts: the machine is shared and noisy, so the
figures are reported for a person to read against the targets.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processes import cpu_seconds, free_port, worker_pss_mb  # noqa: E402  (bench/ modules)
from wrk_load import wrk  # noqa: E402

from cookbook.lifecycle.artifacts import load_predictor  # noqa: E402
from cookbook.lifecycle.vectorized import predict_frame  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
HTTP_SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "10"))
# Capture's cost is a few percent, below one round's noise here: many short rounds.
CAPTURE_ROUNDS = int(os.environ.get("BENCH_CAPTURE_ROUNDS", "12"))
CAPTURE_SECONDS = int(os.environ.get("BENCH_CAPTURE_SECONDS", "5"))
# ... and on servers started afresh several times, sharing the rounds (see http_rounds).
CAPTURE_STARTS = int(os.environ.get("BENCH_CAPTURE_STARTS", "6"))
# Up to this many bytes of environment added to each server (see _load_once_started).
LAYOUT_PADDING = 4096
# The baseline app's own virtualenv (bench/hot_path.py makes it).
BASELINE_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
POST_LUA = """wrk.method = "POST"
wrk.body = '{"Weight": 200}'
"""
# A new weight for every request (150.0-290.9 lb), as real traffic is: what capture stores
# then differs from row to row.
POST_VARIED_LUA = """wrk.method = "POST"
request = function()
  local weight = math.random(150, 290) .. "." .. math.random(0, 9)
  return wrk.format(nil, nil, nil, '{"Weight": ' .. weight .. '}')
end
"""


def summary(values: list[float], fmt: str = "{:,.1f}") -> str:
    """Return "min / median / max" of *values* formatted with *fmt*."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def round_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Return each interleaved round's ratio of two servers' figures (same length, same order)."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def in_process_single_us() -> list[float]:
    """Microseconds per ``Predictor.answer`` call on a request body (validate, predict, format)."""
    predictor = load_predictor()
    document = {"Weight": 200}
    results = []
    for _ in range(RUNS):
        loops = 200_000
        seconds = min(timeit.repeat(lambda: predictor.answer(document), number=loops, repeat=3))
        results.append(seconds / loops * 1e6)
    return results


def batch_rows_per_second() -> list[float]:
    """Rows per second of ``predict_frame`` (the folded model, numpy) on 1,000,000 weights."""
    import numpy as np

    predictor = load_predictor()
    columns = {"Weight": np.random.default_rng(0).uniform(150, 290, 1_000_000)}
    weights = columns["Weight"]
    results = []
    for _ in range(RUNS):
        seconds = min(timeit.repeat(lambda: predict_frame(predictor, columns), number=10, repeat=3))
        results.append(len(weights) * 10 / seconds)
    return results


def cli_cold_start_ms() -> list[float]:
    """Milliseconds for ``python cli.py --weight 180``, a fresh interpreter each time."""
    command = [sys.executable, str(ROOT / "cli.py"), "--weight", "180"]
    # As on a user's machine, Python caches the modules' bytecode (some shells here turn that
    # off, which would time the compiler instead of the start-up).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm the caches
    results = []
    for _ in range(RUNS):
        samples = []
        for _ in range(10):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            samples.append((time.perf_counter() - started) * 1000)
        results.append(statistics.median(samples))
    return results


def python_bare_ms() -> float:
    """Milliseconds for ``python -c pass``: the floor under any CLI's start-up."""
    samples = []
    for _ in range(10):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


SERVERS = {
    # What `make serve`, the image and the deploy recipes run.
    "production": lambda port: [sys.executable, "-m", "cookbook.web.server"],
    # The baseline: gunicorn's sync workers, as before the production server.
    "gunicorn sync": lambda port: [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                   "-b", f"127.0.0.1:{port}", "app:app"],
    # The hot path's baseline (bench/hot_path.py): a minimal FastAPI app of the folded model
    # on uvicorn, uvloop and httptools, from its own virtualenv.
    "folded FastAPI": lambda port: [str(BASELINE_PYTHON), "-m", "uvicorn", "fastapi_baseline:app",
                                    "--app-dir", "bench", "--workers", "2", "--loop", "uvloop",
                                    "--http", "httptools", "--no-access-log", "--log-level",
                                    "warning", "--host", "127.0.0.1", "--port", str(port)],
}  # fmt: skip


def start_server(kind: str, port: int, extra_env: dict[str, str], wrapper: tuple[str, ...] = (),
                 ready_seconds: float = 30) -> subprocess.Popen:  # fmt: skip
    """Start a *kind* server on 127.0.0.1:*port* (2 workers unless *extra_env* says), run
    through *wrapper* (a command that runs it, such as valgrind), once it accepts connections.
    ``BENCH_CHECKOUT`` in *extra_env* names another checkout of the project to serve from
    (an earlier build); the server runs from this one otherwise."""
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           **extra_env}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [*wrapper, *SERVERS[kind](port)], cwd=env.pop("BENCH_CHECKOUT", ROOT), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{kind} did not start within {ready_seconds:g} s")


def http_rounds(variants: dict[str, tuple[str, dict[str, str]]],
                headers: dict[str, str], lua: str = POST_LUA, rounds: int = RUNS,
                seconds: int = HTTP_SECONDS, starts: int = 1) -> dict[str, dict]:  # fmt: skip
    """Serve every variant (label -> server kind, environment) at once and load them in
    interleaved rounds, so the machine's drift affects them alike; each round rotates the
    order and every other round reverses it, so none always goes first or follows the same
    one. The servers are started *starts* times, sharing the rounds: a process's own speed
    differs by a few percent from one start to the next (where its memory lands), which one
    start per variant would read as a difference between variants.

    Return, per variant, the rounds' requests/s, p99 and CPU µs per request (the server's
    processes, all threads), and the workers' memory (of the last start).
    """
    figures = {label: {"rates": [], "p99s": [], "cpu_us": [], "pss": []} for label in variants}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(lua)
        done = 0
        for start in range(starts):
            share = rounds // starts + (start < rounds % starts)
            _load_once_started(variants, headers, script, range(done, done + share), seconds,
                               figures)  # fmt: skip
            done += share
    return figures


def _load_once_started(variants: dict[str, tuple[str, dict[str, str]]],
                       headers: dict[str, str], script: Path, rounds: range, seconds: int,
                       figures: dict[str, dict]) -> None:  # fmt: skip
    """Start every variant, load them in the interleaved *rounds* (numbered over all the
    starts, which sets their order), add to *figures*."""
    # A process's speed can move with the size of its environment (where its stack and
    # memory land): a padding of random length, new for every server and start, makes any
    # such luck noise that averages out over the starts, not a bias that follows the variant.
    servers = {label: (port := free_port(), start_server(kind, port, {
                   **env, "BENCH_LAYOUT_PADDING": "x" * random.randrange(LAYOUT_PADDING)}))
               for label, (kind, env) in variants.items()}  # fmt: skip
    try:
        for port, _ in servers.values():  # warm-up, with the rounds' headers
            wrk(f"http://127.0.0.1:{port}/predict", script, headers, 2)
        for round_number in rounds:
            order = list(servers.items())
            turn = round_number // 2 % len(order)
            order = order[turn:] + order[:turn]
            for label, (port, process) in order[::-1] if round_number % 2 else order:
                before = cpu_seconds(process)
                rate, p99 = wrk(f"http://127.0.0.1:{port}/predict", script, headers, seconds)
                # What the capture writer still had to store counts as this round's.
                time.sleep(0.6)
                spent = cpu_seconds(process) - before
                figures[label]["rates"].append(rate)
                figures[label]["p99s"].append(p99)
                figures[label]["cpu_us"].append(spent / (rate * seconds) * 1e6)
        for label, (_, process) in servers.items():
            figures[label]["pss"] = worker_pss_mb(process)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(timeout=30)


def http_single(extra_env: dict[str, str], headers: dict[str, str]) -> dict[str, dict]:
    """The production server against gunicorn sync, both with *extra_env*."""
    return http_rounds({kind: (kind, extra_env) for kind in ("production", "gunicorn sync")},
                       headers)  # fmt: skip


def capture_overhead() -> dict[str, dict]:
    """The production server with data capture (the default) against capture off, and a
    second capture-off server: what two identical servers differ by is the harness's own
    noise, the scale against which capture's cost is read."""
    with tempfile.TemporaryDirectory() as folder:
        # The same variables, of the same lengths, in all three: only the fraction differs.
        def capture(fraction: str, name: str) -> tuple[str, dict[str, str]]:
            return "production", {"CAPTURE_URL": f"sqlite:///{folder}/{name}.sqlite3",
                                  "CAPTURE_FRACTION": fraction}  # fmt: skip

        return http_rounds(
            {"capture on": capture("1", "on"), "capture off": capture("0", "of"),
             "capture off, again": capture("0", "o2")},
            {}, POST_VARIED_LUA, rounds=CAPTURE_ROUNDS, seconds=CAPTURE_SECONDS,
            starts=CAPTURE_STARTS,
        )  # fmt: skip


def capture_rows(capture: dict[str, dict]) -> list[tuple[str, str, str]]:
    """The rows that report capture_overhead()'s figures."""
    on, off, again = (capture[k] for k in ("capture on", "capture off", "capture off, again"))
    # Each round's baseline is both capture-off servers (their geometric mean): half the
    # variance of one.
    baseline = [math.sqrt(a * b) for a, b in zip(off["rates"], again["rates"], strict=True)]
    shares = round_ratios(on["rates"], baseline)
    control = round_ratios(off["rates"], again["rates"])
    return [
        (f"Data capture on (SQLite) against off, production server, {CAPTURE_ROUNDS} rounds"
         f" of {CAPTURE_SECONDS} s, {CAPTURE_STARTS} starts", "", ""),
        ("    capture on (req/s)", summary(on["rates"], "{:,.0f}"), ""),
        ("    capture off, two servers, same rounds (req/s)",
         summary(off["rates"] + again["rates"], "{:,.0f}"), ""),
        ("    on / off, round by round", summary(shares, "{:.3f}"), ">= 0.95"),
        ("    off / off: two identical servers (the harness's noise)",
         summary(control, "{:.3f}"), "1 if no noise"),
        ("    p99 on / off (ms, median)",
         f"{statistics.median(on['p99s']):.2f} / "
         f"{statistics.median(off['p99s'] + again['p99s']):.2f}", ""),
        ("    CPU per request, on / off (µs, median)",
         f"{statistics.median(on['cpu_us']):.1f} / "
         f"{statistics.median(off['cpu_us'] + again['cpu_us']):.1f}", ""),
    ]  # fmt: skip


def main() -> None:
    rows = []
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): skipping the HTTP figures.\n")
    else:
        token = "bench-token"
        for label, env, headers in (
            ("HTTP single /predict, 2 workers, 16 conns", {}, {}),
            # Request logs, ML metrics, drift and the token check on every call.
            ("  same, API_TOKEN set (Bearer on every call)", {"API_TOKEN": token},
             {"Authorization": f"Bearer {token}"}),
        ):  # fmt: skip
            http = http_single(env, headers)
            production, baseline = http["production"], http["gunicorn sync"]
            ratios = [p / b for p, b in zip(production["rates"], baseline["rates"], strict=True)]
            rows += [
                (label, "", ""),
                ("    production server (req/s)", summary(production["rates"], "{:,.0f}"),
                 ">= 1.8 x gunicorn sync"),
                ("    gunicorn sync, same rounds (req/s)", summary(baseline["rates"], "{:,.0f}"),
                 ""),
                ("    ratio, round by round", summary(ratios, "{:.2f}"), ">= 1.8"),
                ("    p99 production / gunicorn (ms)",
                 f"{statistics.median(production['p99s']):.2f} / "
                 f"{statistics.median(baseline['p99s']):.2f}", "no worse"),
                ("    worker PSS production / gunicorn (MB)",
                 f"{statistics.median(production['pss']):.1f} / "
                 f"{statistics.median(baseline['pss']):.1f}", "<= 40"),
            ]  # fmt: skip
        rows += capture_rows(capture_overhead())
    rows += [
        ("In-process single prediction (µs)", summary(in_process_single_us(), "{:.2f}"), "<= 5"),
        ("Batch of 1,000,000 weights (M rows/s)",
         summary([r / 1e6 for r in batch_rows_per_second()]), ">= 50"),
        ("python cli.py --weight 180 (ms)", summary(cli_cold_start_ms()), "<= 100"),
        ("  python -c pass, for scale (ms)", f"{python_bare_ms():.1f}", ""),
    ]  # fmt: skip
    width = max(len(name) for name, _, _ in rows)
    print(f"{'figure'.ljust(width)}  {'min / median / max':>28}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>28}  {target}")


if __name__ == "__main__":
    main()
