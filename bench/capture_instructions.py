#!/usr/bin/env python
"""Count what data capture adds to a request, in instructions: the production server (one
worker) run under callgrind, capture on and then off, sent the same requests.

callgrind runs the server on a simulated CPU and counts the instructions it executes, so
the count does not move with what else the machine is doing: it resolves a cost of 1%,
which the throughput rounds of ``run.py`` cannot (one round's on/off ratio moves by several
percent on a shared machine). It sees neither cache misses nor contention between threads;
those show in the rounds. Under callgrind a worker answers about a hundred requests a
second, so each capture batch holds about fifty records instead of thousands: the writer's
cost per record, and so the figure, is an upper bound.

Needs valgrind (Debian's ``valgrind`` package); takes about five minutes.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from processes import free_port, server_pids  # noqa: E402  (bench/ modules)
from run import start_server  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_CALLGRIND_REQUESTS", "2000"))
WARM_UP = 300
# valgrind names its control files after USER and HOST; the server gets HOST=127.0.0.1, so
# callgrind_control must see the same values to find them.
NAMES = {"USER": "bench", "HOST": "127.0.0.1"}


def post_weights(port: int, count: int, seed: int) -> None:
    """Send *count* single predictions, a new weight each, on one keep-alive connection."""
    weights = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(count):
            body = json.dumps({"Weight": round(weights.uniform(150, 290), 1)})
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"/predict answered {response.status}")
    finally:
        connection.close()


def control(command: str, pids: list[int]) -> None:
    env = {**os.environ, **NAMES}
    for pid in pids:
        subprocess.run(["callgrind_control", command, str(pid)], env=env, check=True,
                       capture_output=True)  # fmt: skip


def instructions_per_request(label: str, extra_env: dict[str, str], folder: Path) -> float:
    """Instructions the server's processes (all threads) executed per request."""
    port = free_port()
    out = folder / f"{label}.%p"
    valgrind = ("valgrind", "--tool=callgrind", "--trace-children=yes",
                f"--callgrind-out-file={out}")  # fmt: skip
    process = start_server("production", port, {"WEB_CONCURRENCY": "1", **NAMES, **extra_env},
                           wrapper=valgrind, ready_seconds=300)  # fmt: skip
    try:
        post_weights(port, WARM_UP, seed=1)
        time.sleep(2)  # the warm-up's capture batch is written before counting starts
        pids = server_pids(process)
        control("-z", pids)
        post_weights(port, REQUESTS, seed=2)
        time.sleep(2)  # ... and the counted requests' batches before counting stops
        control("-d", pids)
        dumps = [folder / f"{label}.{pid}.1" for pid in pids]
        deadline = time.monotonic() + 60
        while not all(d.exists() and "totals:" in d.read_text() for d in dumps):
            if time.monotonic() > deadline:
                raise SystemExit("callgrind wrote no dump within 60 s")
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=60)
    total = 0
    for dump in dumps:
        line = next(x for x in dump.read_text().splitlines() if x.startswith("totals:"))
        total += int(line.split()[1])
    return total / REQUESTS


def main() -> None:
    if shutil.which("valgrind") is None:
        print(
            "valgrind is not installed (apt-get install valgrind): skipping the instruction count."
        )
        return
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        on = instructions_per_request(
            "on", {"CAPTURE_URL": f"sqlite:///{folder}/capture.sqlite3"}, folder
        )
        off = instructions_per_request("off", {"CAPTURE_FRACTION": "0"}, folder)
    print(f"Data capture in instructions per request (callgrind, production server, "
          f"1 worker, {REQUESTS:,} requests each)")  # fmt: skip
    print(
        f"    capture on / off: {on:,.0f} / {off:,.0f}  (+{on - off:,.0f}, "
        f"{(on - off) / off:+.2%}); off / on {off / on:.3f}   target: off / on >= 0.95"
    )


if __name__ == "__main__":
    main()
