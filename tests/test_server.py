"""End to end: the real production server on a free 127.0.0.1 port, real HTTP, the CLIs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from helpers import (
    ANSWER_180_LBS,
    ANSWER_200_LBS,
    ANSWER_250_LBS,
    ROOT,
    break_model,
    free_port,
    run_script,
    server_env,
)

from cookbook.web.payload import BODY_TOO_LARGE


def test_curl_shape_without_content_type(live_server):
    response = requests.post(f"{live_server}/predict", data='{"Weight": 200}', timeout=5)
    assert response.status_code == 200
    assert response.json() == {"prediction": ANSWER_200_LBS}
    assert response.headers["X-Model-Version"]


def test_batch_over_http(live_server):
    response = requests.post(f"{live_server}/predict", json={"Weight": [180, 200, 250]}, timeout=5)
    assert [p["height_inches"] for p in response.json()["predictions"]] == [
        a["height_inches"] for a in (ANSWER_180_LBS, ANSWER_200_LBS, ANSWER_250_LBS)
    ]


def test_errors_over_http_are_json(live_server):
    response = requests.post(f"{live_server}/predict", data='{"Weight": NaN}', timeout=5)
    assert response.status_code == 400 and "NaN" in response.json()["error"]
    huge = b'{"Weight": [' + b"200," * 400_000 + b"200]}"
    response = requests.post(f"{live_server}/predict", data=huge, timeout=10)
    assert response.status_code == 413 and response.json() == {"error": BODY_TOO_LARGE}


def test_metrics_add_up_across_workers(live_server):
    def served() -> float:
        text = requests.get(f"{live_server}/metrics", timeout=5).text
        return float(text.split("\npredictions_total ")[1].split()[0])

    before = served()
    with requests.Session() as session:  # sync workers close each connection: both serve
        for _ in range(40):
            session.post(f"{live_server}/predict", json={"Weight": 200}, timeout=5)
    assert served() - before == 40


def test_utilscli_predict_against_the_server(live_server):
    result = run_script("utilscli.py", "predict", "--weight", "200",
                        "--host", f"{live_server}/predict", env={})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6 foot, 2 inches"


def test_utilscli_predict_reads_predict_url(live_server):
    result = run_script("utilscli.py", "predict", "--weight", "180", "--json",
                        env={"PREDICT_URL": f"{live_server}/predict"})  # fmt: skip
    assert result.returncode == 0 and '"height_inches": 72.4' in result.stdout


def test_utilscli_predict_shows_the_api_error(live_server):
    # 1000 is a valid CLI weight; an API error is shown the same way whatever its cause.
    result = run_script("utilscli.py", "predict", "--weight", "200",
                        "--host", f"{live_server}/nowhere", env={})  # fmt: skip
    assert result.returncode == 1
    assert "answered 404" in result.stderr and "Traceback" not in result.stderr


def test_utilscli_predict_against_a_dead_host():
    dead = f"http://127.0.0.1:{free_port()}/predict"
    result = run_script("utilscli.py", "predict", "--weight", "200", "--host", dead, env={})
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: Cannot reach {dead}: Connection refused"


@pytest.mark.parametrize("fault", ["missing", "directory", "empty", "truncated", "tampered"])
@pytest.mark.parametrize("server", ["production", "gunicorn", "flask"])
def test_servers_refuse_a_broken_model_at_start(model_copy, fault, server):
    break_model(model_copy, fault)
    port = free_port()
    command = {
        "production": [sys.executable, "-m", "cookbook.web.server"],
        "gunicorn": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b",
                     f"127.0.0.1:{port}", "app:app"],
        "flask": [sys.executable, "app.py"],
    }[server]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=server_env(model_copy, port),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "Model file" in line]
    assert len(errors) == 1, output


def test_python_app_py_serves_without_the_debugger(trained_model, tmp_path):
    from helpers import stop, wait_until_ready

    port = free_port()
    env = server_env(trained_model, port, FLASK_DEBUG="1")
    log = tmp_path / "flask.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        response = requests.post(
            f"http://127.0.0.1:{port}/predict", data='{"Weight": 200}', timeout=5
        )
        assert response.json()["prediction"] == ANSWER_200_LBS
        assert response.headers["Server"].startswith("Werkzeug")
    finally:
        stop(process)
    output = log.read_text()
    assert "Debugger is active" not in output and "Debug mode: off" in output
