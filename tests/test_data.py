"""`make data`'s fetch script: verified download, or an error and no file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHA256 = "b231c5d71bc75cd71bc70fa34d9647401a5ad7e120a18be1ad4e49236e15ea10"


def fetch(url: str, destination, sha256: str = SHA256):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_data.py"), url, str(destination), sha256],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_verified_file_url_is_put_in_place(tmp_path, data_file):
    result = fetch(data_file.as_uri(), tmp_path / "htwtmlb.csv")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "htwtmlb.csv").read_bytes() == data_file.read_bytes()
    assert list(tmp_path.iterdir()) == [tmp_path / "htwtmlb.csv"]


def test_a_checksum_mismatch_is_an_error_and_leaves_no_file(tmp_path):
    tampered = tmp_path / "source.csv"
    tampered.write_text("Weight,Height\n200,74\n")
    target = tmp_path / "out" / "htwtmlb.csv"
    target.parent.mkdir()
    result = fetch(tampered.as_uri(), target)
    assert result.returncode == 1
    assert "sha256" in result.stderr and "Traceback" not in result.stderr
    assert list(target.parent.iterdir()) == []


def test_an_unreachable_url_is_an_error_and_leaves_no_file(tmp_path):
    result = fetch((tmp_path / "absent.csv").as_uri(), tmp_path / "htwtmlb.csv")
    assert result.returncode == 1 and "cannot fetch" in result.stderr.lower()
    assert list(tmp_path.iterdir()) == []
