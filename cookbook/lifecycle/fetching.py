"""Download a data file (https:// or file://) atomically, with its sha256 checked or reported.

Standard library only: ``make data`` runs it before the virtualenv exists. The file is
written beside its destination under a temporary name and renamed into place only when
the download is complete (and, when a checksum is expected, matches it), so a failed or
tampered download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from cookbook.core.errors import MlibError

FETCH_TIMEOUT_SECONDS = 60


class FetchError(MlibError):
    """The data could not be downloaded, or is not the file that was expected."""


def fetch(url: str, destination: Path, expected_sha256: str | None = None) -> str:
    """Download *url* to *destination*; return its sha256.

    Raise ``FetchError`` when the download fails or its sha256 is not *expected_sha256*
    (when given); *destination* is then left as it was.
    """
    destination = Path(destination)
    handle, staged = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        digest = hashlib.sha256()
        with (os.fdopen(handle, "wb") as out,
              urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as answer):  # fmt: skip
            for block in iter(lambda: answer.read(1 << 16), b""):
                digest.update(block)
                out.write(block)
        sha256 = digest.hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise FetchError(f"sha256 of {url} is {sha256}, expected {expected_sha256}.")
        os.chmod(staged, 0o644)
        os.replace(staged, destination)
        return sha256
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise FetchError(f"Cannot fetch {url}: {getattr(exc, 'reason', exc)}.") from None
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
