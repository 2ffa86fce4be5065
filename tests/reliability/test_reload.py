"""3. Reload under load, and 4. a bad model on reload."""

from __future__ import annotations

import time

import pytest
import requests
from harness import Background, hup, log_lines, metric, put_model, report, server, sleep_until

import mlib

pytestmark = pytest.mark.reliability
ADMIN = {"Authorization": "Bearer reliability-admin"}
LOAD_SECONDS = 30
RELOAD_EVERY_SECONDS = 3


@pytest.fixture
def two_models(tmp_path, data_file):
    """Two different verified model pairs, A and B, and a served path holding A."""
    pairs = {}
    for name, alpha in (("a", 1.0), ("b", 80.0)):
        folder = tmp_path / name
        folder.mkdir()
        pairs[name] = folder / "model.joblib"
        mlib.train(data_file, pairs[name], alpha=alpha)
    served = tmp_path / "served" / "model.joblib"
    served.parent.mkdir()
    put_model(pairs["a"], served)
    return pairs, served


def test_reload_under_load(two_models, tmp_path):
    pairs, served = two_models
    versions = {name: mlib.read_metadata(path)["model_version"] for name, path in pairs.items()}
    assert versions["a"] != versions["b"]
    env = {"ADMIN_TOKEN": ADMIN["Authorization"].split()[1]}
    reloads = {"SIGHUP": 0, "admin": 0}
    with server(served, tmp_path, **env) as (process, base_url, log):
        with Background(f"{base_url}/predict", LOAD_SECONDS, 16) as load:
            start = time.monotonic()
            step = 1
            while time.monotonic() - start < LOAD_SECONDS - RELOAD_EVERY_SECONDS:
                sleep_until(start + step * RELOAD_EVERY_SECONDS)
                put_model(pairs["b" if step % 2 else "a"], served)
                if step % 2:
                    hup(process)
                    reloads["SIGHUP"] += 1
                else:
                    answer = requests.post(f"{base_url}/admin/reload", headers=ADMIN, timeout=10)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["model_version"] == versions["a"]
                    reloads["admin"] += 1
                step += 1
            result = load.wait()
        accepted = metric(base_url, "model_reloads_total")
        refused = metric(base_url, "model_reload_refusals_total")
    hups_done = [line for line in log_lines(log) if "SIGHUP: now serving" in line["message"]]
    report("reload under load", result, reloads=reloads, versions=dict(result.versions))
    assert result.failed == 0 and result.failures["refused"] == 0, result.failures
    assert set(result.versions) == set(versions.values())  # only A and B, and both served
    assert sum(result.versions.values()) == result.requests
    assert len(hups_done) == reloads["SIGHUP"]
    assert accepted == sum(reloads.values()) and refused == 0


def test_a_bad_model_on_reload_is_refused_and_the_old_one_keeps_answering(
    trained_model, model_copy, tmp_path
):
    old = mlib.read_metadata(model_copy)["model_version"]
    env = {"ADMIN_TOKEN": ADMIN["Authorization"].split()[1]}
    with server(model_copy, tmp_path, **env) as (process, base_url, log):
        with Background(f"{base_url}/predict", 10, 8) as load:
            time.sleep(2)
            pwned = tmp_path / "pwned"  # what the tampered pickle would create if it ran
            model_copy.write_bytes(f"cos\nsystem\n(S'touch {pwned}'\ntR.".encode())
            answer = requests.post(f"{base_url}/admin/reload", headers=ADMIN, timeout=10)
            hup(process)
            time.sleep(2)
            mlib.metadata_path(model_copy).write_text("{truncated")
            hup(process)
            result = load.wait()
        refusals = metric(base_url, "model_reload_refusals_total")
        ready = requests.get(f"{base_url}/ready", timeout=10)
    refused_lines = [line for line in log_lines(log) if line.get("event") == "model_reload_refused"]
    report("bad model on reload", result, refusals=int(refusals))
    assert answer.status_code == 409 and "does not match" in answer.json()["error"]
    assert answer.json()["model_version"] == old
    assert result.failed == 0 and result.failures["refused"] == 0, result.failures
    assert dict(result.versions) == {old: result.requests}
    assert refusals == 3 and len(refused_lines) == 3
    assert ready.status_code == 200 and ready.json()["model_version"] == old
    assert not pwned.exists()
