"""The image's entrypoint: no arguments or ``serve`` start the server, ``predict`` and ``batch``
run ``cli.py``, anything else runs as given.

Here the entrypoint runs on this machine; `make docker-smoke` runs the same commands in the
real image and compares them with ``python cli.py`` byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT

from cookbook.web.container import CLI_SCRIPT, command_for

PYTHON = sys.executable
CLI = str(ROOT / "cli.py")
SERVER = [PYTHON, "-m", "cookbook.web.server"]


@pytest.mark.parametrize(
    ("argv", "command"),
    [([], SERVER),
     (["serve"], SERVER),
     (["predict", "--weight", "180"], [PYTHON, CLI, "--weight", "180"]),
     (["predict"], [PYTHON, CLI]),
     (["batch"], [PYTHON, CLI, "--input", "-"]),
     (["batch", "--column", "lbs"], [PYTHON, CLI, "--input", "-", "--column", "lbs"]),
     (["python", "-m", "cookbook.web.server"], ["python", "-m", "cookbook.web.server"]),
     (["serve", "--verbose"], ["serve", "--verbose"]),
     (["predictions"], ["predictions"])],
    ids=["no-arguments", "serve", "predict", "predict-prompts", "batch", "batch-options",
         "image-cmd", "serve-with-arguments", "other-verb"],
)  # fmt: skip
def test_arguments_pick_the_command(argv, command):
    assert command_for(argv, python=PYTHON) == command


def test_the_cli_is_the_script_the_image_copies():
    # The Dockerfile's `COPY *.py` puts cli.py beside the cookbook package, as here.
    assert CLI_SCRIPT == ROOT / "cli.py" and CLI_SCRIPT.is_file()


def run(command: list[str], stdin: str | None, model_file) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODEL_PATH": str(model_file)}
    return subprocess.run(
        command, input=stdin, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("argv", "stdin", "exit_code"),
    [(["predict", "--weight", "180"], None, 0),
     (["predict", "--weight", "200", "--json"], None, 0),
     (["predict", "--weight", "heavy"], None, 2),
     (["predict", "--weight", "-5"], None, 2),
     (["batch"], "Weight\n180\n200\n250\n", 0),
     (["batch"], "Weight\n180\nheavy\n", 3),
     (["batch"], "Height\n70\n", 1)],
    ids=["predict", "predict-json", "predict-not-a-number", "predict-out-of-range",
         "batch", "batch-with-a-reject", "batch-wrong-column"],
)  # fmt: skip
def test_predict_and_batch_answer_as_cli_py_does(trained_model, argv, stdin, exit_code):
    verb, *rest = argv
    cli_arguments = rest if verb == "predict" else ["--input", "-", *rest]
    container = run([PYTHON, "-m", "cookbook.web.container", *argv], stdin, trained_model)
    direct = run([PYTHON, CLI, *cli_arguments], stdin, trained_model)
    assert (container.returncode, container.stdout, container.stderr) == (
        direct.returncode, direct.stdout, direct.stderr
    )  # fmt: skip
    assert container.returncode == exit_code, container.stderr
    if exit_code == 0:
        assert "6 foot" in container.stdout
