"""SIGHUP and POST /admin/reload on real servers: every worker swaps, a bad model is refused."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests
from helpers import start_gunicorn, start_server, stop

import mlib


def versions_served(base_url: str, count: int = 40) -> set[str]:
    # A new connection per request, so successive requests reach both workers.
    return {
        requests.post(f"{base_url}/predict", json={"Weight": 200}, timeout=5).headers[
            "X-Model-Version"
        ]
        for _ in range(count)
    }


def metric(base_url: str, name: str) -> float:
    text = requests.get(f"{base_url}/metrics", timeout=5).text
    return float(text.split(f"\n{name} ")[1].split()[0])


@pytest.mark.parametrize("start", [start_server, start_gunicorn], ids=["production", "gunicorn"])
def test_sighup_and_admin_reload_swap_every_worker(model_copy, tmp_path, data_file, start):
    process, base_url = start(model_copy, tmp_path, ADMIN_TOKEN="t0ken")
    try:
        old = mlib.read_metadata(model_copy)["model_version"]
        assert versions_served(base_url) == {old}
        new = mlib.train(data_file, model_copy, alpha=25.0).version
        os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while metric(base_url, "model_reloads_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert versions_served(base_url) == {new}
        assert requests.get(f"{base_url}/model", timeout=5).json()["model_version"] == new

        model_copy.write_bytes(b"tampered")
        answer = requests.post(f"{base_url}/admin/reload", timeout=5,
                               headers={"Authorization": "Bearer t0ken"})  # fmt: skip
        assert answer.status_code == 409 and answer.json()["model_version"] == new
        assert versions_served(base_url) == {new}
        assert metric(base_url, "model_reload_refusals_total") == 1
        assert metric(base_url, "model_reloads_total") == 1
    finally:
        stop(process)
