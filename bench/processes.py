"""The servers a benchmark starts: free ports, their processes and their memory."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """Return a port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_pids(master: subprocess.Popen) -> list[int]:
    """A server's processes: its master, then its workers."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [master.pid, *map(int, children)]


def worker_pss_mb(master: subprocess.Popen) -> list[float]:
    """Proportional set size of each worker of a server, MB (shared pages split between sharers)."""
    sizes = []
    for pid in server_pids(master)[1:]:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        sizes.append(int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1)) / 1024)
    return sizes


def cpu_seconds(master: subprocess.Popen) -> float:
    """CPU time (user and system) used so far by a server: its master and its workers."""
    total = 0
    for pid in server_pids(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")
