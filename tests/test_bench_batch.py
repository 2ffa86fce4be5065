"""bench/batch_csv.py runs end to end on a small CSV (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the project, where cli.py is


@pytest.mark.parametrize(("flags", "rejected"), [([], 1), (["--messy"], 3)])
def test_bench_scores_a_small_csv_through_the_real_cli(flags, rejected):
    result = subprocess.run(
        [sys.executable, "bench/batch_csv.py", "--rows", "2500", "--runs", "1", "--json", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 2500 and report["rejected_rows"] == rejected
    assert report["peak_rss_mb"]["max"] > 0 and report["wall_seconds"]["min"] > 0
