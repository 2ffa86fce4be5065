"""Load a server with wrk (Debian's ``wrk`` package): 16 connections, bounded in time."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

CONNECTIONS = 16


def post_script(folder: Path, body: dict, name: str = "post.lua") -> Path:
    """Write a wrk script that POSTs *body* as JSON on every request; return its path."""
    text = json.dumps(body).replace("\\", "\\\\").replace("'", "\\'")
    script = Path(folder) / name
    script.write_text(
        f"wrk.method = \"POST\"\nwrk.body = '{text}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def wrk(url: str, script: Path, headers: dict[str, str], seconds: int) -> tuple[float, float]:
    """Run wrk for *seconds* at 16 connections; return (requests/s, p99 ms)."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()
    p99_ms = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed responses:\n{output}")
    return rate, p99_ms
