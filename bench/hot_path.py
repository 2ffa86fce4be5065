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
round's ratio to the baseline, with the hot path on and off (``HOT_PATH=0``: every request
through Flask), and of the build the issue measured (``BEFORE_HOT_PATH``, served from a
detached git worktree of that commit; left out, with a line that says so, where the clone
has no such history); then a batch, V2 inference and ``/invocations`` with the hot
path and without it (the baseline answers neither). Then, in-process, what each
observability feature costs a request (``python bench/hot_path.py features`` alone): the
hot path's whole answer with every feature on against the same answer with them off, in the
same run, and each feature's own call, timed with timeit. Nothing asserts: the figures are
for a person to read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run import BASELINE_PYTHON, http_rounds, round_ratios, summary  # noqa: E402  (bench/)

from cookbook.lifecycle.artifacts import load_predictor  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_HOT_ROUNDS", "6"))
SECONDS = int(os.environ.get("BENCH_HOT_SECONDS", "5"))
STARTS = int(os.environ.get("BENCH_HOT_STARTS", "2"))
TOKEN = "bench-token"
# The last commit before the hot path: "today's build" of issue 26, which asks for 2x it.
BEFORE_HOT_PATH = "033695dc1cea820615b7b867b8c31692ebb3a725"
LUA = """wrk.method = "POST"
wrk.body = '{"Weight": 200}'
"""
# The other prediction routes the hot path answers, measured with it and without it.
MORE_ROUTES = {
    "/predict, a batch of 10 rows": """wrk.method = "POST"
wrk.body = '{"Weight": [150, 160, 170, 180, 190, 200, 210, 220, 230, 240]}'
""",
    "V2 infer, one row": """wrk.method = "POST"
wrk.path = "/v2/models/mlb-height/infer"
wrk.body = '{"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [200]}]}'
""",
    "/invocations, one row": """wrk.method = "POST"
wrk.path = "/invocations"
wrk.body = '{"Weight": 200}'
""",
}


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


def earlier_build(folder: Path) -> Path | None:
    """Check BEFORE_HOT_PATH out into *folder* (a detached worktree) and return it, or None
    when this clone lacks that commit (a shallow clone, a copy without history)."""
    checkout = folder / "before-hot-path"
    made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                           str(checkout), BEFORE_HOT_PATH], capture_output=True)  # fmt: skip
    if made.returncode != 0:
        print(f"(the build before the hot path is left out: commit {BEFORE_HOT_PATH[:12]} "
              "is not in this clone)")  # fmt: skip
        return None
    return checkout


def main() -> None:
    make_baseline_venv()
    with tempfile.TemporaryDirectory() as folder:
        every_feature = {"API_TOKEN": TOKEN, "CAPTURE_URL": f"sqlite:///{folder}/on.sqlite3",
                         "CAPTURE_FRACTION": "1"}  # fmt: skip
        variants = {
            "this build, every feature on": ("production", every_feature),
            "this build, capture off": ("production", {**every_feature,
                                                       "CAPTURE_FRACTION": "0"}),
            "this build, hot path off": ("production", {**every_feature, "HOT_PATH": "0"}),
            "folded FastAPI": ("folded FastAPI", folded_line()),
        }  # fmt: skip
        before = earlier_build(Path(folder))
        if before is not None:
            variants["the build before the hot path"] = ("production", {
                **every_feature, "CAPTURE_URL": f"sqlite:///{folder}/before.sqlite3",
                "BENCH_CHECKOUT": str(before)})  # fmt: skip
        try:
            figures = http_rounds(
                variants, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                LUA, rounds=ROUNDS, seconds=SECONDS, starts=STARTS,
            )  # fmt: skip
        finally:
            if before is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(before)], check=False)  # fmt: skip
    baseline = figures["folded FastAPI"]
    print(f"/predict, one row, 2 workers each, wrk 16 connections, {ROUNDS} rounds of "
          f"{SECONDS} s, {STARTS} starts (min / median / max)")  # fmt: skip
    for label, figure in figures.items():
        ratios = round_ratios(figure["rates"], baseline["rates"])
        cpu_ratios = round_ratios(figure["cpu_us"], baseline["cpu_us"])
        print(f"  {label}")
        print(f"    req/s            {summary(figure['rates'], '{:,.0f}')}")
        print(f"    / baseline       {summary(ratios, '{:.2f}')}   target >= 1.0")
        print(f"    p99 ms (median)  {statistics.median(figure['p99s']):.2f}")
        print(f"    CPU µs/request   {summary(figure['cpu_us'], '{:.0f}')}   target <= 100")
        print(f"    CPU / baseline   {summary(cpu_ratios, '{:.2f}')}")
    if "the build before the hot path" in figures:
        before = figures["the build before the hot path"]
        ratios = round_ratios(figures["this build, every feature on"]["rates"], before["rates"])
        print(f"  every feature on / the build before the hot path: "
              f"{summary(ratios, '{:.2f}')}   target >= 2")  # fmt: skip
    print()
    more_routes()
    print()
    with tempfile.TemporaryDirectory() as folder:
        # prometheus_client picks its multi-process mode on import, as the server's does.
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        subprocess.run([sys.executable, __file__, "features"], env=env, check=True)


