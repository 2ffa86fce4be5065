#!/usr/bin/env python
"""Measure distributed scoring: Parquet files scored on local Dask clusters of 1 and 2 workers.

Usage: ``.venv/bin/python bench/dask_score.py [--rows 10000000] [--files 20] [--runs 3]
[--full] [--json]``; ``--full`` is 100,000,000 rows over 20 files. The files (a player
id and a weight like the training data's, one empty weight per million rows so the
rejects path runs too) are written to a temporary folder and removed afterwards. Each
run starts a fresh local cluster (processes of one thread, as ``utilscli.py score``
does), scores every file through ``cookbook.lifecycle.distributed_scoring`` into
Parquet, and then asks each worker for its peak resident memory. Rounds alternate 1
and 2 workers, so the machine's drift hits both alike; the scaling is 2-worker rows/s
over 1-worker rows/s, round by round. Figures are reported, never asserted: exits
non-zero only if a run fails or its counts are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from batch_csv import summarise  # noqa: E402  (beside this script: min / median / max)

from cookbook.lifecycle import distributed_scoring  # noqa: E402
from cookbook.lifecycle.artifacts import load_predictor  # noqa: E402

FULL_ROWS = 100_000_000
ROW_GROUP_ROWS = 1_000_000
BAD_EVERY_ROWS = 1_000_000
WORKER_COUNTS = (1, 2)
SCHEMA = pa.schema([("player_id", pa.int64()), ("Weight", pa.float64())])


def write_parquet_files(folder: Path, rows: int, files: int, seed: int = 0) -> int:
    """Write *rows* rows over *files* Parquet files in *folder*; return how many are rejects.

    Weights are whole pounds like the training data's, a tenth with half a pound; one
    weight per million rows is missing (null), which the scorer rejects as empty.
    """
    rng = np.random.default_rng(seed)
    bad = 0
    start = 0
    for index in range(files):
        size = rows // files + (1 if index < rows % files else 0)
        with pq.ParquetWriter(folder / f"weights-{index:02d}.parquet", SCHEMA) as writer:
            for offset in range(0, size, ROW_GROUP_ROWS):
                block = min(ROW_GROUP_ROWS, size - offset)
                pounds = np.rint(np.clip(rng.normal(201.7, 21.0, block), 120, 320))
                pounds += 0.5 * (rng.random(block) < 0.1)
                first = start + offset
                missing = np.zeros(block, dtype=bool)
                missing[-first % BAD_EVERY_ROWS :: BAD_EVERY_ROWS] = True
                bad += int(missing.sum())
                weights = pa.array(pounds, mask=missing)
                ids = pa.array(np.arange(first, first + block, dtype=np.int64))
                writer.write_table(pa.table({"player_id": ids, "Weight": weights}))
        start += size
    return bad


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (run on each worker)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_once(folder: Path, workers: int, predictor) -> dict:
    """Score every file in *folder* on a fresh local cluster of *workers*; return the figures."""
    output = folder.parent / f"scored-{workers}"
    partitions = distributed_scoring.plan_partitions(
        distributed_scoring.find_inputs(str(folder)), predictor.schema
    )
    started = time.perf_counter()
    with distributed_scoring.dask_client(None, workers) as client:
        cluster_seconds = time.perf_counter() - started
        idle = client.run(peak_rss_mb)  # the interpreter and libraries, before any work
        started = time.perf_counter()
        report = distributed_scoring.score_on(client, partitions, predictor, output)
        seconds = time.perf_counter() - started
        rss = client.run(peak_rss_mb)
    output_mb = sum(path.stat().st_size for path in output.rglob("*") if path.is_file()) / 1e6
    shutil.rmtree(output)
    return {
        "workers": workers,
        "partitions": len(partitions),
        "seconds": seconds,
        "cluster_start_seconds": cluster_seconds,
        "scored": report.scored,
        "rejected": report.rejected,
        "output_mb": output_mb,
        "peak_rss_mb_per_worker": sorted(rss.values()),
        "idle_rss_mb_per_worker": sorted(idle.values()),
    }


def main() -> int:
    """Generate the files, score them --runs rounds of 1 and 2 workers, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate")
    parser.add_argument("--files", type=int, default=20, help="Parquet files to spread them over")
    parser.add_argument("--runs", type=int, default=3, help="rounds of 1 and 2 workers")
    parser.add_argument("--full", action="store_true", help=f"{FULL_ROWS:,} rows (the README's)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rows = FULL_ROWS if args.full else args.rows
    predictor = load_predictor()

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as temporary:
        folder = Path(temporary) / "input"
        folder.mkdir()
        started = time.perf_counter()
        bad = write_parquet_files(folder, rows, args.files)
        generate_seconds = time.perf_counter() - started
        input_mb = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
        runs: dict[int, list[dict]] = {workers: [] for workers in WORKER_COUNTS}
        for _ in range(args.runs):
            for workers in WORKER_COUNTS:
                run = run_once(folder, workers, predictor)
                if (run["scored"], run["rejected"]) != (rows - bad, bad):
                    print(f"dask_score: wrong counts: {run}", file=sys.stderr)
                    return 1
                runs[workers].append(run)

    rates = {w: [rows / run["seconds"] for run in runs[w]] for w in WORKER_COUNTS}
    report = {
        "rows": rows,
        "files": args.files,
        "rejected_rows": bad,
        "runs": args.runs,
        "input_mb": round(input_mb, 1),
        "generate_seconds": round(generate_seconds, 2),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "by_workers": {
            str(w): {
                "partitions": runs[w][0]["partitions"],
                "seconds": summarise([run["seconds"] for run in runs[w]]),
                "rows_per_second": summarise(rates[w]),
                "peak_rss_mb_per_worker": max(max(r["peak_rss_mb_per_worker"]) for r in runs[w]),
                "idle_rss_mb_per_worker": max(max(r["idle_rss_mb_per_worker"]) for r in runs[w]),
                "cluster_start_seconds": summarise([r["cluster_start_seconds"] for r in runs[w]]),
                "output_mb": round(runs[w][0]["output_mb"], 1),
            }
            for w in WORKER_COUNTS
        },
        "scaling_2_over_1": summarise(
            [two / one for one, two in zip(rates[1], rates[2], strict=True)]
        ),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def print_table(report: dict) -> None:
    """Print the figures of *report* for a person: rows/s, memory, scaling."""
    print(
        f"Distributed scoring: {report['rows']:,} rows in {report['files']} Parquet files "
        f"({report['input_mb']:.0f} MB, {report['rejected_rows']} rejected), {report['runs']} "
        f"rounds of 1 and 2 workers; {report['cpus']} CPUs, "
        f"load average {report['load_average_1min']:.1f}"
    )
    print(f"{'':<28}{'min':>12}{'median':>12}{'max':>12}")
    for w in WORKER_COUNTS:
        figures = report["by_workers"][str(w)]
        rate = figures["rows_per_second"]
        print(f"{f'{w} worker(s): rows/s':<28}"
              + "".join(f"{rate[k]:>12,.0f}" for k in ("min", "median", "max")))  # fmt: skip
        idle = figures["idle_rss_mb_per_worker"]
        print(f"{f'{w} worker(s): peak RSS MB':<28}{figures['peak_rss_mb_per_worker']:>36.0f}"
              f"  (per worker, the largest; {idle:.0f} idle)")  # fmt: skip
    scaling = report["scaling_2_over_1"]
    print(f"{'scaling, 2 over 1 workers':<28}"
          + "".join(f"{scaling[k]:>12.2f}" for k in ("min", "median", "max")))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
