"""The servers a benchmark starts: free ports, their processes and their memory."""

from __future__ import annotations

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
