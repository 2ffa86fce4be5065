"""Canary routing and the promotion it leads to, on the real production server."""

from __future__ import annotations

import shutil
import time

import pytest
import requests
from helpers import run_script, start_server, stop

import mlib
from app import create_app
from cookbook.lifecycle.capture_store import open_store
from cookbook.lifecycle.registry import Registry
from cookbook.lifecycle.training import train

TOKEN = "canary-admin"


@pytest.fixture
def champion_and_canary(tmp_path, trained_model, data_file):
    """A served pair with a registry, and a second model (alpha=50) registered in it."""
    served = tmp_path / "served" / "model.joblib"
    served.parent.mkdir()
    for source in (trained_model, trained_model.with_suffix(".json")):
        shutil.copy(source, served.parent / source.name)
    store = Registry(served)
    store.adopt_served()
    with store.staging() as staged:
        train(data_file, staged / "model.joblib", alpha=50.0)
        canary = store.register(staged / "model.joblib")
    return served, canary


def test_the_canary_answers_its_share_sticky_by_key_and_is_promoted_on_feedback(
    champion_and_canary, tmp_path
):
    served, canary = champion_and_canary
    champion_version = mlib.read_metadata(served)["model_version"]
    capture_url = f"sqlite:///{tmp_path}/capture.sqlite3"
    process, base_url = start_server(
        served, tmp_path, CANARY_MODEL_PATH=str(canary.model_file), CANARY_FRACTION="0.5",
        ADMIN_TOKEN=TOKEN, CAPTURE_URL=capture_url,
    )  # fmt: skip
    try:
        by_key = {}
        for key in range(60):
            answers = {requests.post(f"{base_url}/predict", json={"Weight": 180 + key},
                                     headers={"X-Canary-Key": f"user-{key}"},
                                     timeout=10).headers["X-Model-Version"]
                       for _ in range(3)}  # fmt: skip
            assert len(answers) == 1, f"user-{key} saw {answers}: not sticky"
            by_key[key] = answers.pop()
        assert set(by_key.values()) == {champion_version, canary.version}
        share = sum(v == canary.version for v in by_key.values()) / len(by_key)
        assert 0.25 < share < 0.75
        time.sleep(1.0)
        captured = open_store(capture_url).rows()
        assert {(r["role"], r["model_version"]) for r in captured} == {
            ("champion", champion_version), ("canary", canary.version)}  # fmt: skip
        # The truth is what the canary says: it wins on live feedback.
        truth = mlib.load_predictor(canary.model_file)
        feedback = [
            {
                "request_id": r["request_id"],
                "index": r["row_index"],
                "actual": truth.predict_row((r["inputs"]["Weight"],)),
            }
            for r in captured
        ]
        assert requests.post(f"{base_url}/feedback", json=feedback, timeout=10).status_code == 200
        env = {"MODEL_PATH": str(served)}
        refused = run_script("utilscli.py", "rollout", "promote", "--host", base_url,
                             "--min-labels", "100000", env=env)  # fmt: skip
        assert refused.returncode == 1 and "labelled rows" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert mlib.read_metadata(served)["model_version"] == champion_version
        promoted = run_script("utilscli.py", "rollout", "promote", "--host", base_url,
                              "--admin-token", TOKEN, env=env)  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        assert mlib.read_metadata(served)["model_version"] == canary.version
        ready = requests.get(f"{base_url}/ready", timeout=10).json()
        assert ready["model_version"] == canary.version
    finally:
        stop(process)


def test_a_bad_canary_stops_the_start_in_one_line(champion_and_canary):
    served, canary = champion_and_canary
    canary.model_file.write_bytes(b"tampered")
    with pytest.raises(mlib.ModelError, match="does not match"):
        create_app({"MODEL_PATH": str(served), "CANARY_MODEL_PATH": str(canary.model_file),
                    "CANARY_FRACTION": 0.5})  # fmt: skip


def test_promotion_is_refused_when_the_candidate_is_worse():
    from cookbook.cli.rollout import candidate_of

    report = {"champion": {"version": "a", "quality": {"labelled": 50, "mae": 1.0}},
              "canary": {"version": "b", "quality": {"labelled": 50, "mae": 1.06}}}  # fmt: skip
    version, why = candidate_of(report, 30, 0.05)
    assert version is None and "beyond the tolerance" in why
    report["canary"]["quality"]["mae"] = 1.04
    assert candidate_of(report, 30, 0.05)[0] == "b"
    assert candidate_of({"champion": {"version": "a"}}, 30, 0.05)[0] is None


def test_sighup_reloads_the_canary_too(champion_and_canary, tmp_path, data_file):
    import os
    import signal

    served, canary = champion_and_canary
    canary_path = tmp_path / "canary" / "model.joblib"
    canary_path.parent.mkdir()
    for source in (canary.model_file, canary.model_file.with_suffix(".json")):
        shutil.copy(source, canary_path.parent / source.name)
    process, base_url = start_server(served, tmp_path, CANARY_MODEL_PATH=str(canary_path),
                                     CANARY_FRACTION="1", CAPTURE_FRACTION="0")  # fmt: skip
    try:

        def versions() -> set[str]:
            url = f"{base_url}/predict"
            answers = [requests.post(url, json={"Weight": 200}, timeout=10) for _ in range(30)]
            return {answer.headers["X-Model-Version"] for answer in answers}

        assert versions() == {canary.version}
        newer = train(data_file, canary_path, alpha=25.0).version
        os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while versions() != {newer} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert versions() == {newer}
    finally:
        stop(process)


def test_rollout_shadow_names_a_registered_version(champion_and_canary):
    served, canary = champion_and_canary
    result = run_script("utilscli.py", "rollout", "shadow", canary.version[:6],
                        env={"MODEL_PATH": str(served)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"SHADOW_MODEL_PATH={canary.model_file}"
    unknown = run_script("utilscli.py", "rollout", "shadow", "ffffff",
                         env={"MODEL_PATH": str(served)})  # fmt: skip
    assert unknown.returncode == 1 and "No model version" in unknown.stderr
