"""Time ``python cli.py --weight 180`` against ``python -c 'import click, json, pathlib'``.

``python bench/cli_startup.py [--runs 20]`` prints each command's median wall time and the
ratio of the two (the issue's target: at most 1.5), and the same for CPU time (user plus
system), which other work on a shared machine disturbs less. The commands run interleaved,
one of each per round, so a busy machine slows both alike. Two settings are measured:

- as this environment runs them: with ``PYTHONDONTWRITEBYTECODE=1`` (the Dockerfile sets it)
  and no ``__pycache__`` beside the sources, the project's modules compile on every start;
- with bytecode cached, as after a normal first run or ``python -m compileall``: the cache
  goes to a temporary ``PYTHONPYCACHEPREFIX``, so the source tree is not written to.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import click, json, pathlib"]
PREDICTION = [sys.executable, "cli.py", "--weight", "180"]


def seconds_to_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Return the wall and CPU seconds *command* took, run from the project's folder."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    """Print the medians in milliseconds and the ratios, for both settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="Runs of each command.")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as cache:
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        settings = {"this environment": dict(os.environ),
                    "bytecode cached": {**cached, "PYTHONPYCACHEPREFIX": cache}}  # fmt: skip
        commands = {"import click, json, pathlib": BASELINE, "cli.py --weight 180": PREDICTION}
        times: dict[tuple[str, str], list[tuple[float, float]]] = {
            (setting, name): [] for setting in settings for name in commands
        }
        for env in settings.values():  # warm the file cache; write the bytecode cache
            for command in commands.values():
                seconds_to_run(command, env)
        for _ in range(runs):
            for setting, env in settings.items():
                for name, command in commands.items():
                    times[setting, name].append(seconds_to_run(command, env))
    for setting in settings:
        for index, clock in enumerate(("wall", "CPU")):
            base_ms, cli_ms = (statistics.median(t[index] for t in times[setting, name]) * 1000
                               for name in commands)  # fmt: skip
            print(f"{setting}, {clock} (medians of {runs}): import click, json, pathlib "
                  f"{base_ms:.1f} ms; cli.py --weight 180 {cli_ms:.1f} ms; "
                  f"ratio {cli_ms / base_ms:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
