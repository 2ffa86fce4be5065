#!/usr/bin/env python
"""Download the training CSV from a URL (https:// or file://) and verify its sha256.

Usage: python scripts/fetch_data.py URL DESTINATION SHA256

The file is written beside DESTINATION under a temporary name and renamed into
place only when its checksum matches, so a failed or tampered download leaves
nothing behind.
"""

import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path


def fetch(url: str, destination: Path, expected_sha256: str) -> None:
    """Download *url* to *destination* if its sha256 is *expected_sha256*, else raise."""
    handle, staged = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as answer:
            for block in iter(lambda: answer.read(1 << 16), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected_sha256:
            raise ValueError(f"sha256 of {url} is {digest.hexdigest()}, expected {expected_sha256}")
        os.chmod(staged, 0o644)
        os.replace(staged, destination)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2])
    url, destination, expected = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    try:
        fetch(url, destination, expected)
    except (OSError, ValueError) as exc:
        sys.exit(f"Error: cannot fetch {url}: {exc}")
    print(f"{destination} verified (sha256 {expected[:12]}...)")


if __name__ == "__main__":
    main()
