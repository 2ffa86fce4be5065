#!/usr/bin/env python
"""Measure batch scoring end to end: a generated CSV through the real ``cli.py --input``.

Usage: ``.venv/bin/python bench/batch_csv.py [--rows 10000000] [--runs 3] [--messy] [--json]``.
The CSV (weights like the training data's, a tenth with half pounds, and one blank or
text line per million rows so the rejects path runs too; ``--messy`` for two-decimal
weights and a bad line per thousand) is written to a temporary folder and removed
afterwards. Each run is a fresh ``cli.py`` process; its wall time
and peak resident memory (from ``os.wait4``, so it is that process's alone) are reported
with min / median / max. Targets: <= 15 s and <= 400 MB for 10,000,000 rows. Exits
non-zero only if a run fails or its output is wrong, never because the machine is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 15.0
TARGET_RSS_MB = 400.0
BAD_EVERY_ROWS = 1_000_000
EXIT_SOME_REJECTED = 3  # batch.EXIT_SOME_REJECTED; not imported, to keep pandas out of here


def write_weights_csv(path: Path, rows: int, *, messy: bool = False, seed: int = 0) -> int:
    """Write *rows* data lines of weights to *path*; return how many are meant to be rejected.

    Clean: whole pounds like the training data's, a tenth with half a pound, one blank or
    text line per million. Messy: every weight with two decimals and one bad line per
    thousand, so every chunk takes the slower path for text.
    """
    rng = np.random.default_rng(seed)
    # Every text a line can have, indexed by hundredths of a pound.
    texts = np.array([f"{k / 100:.2f}\n" for k in range(100_001)], dtype=object)
    texts[::100] = [f"{k}\n" for k in range(1001)]
    texts[50::100] = [f"{k}.5\n" for k in range(1000)]
    bad_lines = np.array(["\n", "unknown\n"], dtype=object)
    bad_every = 1_000 if messy else BAD_EVERY_ROWS
    rejected = 0
    block = 1_000_000
    with open(path, "w", encoding="ascii") as stream:
        stream.write("Weight\n")
        for start in range(0, rows, block):
            size = min(block, rows - start)
            pounds = np.clip(rng.normal(201.7, 21.0, size), 120, 320)
            if messy:
                hundredths = np.rint(pounds * 100).astype(np.int64)
            else:
                hundredths = np.rint(pounds).astype(np.int64) * 100 + 50 * (rng.random(size) < 0.1)
            lines = texts[hundredths]
            # One bad line per bad_every rows, alternating blank and text.
            for offset in range(-start % bad_every, size, bad_every):
                lines[offset] = bad_lines[((start + offset) // bad_every) % 2]
                rejected += 1
            stream.write("".join(lines.tolist()))
    return rejected


def run_once(source: Path, output: Path, rejects: Path, extra: list[str]) -> dict[str, float]:
    """Score *source* with a fresh ``cli.py`` process; return its wall time, RSS and exit code."""
    command = [sys.executable, str(ROOT / "cli.py"), "--input", str(source),
               "--output", str(output), "--rejects", str(rejects), *extra]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage; communicate() would reap it first.
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "exit_code": os.waitstatus_to_exitcode(status),
        "stderr": stderr,
    }


def count_lines(path: Path) -> int:
    """Return the number of lines in *path*, reading it in blocks."""
    with open(path, "rb") as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))


def check_run(run: dict, output: Path, rejects: Path, rows: int, bad: int) -> str | None:
    """Return what is wrong with a run's exit code and files, or None when all is right."""
    expected_code = EXIT_SOME_REJECTED if bad else 0
    if run["exit_code"] != expected_code:
        return f"exit code {run['exit_code']} (expected {expected_code}): {run['stderr'][-500:]}"
    if count_lines(output) != rows - bad + 1:
        return f"{output.name} has {count_lines(output) - 1} rows, expected {rows - bad}"
    if count_lines(rejects) != bad + 1:
        return f"{rejects.name} has {count_lines(rejects) - 1} rows, expected {bad}"
    return None


def summarise(values: list[float]) -> dict[str, float]:
    """Return min, median and max of *values*."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> int:
    """Generate the CSV, score it --runs times, print the figures; non-zero on a wrong run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="data rows to generate")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs to time")
    parser.add_argument("--chunk-rows", type=int, help="passed to cli.py --chunk-rows")
    parser.add_argument(
        "--messy", action="store_true", help="two-decimal weights, a bad line per thousand"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    extra = ["--chunk-rows", str(args.chunk_rows)] if args.chunk_rows else []

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        source = Path(folder) / "weights.csv"
        started = time.perf_counter()
        bad = write_weights_csv(source, args.rows, messy=args.messy)
        generate_seconds = time.perf_counter() - started
        output, rejects = Path(folder) / "predictions.csv", Path(folder) / "rejects.csv"
        runs = []
        for _ in range(args.runs):
            run = run_once(source, output, rejects, extra)
            problem = check_run(run, output, rejects, args.rows, bad)
            if problem:
                print(f"batch_csv: run failed: {problem}", file=sys.stderr)
                return 1
            runs.append(run)
        input_mb = source.stat().st_size / 1e6
        output_mb = output.stat().st_size / 1e6

    seconds = summarise([run["seconds"] for run in runs])
    rss = summarise([run["peak_rss_mb"] for run in runs])
    cpu = summarise([run["cpu_seconds"] for run in runs])
    report = {
        "rows": args.rows,
        "messy": args.messy,
        "rejected_rows": bad,
        "runs": args.runs,
        "input_mb": round(input_mb, 1),
        "output_mb": round(output_mb, 1),
        "generate_seconds": round(generate_seconds, 2),
        "wall_seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss,
        "rows_per_second_median": args.rows / seconds["median"],
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "meets_targets": seconds["median"] <= TARGET_SECONDS and rss["max"] <= TARGET_RSS_MB,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Batch scoring: {args.rows:,} {'messy ' if args.messy else ''}rows "
        f"({input_mb:.0f} MB in, {output_mb:.0f} MB out, "
        f"{bad} rejected) through cli.py --input, {args.runs} runs; "
        f"{os.cpu_count()} CPUs, load average {report['load_average_1min']:.1f}"
    )
    print(f"{'':<14}{'min':>9}{'median':>9}{'max':>9}  target")
    print(f"{'wall s':<14}" + "".join(f"{seconds[k]:>9.2f}" for k in ("min", "median", "max"))
          + f"  <= {TARGET_SECONDS:g} s")  # fmt: skip
    print(f"{'cpu s':<14}" + "".join(f"{cpu[k]:>9.2f}" for k in ("min", "median", "max")))
    print(f"{'peak RSS MB':<14}" + "".join(f"{rss[k]:>9.0f}" for k in ("min", "median", "max"))
          + f"  <= {TARGET_RSS_MB:g} MB")  # fmt: skip
    print(f"{'rows/s':<14}{report['rows_per_second_median']:>27,.0f}  (at the median)")
    verdict = "meet" if report["meets_targets"] else "MISS"
    print(f"Median wall time and max RSS {verdict} the targets.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
