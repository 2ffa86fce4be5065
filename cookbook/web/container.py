"""The image's entrypoint: the server, SageMaker's ``serve``, or ``cli.py`` as a container.

``docker run IMAGE`` runs the image's ``CMD`` (the production server). The first argument
picks anything else:

``serve``
    SageMaker's start (``docker run IMAGE serve``): the server on port 8080. When
    ``SM_MODEL_DIR`` (default ``/opt/ml/model``, where SageMaker unpacks the model artefact)
    holds a model pair (``model.joblib`` and its ``model.json``), that pair, verified exactly
    as ``MODEL_PATH`` is, so a tampered pair is refused at start; otherwise the image's own.
``predict ARGS...``
    ``python cli.py ARGS...``: ``docker run IMAGE predict --weight 180`` prints what
    ``python cli.py --weight 180`` prints, with the same exit code.
``batch ARGS...``
    ``python cli.py --input - ARGS...``: ``docker run -i IMAGE batch < rows.csv`` scores the
    CSV on stdin (a header row naming the model's features, e.g. ``Weight``) and writes the
    predictions as CSV on stdout, rejects and the summary on stderr, exactly as ``cli.py``.

Any other command runs as given. Each replaces this process (``exec``), so signals and the
exit code are the command's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cookbook.core.layout import ENTRY_MODEL, metadata_path
from cookbook.core.settings import PROJECT_ROOT

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT = "8080"
# The one-row and batch CLI, beside the package as the Dockerfile copies it (/app/cli.py).
CLI_SCRIPT = PROJECT_ROOT / "cli.py"
STDIN = "-"


def sagemaker_environment(environ: dict[str, str]) -> dict[str, str]:
    """Return the environment ``serve`` runs the server with."""
    env = dict(environ)
    env["PORT"] = SAGEMAKER_PORT
    env.setdefault("HOST", "0.0.0.0")
    model_dir = Path(env.get("SM_MODEL_DIR") or SAGEMAKER_MODEL_DIR)
    model = model_dir / ENTRY_MODEL
    if model.exists() or metadata_path(model).exists():
        env["MODEL_PATH"] = str(model)  # verified (or refused) by the server as MODEL_PATH is
    return env


def command_for(argv: list[str], python: str = sys.executable) -> list[str]:
    """Return the command line the container's arguments *argv* stand for."""
    if not argv or argv == ["serve"]:
        return [python, "-m", "cookbook.web.server"]
    verb, *rest = argv
    if verb == "predict":
        return [python, str(CLI_SCRIPT), *rest]
    if verb == "batch":
        return [python, str(CLI_SCRIPT), "--input", STDIN, *rest]
    return argv


def main(argv: list[str]) -> None:
    """Replace this process with the command *argv* stands for (see the module docstring)."""
    command = command_for(argv)
    if argv == ["serve"]:
        os.execvpe(command[0], command, sagemaker_environment(dict(os.environ)))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
