"""scripts/docker_smoke.sh fails loudly; `.ci/run` runs it against a real engine.

The success path needs a Docker engine and runs in `make docker-smoke`; here a stand-in `docker`
drives the failure paths, which must exit non-zero with one clear line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "docker_smoke.sh"


def run_with_docker(tmp_path: Path, docker_script: str, *args: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\n" + docker_script)
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("docker_script", "message"),
    [
        ("exit 1\n", "no Docker engine answers"),
        ('[ "$1" = info ] && exit 0\nexit 1\n', "docker build failed"),
    ],
)
def test_failures_exit_non_zero_with_one_clear_line(tmp_path, docker_script, message):
    result = run_with_docker(tmp_path, docker_script)
    assert result.returncode == 1
    assert f"docker-smoke: FAIL: {message}" in result.stderr


def test_an_image_that_runs_as_root_is_refused(tmp_path):
    inspect = (
        'case "$*" in\n'
        '  *"{{.Size}}"*) echo 1000000 ;;\n'
        '  *"{{.Config.User}}"*) echo "" ;;\n'
        "esac\n"
        "exit 0\n"
    )
    result = run_with_docker(tmp_path, inspect, "--no-build", "some/image")
    assert result.returncode == 1
    assert "image runs as root" in result.stderr
