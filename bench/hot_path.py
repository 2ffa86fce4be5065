#!/usr/bin/env python
"""The prediction hot path against its baseline: a minimal FastAPI app of the folded model.

Issue 26's measure: this build's ``/predict`` with every feature on (the token, the JSON
request log, the ML metrics, capture) against ``bench/fastapi_baseline.py`` on uvicorn
(uvloop, httptools), both with 2 workers, loaded by wrk at 16 connections in interleaved
rounds on servers started several times (``run.http_rounds``), and the same build with
capture off. The baseline runs in its own virtualenv, made here from
``bench/baseline-requirements.txt``; its slope and intercept are the committed model's own
predictions at 0 and 1 lb.

Reported: requests/s, p99 and CPU per request (all of a server's processes), and each
round's ratio to the baseline. Nothing asserts: the figures are for a person to read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run import BASELINE_PYTHON, http_rounds, summary  # noqa: E402  (bench/ modules)

from cookbook.lifecycle.artifacts import load_predictor  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_HOT_ROUNDS", "6"))
SECONDS = int(os.environ.get("BENCH_HOT_SECONDS", "5"))
STARTS = int(os.environ.get("BENCH_HOT_STARTS", "2"))
TOKEN = "bench-token"
LUA = """wrk.method = "POST"
wrk.body = '{"Weight": 200}'
"""


def make_baseline_venv() -> None:
    """Create the baseline's virtualenv once (pip, from PyPI)."""
    if BASELINE_PYTHON.exists():
        return
    venv = BASELINE_PYTHON.parent.parent
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(BASELINE_PYTHON), "-m", "pip", "install", "-q", "-r",
                    str(ROOT / "bench" / "baseline-requirements.txt")], check=True)  # fmt: skip


def folded_line() -> dict[str, str]:
    """The committed model as the baseline's environment: its slope and intercept."""
    predictor = load_predictor(ROOT / "model.joblib")
    intercept = predictor.predict_row((0.0,))
    slope = predictor.predict_row((1.0,)) - intercept
    return {"BASELINE_SLOPE": repr(slope), "BASELINE_INTERCEPT": repr(intercept)}


def main() -> None:
    make_baseline_venv()
    with tempfile.TemporaryDirectory() as folder:
        every_feature = {"API_TOKEN": TOKEN, "CAPTURE_URL": f"sqlite:///{folder}/on.sqlite3",
                         "CAPTURE_FRACTION": "1"}  # fmt: skip
        figures = http_rounds(
            {
                "this build, every feature on": ("production", every_feature),
                "this build, capture off": ("production", {**every_feature,
                                                           "CAPTURE_FRACTION": "0"}),
                "folded FastAPI": ("folded FastAPI", folded_line()),
            },
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            LUA, rounds=ROUNDS, seconds=SECONDS, starts=STARTS,
        )  # fmt: skip
    baseline = figures["folded FastAPI"]
    print(f"/predict, one row, 2 workers each, wrk 16 connections, {ROUNDS} rounds of "
          f"{SECONDS} s, {STARTS} starts (min / median / max)")  # fmt: skip
    for label, figure in figures.items():
        ratios = [a / b for a, b in zip(figure["rates"], baseline["rates"], strict=True)]
        print(f"  {label}")
        print(f"    req/s            {summary(figure['rates'], '{:,.0f}')}")
        print(f"    / baseline       {summary(ratios, '{:.2f}')}   target >= 1.0")
        print(f"    p99 ms (median)  {statistics.median(figure['p99s']):.2f}")
        print(f"    CPU µs/request   {summary(figure['cpu_us'], '{:.0f}')}   target <= 100")


if __name__ == "__main__":
    main()
