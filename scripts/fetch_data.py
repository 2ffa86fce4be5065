#!/usr/bin/env python
"""Download the training CSV from a URL (https:// or file://) and verify its sha256.

Usage: python scripts/fetch_data.py URL DESTINATION SHA256

Runs before the virtualenv exists (``make data``): the download itself is
``cookbook.lifecycle.fetching``, standard library only.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cookbook.lifecycle.fetching import FetchError, fetch  # noqa: E402


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2])
    url, destination, expected = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    try:
        fetch(url, destination, expected)
    except FetchError as exc:
        sys.exit(f"Error: {exc}")
    print(f"{destination} verified (sha256 {expected[:12]}...)")


if __name__ == "__main__":
    main()
