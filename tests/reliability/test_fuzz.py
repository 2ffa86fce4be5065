"""1. Fuzz: schemathesis against /openapi.json — no 5xx, responses match the schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import log_lines, server

pytestmark = pytest.mark.reliability
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
MAX_EXAMPLES = 300


def test_fuzz_the_openapi_document(trained_model, tmp_path):
    with server(trained_model, tmp_path, ADMIN_TOKEN="fuzz-admin") as (_, base_url, log):
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
            "run", f"{base_url}/openapi.json", "--checks", "all", "--max-examples",
            str(MAX_EXAMPLES), "--seed", "20261125", "--no-color", "--request-timeout", "10",
        ]  # fmt: skip
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                                timeout=600)  # fmt: skip
    summary = re.search(r"(\d+) generated, (.+)", result.stdout)
    served = [line for line in log_lines(log) if line.get("logger") == "app.requests"]
    server_errors = [line for line in served if line["status"] >= 500]
    print(f"\n[reliability] fuzz: {summary.group(0) if summary else 'no summary'}; "
          f"{len(served)} requests served, {len(server_errors)} answered 5xx")  # fmt: skip
    # The findings come before the long list of statuses that ends the report.
    findings = result.stdout[result.stdout.find("FAILURES") :][:6000]
    assert result.returncode == 0, findings or result.stdout[-4000:]
    assert summary and int(summary.group(1)) > 0
    assert served and not server_errors
