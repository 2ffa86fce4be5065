"""The Dockerfile and .dockerignore say what the issue asks; `make docker-smoke` runs the image.

These checks read the files (no engine needed); scripts/docker_smoke.sh builds and curls the
real image, and the Kubernetes tests check the manifests against the facts read here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import (
    ROOT,
    arguments_of,
    dockerfile_instructions,
    exposed_port,
    final_stage,
    service_uid,
)


def test_base_image_is_an_argument_with_a_pinned_default():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")
    froms = arguments_of("FROM", instructions)
    assert len(froms) == 2, "a build stage and a final stage"
    assert all(f.split()[0] == "${BASE_IMAGE}" for f in froms)


def test_build_stage_installs_the_pinned_requirements_into_a_virtualenv():
    build = dockerfile_instructions()[: len(dockerfile_instructions()) - len(final_stage())]
    runs = " ".join(arguments_of("RUN", build))
    assert "-m venv" in runs
    assert "--only-binary=:all:" in runs, "wheels only: no compiler is ever needed"
    assert "-r /tmp/requirements-serve.txt" in runs
    for name in ("requirements-serve.txt", "requirements-tools.txt"):
        assert all(
            line.split("==")[0] and "==" in line
            for line in (ROOT / name).read_text().splitlines()
            if line and not line.startswith("#")
        ), f"{name} pins every dependency"
    included = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#")]  # fmt: skip
    assert included == ["-r requirements-serve.txt", "-r requirements-tools.txt"]


def test_final_stage_copies_only_the_virtualenv_and_the_service_files():
    copies = arguments_of("COPY")
    assert copies == [
        "--from=build /opt/service-venv /opt/service-venv",
        "*.py model.joblib model.json ./",
        "cookbook/ cookbook/",  # the package, the page's templates/ and static/ inside it
    ]
    for folder in ("templates", "static"):  # the page at / renders from these two folders
        assert any((ROOT / "cookbook" / "web" / folder).iterdir()), folder
    assert not any("apt-get" in run or "pip" in run for run in arguments_of("RUN"))


def test_every_module_the_service_imports_ships_with_the_copies(trained_model):
    # `COPY *.py` takes top-level modules only and `COPY cookbook/` the package: code in any
    # other folder would be left out, and so would the handler .dockerignore keeps out.
    # A fresh interpreter builds the app, so only what the service itself imports counts.
    code = (
        "import json, sys, app; app.create_app({'MODEL_PATH': sys.argv[1]}); "
        "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(trained_model)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    files = [Path(name).resolve() for name in json.loads(result.stdout) if name]
    local = {p for p in files if p.is_relative_to(ROOT) and ".venv" not in p.parts}
    names = {p.relative_to(ROOT).as_posix() for p in local}
    assert {"app.py", "cookbook/web/payload.py", "cookbook/web/openapi.py"} <= names
    assert {"cookbook/core/prediction.py", "cookbook/web/views.py"} <= names
    package = ROOT / "cookbook"
    assert all(
        (p.parent == ROOT or p.is_relative_to(package)) and p.suffix == ".py" for p in local
    ), local
    assert "cookbook/web/lambda_handler.py" not in names  # .dockerignore leaves it out


# Run with the training and batch tools made unimportable, as they are in the image: every
# committed model (folded, category, trees from ONNX, classifier) answers and explains, and
# the server, the image's entrypoint and cli.py's batch scoring import.
WITHOUT_TOOLS = """
import importlib.abc, json, sys
TOOLS = set(json.loads(sys.argv[1]))
class NoTools(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in TOOLS:
            raise ImportError(f"{name} is not in the image")
sys.meta_path.insert(0, NoTools())
import cookbook.web.server, cookbook.web.container, cookbook.lifecycle.batch
from app import create_app
for model in json.loads(sys.argv[2]):
    config = {"MODEL_PATH": model, "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}}
    client = create_app(config).test_client()
    body = {"Weight": 200, "Age": 28, "Height": 74, "Position": "Catcher", "explain": True}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, (model, answer.get_json())
    assert "explanation" in json.dumps(answer.get_json()), model
print("served", len(json.loads(sys.argv[2])), "models")
"""


def test_the_serving_requirements_serve_and_explain_every_committed_model():
    tools = [line.split("==")[0].split("[")[0]
             for line in (ROOT / "requirements-tools.txt").read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    assert {"dask", "distributed", "pyarrow", "onnx", "skl2onnx", "onnxmltools"} == set(tools)
    models = [str(ROOT / "model.joblib")] + [
        str(ROOT / "examples" / name / "model.joblib")
        for name in ("height-by-position", "height-gbm", "pitcher-classifier")
    ]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TOOLS, json.dumps(tools), json.dumps(models)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "served 4 models"


def test_runs_the_production_server_as_a_non_root_user_on_port_8080():
    assert service_uid() > 0
    assert exposed_port() == 8080
    assert "PORT=8080" in " ".join(arguments_of("ENV"))
    (cmd,) = arguments_of("CMD")
    assert json.loads(cmd) == ["python", "-m", "cookbook.web.server"]
    # The entrypoint runs the command it is given (CMD by default); `serve` is SageMaker's.
    (entrypoint,) = arguments_of("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", "cookbook.web.container"]


def test_the_entrypoint_runs_any_command_as_given():
    result = subprocess.run(
        [sys.executable, "-m", "cookbook.web.container", sys.executable, "-c", "print(6 * 7)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "42\n"


def test_healthcheck_asks_health_with_python(client):
    (healthcheck,) = arguments_of("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "/health" in command[2] and "PORT" in command[2]
    assert client.get("/health").status_code == 200


def test_dockerignore_keeps_tests_data_caches_and_git_out():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: nothing enters the build context unless named"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {"requirements-serve.txt", "*.py", "model.joblib", "model.json", "cookbook/"}
    for excluded in ("tests/", "*.csv", "*.ipynb", ".git", ".venv", "**/__pycache__"):
        assert excluded in lines
