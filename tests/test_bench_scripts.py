"""Every script `make bench` runs imports: a name moved between bench modules fails here,
not twenty minutes into a benchmark run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# The baseline app runs in its own virtualenv (FastAPI), made by bench/hot_path.py.
OWN_VIRTUALENV = {"fastapi_baseline"}
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in OWN_VIRTUALENV)


def test_make_bench_runs_scripts_that_are_all_here():
    makefile = (BENCH.parent / "Makefile").read_text()
    run = {line.split("bench/")[1].split(".py")[0] for line in makefile.splitlines()
           if "$(BIN)/python bench/" in line}  # fmt: skip
    assert run and run <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_imports(script):
    # In a process of its own, from bench/ as `python bench/SCRIPT.py` runs it.
    done = subprocess.run([sys.executable, "-c", f"import {script}"], cwd=BENCH,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
