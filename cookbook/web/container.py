"""The image's entrypoint: run the command given, or, for ``serve``, SageMaker's way.

SageMaker starts a container as ``docker run IMAGE serve`` and expects the server on port
8080. When ``SM_MODEL_DIR`` (default ``/opt/ml/model``, where SageMaker unpacks the model
artefact) holds a model pair (``model.joblib`` and its ``model.json``), ``serve`` serves
that pair, verified exactly as ``MODEL_PATH`` is, so a tampered pair is refused at start;
otherwise the image's own model. Any other command runs as given: the image's default
``CMD`` starts the production server as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cookbook.core.layout import ENTRY_MODEL, metadata_path

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT = "8080"


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


def main(argv: list[str]) -> None:
    """Replace this process with the command *argv* (``serve``: the production server)."""
    if not argv:
        argv = [sys.executable, "-m", "cookbook.web.server"]
    if argv == ["serve"]:
        env = sagemaker_environment(dict(os.environ))
        os.execvpe(sys.executable, [sys.executable, "-m", "cookbook.web.server"], env)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
