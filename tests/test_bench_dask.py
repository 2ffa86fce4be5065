"""bench/dask_score.py runs end to end on small files (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project, where bench/ is


def test_bench_scores_small_parquet_files_with_1_and_2_workers():
    result = subprocess.run(
        [sys.executable, "bench/dask_score.py", "--rows", "3000", "--files", "3", "--runs", "1",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 3000 and report["rejected_rows"] == 1
    for workers in ("1", "2"):
        figures = report["by_workers"][workers]
        assert figures["rows_per_second"]["min"] > 0 and figures["peak_rss_mb_per_worker"] > 0
    assert report["scaling_2_over_1"]["median"] > 0
