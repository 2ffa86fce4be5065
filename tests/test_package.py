"""The package installs and runs outside the checkout: `pip install .` into a fresh
virtualenv serves the model, the page and its static files from site-packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import requests
from helpers import ANSWER_200_LBS, ROOT, free_port, server_env, stop, wait_until_ready

CHECK = """
import json, sys
from pathlib import Path
import cookbook
from cookbook.web.factory import create_app

client = create_app({"MODEL_PATH": sys.argv[1]}).test_client()
page = client.get("/")
script = client.get("/static/page.js")
answer = client.post("/predict", json={"Weight": 200})
print(json.dumps({
    "package": str(Path(cookbook.__file__).resolve()),
    "page": [page.status_code, "predict-form" in page.get_data(as_text=True)],
    "script": [script.status_code, len(script.get_data())],
    "answer": answer.get_json(),
}))
script.close()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the package's wheel installed (its dependencies borrowed from
    the test environment, so nothing is downloaded); return its python."""
    folder = tmp_path_factory.mktemp("installed")
    wheels = folder / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300, cwd=folder,
    )  # fmt: skip
    venv.EnvBuilder(with_pip=True).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # The dependencies, not the project: the test environment's site-packages.
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = wheels.glob("mlops_cookbook-*.whl")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)  # fmt: skip
    return python


def test_the_installed_package_serves_the_page_and_predictions(installed, trained_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODEL_PATH")}
    result = subprocess.run([installed, "-c", CHECK, str(trained_model)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert not Path(found["package"]).is_relative_to(ROOT)  # site-packages, not the checkout
    assert found["page"] == [200, True]
    assert found["script"][0] == 200 and found["script"][1] > 0
    assert found["answer"]["prediction"] == ANSWER_200_LBS


def test_the_installed_server_script_serves(installed, trained_model, tmp_path):
    port = free_port()
    env = server_env(trained_model, port)
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen([installed.parent / "cookbook-serve"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, process)
        answer = requests.post(f"{base_url}/predict", json={"Weight": 200}, timeout=10)
        assert answer.json()["prediction"] == ANSWER_200_LBS
    finally:
        stop(process)