def more_routes() -> None:
    """Print batch, V2 and /invocations with every feature on, with the hot path and without."""
    for route, lua in MORE_ROUTES.items():
        with tempfile.TemporaryDirectory() as folder:
            every_feature = {"API_TOKEN": TOKEN, "CAPTURE_URL": f"sqlite:///{folder}/on.sqlite3",
                             "CAPTURE_FRACTION": "1"}  # fmt: skip
            figures = http_rounds(
                {"hot path": ("production", every_feature),
                 "HOT_PATH=0": ("production", {**every_feature, "HOT_PATH": "0"})},
                {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                lua, rounds=ROUNDS, seconds=SECONDS, starts=STARTS,
            )  # fmt: skip
        print(f"{route}, every feature on (min / median / max)")
        hot, flask = figures["hot path"], figures["HOT_PATH=0"]
        ratios = round_ratios(hot["rates"], flask["rates"])
        for label, figure in figures.items():
            print(f"  {label:11s} req/s {summary(figure['rates'], '{:,.0f}')}   "
                  f"p99 ms {statistics.median(figure['p99s']):.2f}   "
                  f"CPU µs/request {summary(figure['cpu_us'], '{:.0f}')}")  # fmt: skip
        print(f"  hot path / HOT_PATH=0: {summary(ratios, '{:.2f}')}")


class Headers:
    """The RSGI headers of wrk's request, as granian hands them over."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = pairs

    def get_all(self, name: str) -> list[str]:
        return [self.pairs[name]] if name in self.pairs else []

    def keys(self) -> list[str]:
        return list(self.pairs)


class Scope:
    """An RSGI scope of ``POST /predict``."""

    method = "POST"
    path = "/predict"
    query_string = ""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = Headers(headers)


# Fewer calls than the capture queue holds, and a pause after each repeat for its writer
# to store them: capture then costs what it costs a served request, never a dropped one.
CALLS = 2000
REPEATS = 7


def per_call_us(*calls: object) -> list[float]:
    """Return the fastest of REPEATS runs of CALLS calls of each of *calls*, in µs per call;
    the runs take turns, so the machine's drift affects each alike."""
    best = [float("inf")] * len(calls)
    for _ in range(REPEATS):
        for index, call in enumerate(calls):
            best[index] = min(best[index], timeit.timeit(call, number=CALLS))
            time.sleep(0.6)  # capture's writer flushes every 0.5 s
    return [seconds / CALLS * 1e6 for seconds in best]


def feature_costs() -> None:
    """Print each observability feature's cost per request, in µs (run in its own process:
    the Prometheus multi-process folder must be set before prometheus_client is imported)."""
    from cookbook.web import auth, payload, request_log
    from cookbook.web.factory import create_app
    from cookbook.web.hot_path import HotPath
    from cookbook.web.served import CHAMPION, service_state

    body = b'{"Weight": 200}'
    headers = {"host": "127.0.0.1", "content-type": "application/json",
               "authorization": f"Bearer {TOKEN}", "content-length": str(len(body))}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as devnull:
        capture_on = {"CAPTURE_URL": f"sqlite:///{folder}/on.sqlite3", "CAPTURE_FRACTION": "1"}
        model = str(ROOT / "model.joblib")
        app = create_app({"MODEL_PATH": model, "API_TOKEN": TOKEN, "CAPTURE_ENV": capture_on})
        bare = create_app({"MODEL_PATH": model, "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}})
        state = service_state(app)
        predictor = state.served.predictor
        answer, rows, values = payload.answer_body(predictor, body)
        answer = answer["prediction"]
        hot, hot_bare = HotPath(app), HotPath(bare)
        scope, scope_bare = Scope(headers), Scope({**headers, "authorization": ""})

        def every_feature() -> None:
            request_log.REQUESTS.stream = devnull  # the line is formatted and written
            hot(scope, body)

        def no_feature() -> None:
            request_log.REQUESTS.stream = None
            hot_bare(scope_bare, body)

        # The baseline: the same answer with no token, no log line, no capture (its metrics,
        # drift and request id, which cannot be turned off, are measured below on their own).
        every, baseline = per_call_us(every_feature, no_feature)
        request_log.REQUESTS.stream = devnull
        features = {
            "the token check": lambda: auth.bearer_matches(f"Bearer {TOKEN}", TOKEN),
            "the request id (generated)": lambda: request_log.request_id(None),
            "the JSON request log line": lambda: request_log.REQUESTS.write(
                "POST", "/predict", 200, 0.0001, "v1", "0661234567890abcdef0123456789ab"),
            "observe_request (request count, latency)": lambda: state.metrics.observe_request(
                "POST", "/predict", 200, 0.0001),
            "record's ML metrics and drift": lambda: state.served.observe(rows, values),
            "capture's record": lambda: state.capture.record(
                "0661234567890abcdef0123456789ab", predictor, CHAMPION, rows, values, [answer]),
        }  # fmt: skip
        costs = dict(zip(features, per_call_us(*features.values()), strict=True))
        request_log.REQUESTS.stream = None
    print("In-process, µs per request (fastest of 7 runs of 2,000 calls, taking turns)")
    print(f"  the hot path's answer, every feature on     {every:6.1f}")
    print(f"  the same, no token, no log line, no capture {baseline:6.1f}"
          f"   (difference {every - baseline:.1f})")  # fmt: skip
    for label, cost in costs.items():
        print(f"    {label:42s}{cost:6.1f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["features"]:
        feature_costs()
    else:
        main()
