"""Compare /predict throughput of the gradient-boosting example with the committed linear model.

``python bench/models.py [--rounds 3] [--seconds 5] [--concurrency 8]`` starts the production
server (granian, WEB_CONCURRENCY workers, default 2) once for ``model.joblib`` (folded: plain
Python arithmetic) and once for ``examples/height-gbm/model.joblib`` (served by onnxruntime
from ``model.onnx``), each on its own 127.0.0.1 port, then loads them in turn, one run of each
per round, so a busy machine slows both alike. It prints each run's requests per second,
the medians, and the ratio GBM / linear (the issue's target: at least 0.7). It also times one
row in process through each model's predictor.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cookbook.cli import loadgen  # noqa: E402
from cookbook.lifecycle.artifacts import load_predictor  # noqa: E402

MODELS = {
    "linear": (ROOT / "model.joblib", {"Weight": 200}),
    "gbm": (
        ROOT / "examples" / "height-gbm" / "model.joblib",
        {"Weight": 200, "Age": 28.5, "Position": "Catcher"},
    ),
}


def free_port() -> int:
    """Return a port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(model_file: Path, log_file: Path) -> tuple[subprocess.Popen, str]:
    """Start the production server for *model_file*; return it and its base URL once ready."""
    port = free_port()
    env = {**os.environ, "MODEL_PATH": str(model_file), "PORT": str(port), "HOST": "127.0.0.1"}
    env.setdefault("WEB_CONCURRENCY", "2")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cookbook.web.server"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The server for {model_file} exited: {log_file.read_text()[:3000]}")
        try:
            with urllib.request.urlopen(f"{base_url}/ready", timeout=1) as answer:
                if answer.status == 200:
                    return process, base_url
        except OSError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"The server for {model_file} was not ready within 60 s")


def one_row_microseconds(model_file: Path, row: dict, repeats: int = 20_000) -> float:
    """Return the median time of one in-process prediction of *row*, in microseconds."""
    predictor = load_predictor(model_file)
    values = tuple(row[name] for name in predictor.schema.feature_names)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats // 5):
            predictor.predict_row(values)
        timings.append((time.perf_counter() - started) / (repeats // 5) * 1e6)
    return statistics.median(timings)


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each model.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of one run.")
    parser.add_argument("--concurrency", type=int, default=8, help="Connections at once.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()

    figures: dict = {"one_row_us": {}, "requests_per_second": {name: [] for name in MODELS}}
    for name, (model_file, row) in MODELS.items():
        figures["one_row_us"][name] = round(one_row_microseconds(model_file, row), 2)
    servers = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = os.environ.get("BENCH_LOGS", folder)
        try:
            for name, (model_file, _row) in MODELS.items():
                servers[name] = start(model_file, Path(folder) / f"{name}.log")
            for _ in range(args.rounds):
                for name, (_model, row) in MODELS.items():
                    url = f"{servers[name][1]}/predict"
                    body = json.dumps(row).encode()
                    result = loadgen.run(url, args.seconds, args.concurrency, body=body)
                    if result.failed:
                        raise SystemExit(f"{name}: {result.report()}")
                    figures["requests_per_second"][name].append(round(result.rate, 1))
                    print(f"{name:6} {result.report()}", file=sys.stderr)
        finally:
            for process, _url in servers.values():
                process.terminate()
                process.wait(timeout=30)
    rates = figures["requests_per_second"]
    medians = {name: statistics.median(values) for name, values in rates.items()}
    figures["median_requests_per_second"] = medians
    figures["ratio_gbm_to_linear"] = round(medians["gbm"] / medians["linear"], 3)
    if args.json:
        print(json.dumps(figures))
        return
    for name in MODELS:
        print(
            f"{name:6} one row in process {figures['one_row_us'][name]:.2f} us; "
            f"/predict {medians[name]:.0f} req/s (runs: {rates[name]})"
        )
    print(f"GBM / linear throughput: {figures['ratio_gbm_to_linear']:.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
