"""Shared fixtures: a model trained into a temporary folder, the app, and a real gunicorn."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import mlib
from app import create_app

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "htwtmlb.csv"


@pytest.fixture(scope="session")
def data_file() -> Path:
    if not DATA.exists():
        pytest.fail("htwtmlb.csv is missing: run `make data` (make test does it for you).")
    return DATA


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, data_file) -> Path:
    """Train once per run into a temporary folder; tests never touch the committed model."""
    model_file = tmp_path_factory.mktemp("model") / "model.joblib"
    mlib.train(data_file, model_file)
    return model_file


@pytest.fixture
def model_copy(tmp_path, trained_model) -> Path:
    """A private copy of the trained pair that a test may tamper with."""
    for source in (trained_model, mlib.metadata_path(trained_model)):
        shutil.copy2(source, tmp_path / source.name)
    return tmp_path / trained_model.name


def break_model(model_file: Path, fault: str) -> Path:
    """Damage the model pair at *model_file* as *fault* says; return the path to load."""
    metadata_file = mlib.metadata_path(model_file)
    if fault in ("missing", "directory"):
        model_file.unlink()
        if fault == "directory":
            model_file.mkdir()
    elif fault == "empty":
        model_file.write_bytes(b"")
    elif fault == "truncated":
        model_file.write_bytes(model_file.read_bytes()[:100])
    elif fault == "tampered":
        model_file.write_bytes(b"\x80\x04tampered")
    elif fault == "metadata missing":
        metadata_file.unlink()
    elif fault == "metadata truncated":
        metadata_file.write_text(metadata_file.read_text()[:50])
    elif fault == "metadata empty":
        metadata_file.write_text("")
    elif fault == "path is a folder":
        return model_file.parent
    else:
        raise ValueError(f"unknown fault {fault!r}")
    return model_file


@pytest.fixture
def app(trained_model):
    return create_app({"MODEL_PATH": str(trained_model), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(model_file: Path, port: int, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MODEL_PATH": str(model_file), "PORT": str(port), **extra}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def start_gunicorn(model_file: Path, tmp_dir: Path, **extra: str):
    """Start a real gunicorn on a free 127.0.0.1 port; return (process, base_url)."""
    port = free_port()
    env = server_env(model_file, port, WEB_CONCURRENCY="2", **extra)
    with open(tmp_dir / f"gunicorn-{port}.log", "wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{port}", "app:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    wait_until_ready(base_url, process)
    return process, base_url


def wait_until_ready(base_url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if requests.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} was not ready within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def live_server(trained_model, tmp_path_factory):
    """A real gunicorn with two workers serving the trained model; yields its base URL."""
    process, base_url = start_gunicorn(trained_model, tmp_path_factory.mktemp("server"))
    yield base_url
    stop(process)


@pytest.fixture
def gunicorn(tmp_path):
    """Start real gunicorns for model files (``gunicorn(model_file)`` -> base URL); stop them."""
    processes = []

    def start(model_file: Path, **extra: str) -> str:
        process, base_url = start_gunicorn(model_file, tmp_path, **extra)
        processes.append(process)
        return base_url

    yield start
    for process in processes:
        stop(process)
