"""The Open Inference Protocol's own clients against the running production server.

``tritonclient.http`` and KServe's ``InferenceRESTClient`` run unchanged, from a virtualenv
of their own (KServe's SDK pins pandas<3, which the service cannot share). The test makes
that virtualenv once, in ``.venv-clients`` beside the project, and makes it again only when
``tests/protocol_clients/requirements.txt`` changes; the clients only speak HTTP.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import requests
from helpers import ANSWER_180_LBS, ANSWER_200_LBS, ROOT, start_server, stop

import mlib

CLIENTS = ROOT / "tests" / "protocol_clients"
VENV = ROOT / ".venv-clients"


@pytest.fixture(scope="session")
def clients_python() -> str:
    requirements = CLIENTS / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker = VENV / ".requirements-sha256"
    python = VENV / "bin" / "python"
    if not (marker.exists() and marker.read_text() == digest and python.exists()):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
                       check=True, timeout=900)  # fmt: skip
        marker.write_text(digest)
    return str(python)


@pytest.fixture(scope="module")
def conversation(clients_python, live_server) -> dict:
    result = subprocess.run([clients_python, str(CLIENTS / "talk.py"), live_server, "mlb-height"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def heights(*answers: dict) -> list[float]:
    return [answer["height_inches"] for answer in answers]


def test_tritonclient_speaks_to_the_service(conversation, trained_model):
    triton = conversation["triton"]
    assert triton["live"] and triton["ready"] and triton["model_ready"]
    version = mlib.read_metadata(trained_model)["model_version"]
    assert triton["metadata"]["name"] == "mlb-height"
    assert triton["metadata"]["versions"] == [version]
    assert [i["name"] for i in triton["metadata"]["inputs"]] == ["Weight"]
    assert triton["height_inches"][:2] == heights(ANSWER_180_LBS, ANSWER_200_LBS)
    assert triton["human"][:2] == [ANSWER_180_LBS["height_human_readable"],
                                   ANSWER_200_LBS["height_human_readable"]]  # fmt: skip
    assert triton["id"] == "triton-1"
    assert triton["unknown_model_status"] == "404"


def test_kserves_rest_client_speaks_to_the_service(conversation):
    kserve = conversation["kserve"]
    assert kserve["live"] and kserve["ready"] and kserve["model_ready"]
    assert kserve["height_inches"] == heights(ANSWER_200_LBS, ANSWER_180_LBS)
    assert kserve["human"] == [ANSWER_200_LBS["height_human_readable"],
                               ANSWER_180_LBS["height_human_readable"]]  # fmt: skip
    assert kserve["id"] == "ks-1"


def test_tritonclient_reads_a_classifiers_label_and_probabilities(clients_python, classifier,
                                                                  tmp_path):  # fmt: skip
    model_file = classifier("multiclass", "hist-gradient-boosting")
    schema = mlib.read_metadata(model_file)["schema"]
    rows = {f["name"]: [f["example"], *f["batch_example"]] for f in schema["features"]}
    process, base_url = start_server(model_file, tmp_path)
    try:
        result = subprocess.run([clients_python, str(CLIENTS / "talk.py"), base_url,
                                 schema["name"], json.dumps(rows)],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        expected = requests.post(f"{base_url}/predict", json=rows, timeout=10).json()
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    classes = schema["target"]["classes"]
    assert answer["metadata"]["parameters"]["classes"] == classes
    predictions = expected["predictions"]
    assert answer["label"] == [p["label"] for p in predictions]
    # The client reshapes the flattened data by the tensor's shape: one row per input row.
    assert answer["probabilities"] == [[p["probabilities"][c] for c in classes]
                                       for p in predictions]  # fmt: skip
