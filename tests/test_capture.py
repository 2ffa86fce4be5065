"""Data capture, ground-truth feedback and online quality: the stores for real (SQLite and
PostgreSQL), the routes through the app, and a real production server with two workers."""

from __future__ import annotations

import csv
import io
import math
import time

import pytest
import requests
from helpers import ROOT, empty_store, metric, run_script, start_server, stop, wait_for_rows

import mlib
from app import create_app
from cookbook.cli.capture_export import captured_csv, parse_since
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_store import open_store
from cookbook.lifecycle.capture_writing import Record
from cookbook.web.served import service_state


def record(request_id: str, index: int = 0, predicted: float = 73.0, ts: float | None = None,
           version: str = "v1", low: float = 70.0, high: float = 76.0) -> Record:  # fmt: skip
    return Record(request_id, index, ts or time.time(), version, "champion", {"Weight": 200.0},
                  predicted, low, high)  # fmt: skip


def test_feedback_joins_once_and_names_unknown_ids(store):
    store.write([record("a"), record("b", 0), record("b", 1)])
    outcome = store.add_feedback([Feedback("a", 0, 74.0), Feedback("b", 1, 69.0),
                                  Feedback("nope", 0, 70.0)])  # fmt: skip
    assert outcome == {"joined": ["a", "b"], "unknown": ["nope"], "already": [], "mismatched": []}
    again = store.add_feedback([Feedback("a", 0, 80.0)])
    assert again == {"joined": [], "unknown": [], "already": ["a"], "mismatched": []}
    actual = {(r["request_id"], r["row_index"]): r["actual"] for r in store.rows()}
    assert actual == {("a", 0): 74.0, ("b", 0): None, ("b", 1): 69.0}  # the first value stands


def test_quality_is_computed_per_version(store):
    truths = {"v1": [(73.0, 74.0), (73.0, 71.0), (75.0, 77.5)], "v2": [(70.0, 70.5)]}
    items = []
    for version, pairs in truths.items():
        for i, (predicted, actual) in enumerate(pairs):
            store.write([record(f"{version}-{i}", predicted=predicted, version=version,
                                low=predicted - 2, high=predicted + 2)])  # fmt: skip
            items.append(Feedback(f"{version}-{i}", 0, actual))
    store.add_feedback(items)
    report = store.quality(3600)
    errors = [p - a for p, a in truths["v1"]]
    assert report["v1"]["labelled"] == 3
    assert report["v1"]["mae"] == pytest.approx(sum(map(abs, errors)) / 3)
    assert report["v1"]["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 3))
    assert report["v1"]["bias"] == pytest.approx(sum(errors) / 3)
    assert report["v1"]["interval_coverage"] == pytest.approx(2 / 3)  # 77.5 is outside 73-77
    assert report["v2"]["labelled"] == 1 and report["v2"]["interval_coverage"] == 1.0


def test_retention_keeps_the_newest_rows(store):
    now = time.time()
    for i in range(10):  # retention deletes whole batches: one record each here
        store.write([record(f"r{i}", ts=now - 100 + i)])
    assert store.trim(max_rows=4) == 6
    assert [r["request_id"] for r in store.rows()] == ["r6", "r7", "r8", "r9"]
    store.trim(max_age_seconds=92.5)  # r6 (94 s old) and r7 (93 s) go
    assert [r["request_id"] for r in store.rows()] == ["r8", "r9"]
    assert [r["request_id"] for r in store.rows(since=now - 91.5)] == ["r9"]


def test_since_reads_ages_and_dates():
    assert parse_since("24h", now=100_000.0) == 100_000.0 - 86_400
    assert parse_since("2026-01-01T00:00:00") == parse_since("2026-01-01T00:00:00+00:00")
    with pytest.raises(ValueError, match="neither an age"):
        parse_since("yesterday")


# ------------------------------------------------------------------ through the app


@pytest.fixture
def capture_app(trained_model, tmp_path):
    url = f"sqlite:///{tmp_path}/capture.sqlite3"
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True,
                      "CAPTURE_ENV": {"CAPTURE_URL": url}})  # fmt: skip
    return app, app.test_client(), open_store(url)


def test_every_contract_is_captured_within_a_second(capture_app):
    app, client, store = capture_app
    sent = time.monotonic()
    p1 = client.post("/predict", json={"Weight": 200}, headers={"X-Request-ID": "p1"})
    client.post("/predict", json={"Weight": [180, 250]}, headers={"X-Request-ID": "p2"})
    client.get("/?weight=190", headers={"X-Request-ID": "page"})
    client.post(
        "/v2/models/mlb-height/infer",
        headers={"X-Request-ID": "v2"},
        json={"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [210]}]},
    )
    client.post("/invocations", data="220\n", content_type="text/csv",
                headers={"X-Request-ID": "sm"})  # fmt: skip
    client.post("/predict", json={"Weight": "x"})  # refused: nothing to capture
    rows = wait_for_rows(store, 6)
    assert time.monotonic() - sent < 1.0 + 0.5  # the writer flushes every 0.2 s
    captured = {(r["request_id"], r["row_index"]): r for r in rows}
    assert set(captured) == {("p1", 0), ("p2", 0), ("p2", 1), ("page", 0), ("v2", 0), ("sm", 0)}
    assert captured[("p2", 1)]["inputs"] == {"Weight": 250.0}
    interval = p1.get_json()["prediction"]["interval"]
    assert (captured[("p1", 0)]["interval_low"], captured[("p1", 0)]["interval_high"]) == (
        interval["low"], interval["high"])  # fmt: skip
    # The answer's words are written from the captured prediction, as the service wrote them.
    text, _ = captured_csv(store, service_state(app).served.predictor.schema, None)
    exported = {r["request_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert exported["p1"]["height_human_readable"] == "6 foot, 2 inches"
    assert {r["role"] for r in rows} == {"champion"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"request_id": "p1", "actual": "74"}, 400, "must be a number"),
        ({"request_id": "p1", "actual": True}, 400, "must be a number"),
        ({"request_id": "p1", "actual": None}, 400, "must be a number"),
        ({"request_id": "p1"}, 400, "must be a number"),
        ({"actual": 74}, 400, "request_id"),
        ({"request_id": "p1", "actual": 74, "index": -1}, 400, "index"),
        ({"request_id": "p1", "actual": 74, "index": 3052252443609174376448}, 400, "index"),
        ({"request_id": "\udb26x", "actual": 74}, 400, "request_id"),
        ({"request_id": "x" * 129, "actual": 74}, 400, "request_id"),
        ([], 400, "empty"),
        ({"request_id": "p1", "actual": 10**400}, 400, "must be finite, got 1000000"),
        ({"request_id": "p1", "actual": 1e308}, 400, "between 51 and 99 in"),
        ({"request_id": "p1", "actual": -74}, 400, "between 51 and 99 in"),
        ({"request_id": "p1", "actual": 99.5}, 400, "between 51 and 99 in"),
        ({"request_id": "never", "actual": 74}, 404, "Unknown or expired"),
        ({"request_id": "never", "actual": 51}, 404, "Unknown or expired"),  # the bounds count
        ({"request_id": "never", "actual": 99}, 404, "Unknown or expired"),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(capture_app, body, status, words):
    _, client, store = capture_app
    client.post("/predict", json={"Weight": 200}, headers={"X-Request-ID": "p1"})
    wait_for_rows(store, 1)
    response = client.post("/feedback", json=body)
    assert response.status_code == status and words in response.get_json()["error"]


def test_a_bad_true_value_is_refused_and_the_summaries_stay_whole(capture_app):
    _, client, store = capture_app
    client.post("/predict", json={"Weight": 200}, headers={"X-Request-ID": "p1"})
    wait_for_rows(store, 1)
    refused = client.post("/feedback", json={"request_id": "p1", "actual": 1e308})
    assert refused.status_code == 400
    assert client.post("/feedback", json={"request_id": "p1", "actual": 74}).status_code == 200
    for path in ("/quality", "/rollout", "/metrics"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("fault", ["missing table", "not a database"])
def test_a_failing_store_answers_503_and_metrics_still_answer(capture_app, tmp_path, fault):
    app, client, store = capture_app
    client.post("/predict", json={"Weight": 200}, headers={"X-Request-ID": "p1"})
    wait_for_rows(store, 1)
    if fault == "missing table":
        with store.connect() as db:
            db.execute("DROP TABLE capture_quality")
    else:
        store.path.write_bytes(b"this is not an SQLite database" * 100)
        for suffix in ("-wal", "-shm"):
            store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
    for path in ("/quality", "/rollout"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "capture database" in response.get_json()["error"]
    assert client.get("/metrics").status_code == 200
    # /quality, /rollout and the two scrapes each failed to read the store once.
    assert metric(client, "capture_read_errors_total") == 4.0


def test_non_finite_feedback_is_refused(capture_app):
    _, client, _ = capture_app
    response = client.post("/feedback", data='{"request_id": "p1", "actual": 1e999}')
    assert response.status_code == 400 and "finite" in response.get_json()["error"]


def test_feedback_then_quality_and_its_metrics(capture_app, trained_model):
    _, client, store = capture_app
    client.post("/predict", json={"Weight": [200, 180]}, headers={"X-Request-ID": "b1"})
    wait_for_rows(store, 2)
    joined = client.post(
        "/feedback",
        json=[
            {"request_id": "b1", "actual": 74.0},
            {"request_id": "b1", "index": 1, "actual": 71.0},
        ],
    )
    assert joined.status_code == 200 and joined.get_json()["joined"] == ["b1", "b1"]
    twice = client.post("/feedback", json={"request_id": "b1", "actual": 60.0})
    assert twice.status_code == 409
    version = mlib.read_metadata(trained_model)["model_version"]
    report = client.get("/quality").get_json()["versions"][version]
    predicted = [r["prediction"] for r in store.rows()]
    errors = [predicted[0] - 74.0, predicted[1] - 71.0]
    assert report["labelled"] == 2
    assert report["mae"] == pytest.approx(sum(map(abs, errors)) / 2)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'model_quality_labelled{{version="{version}"}} 2.0' in metrics
    assert "capture_dropped_total 0.0" in metrics


def test_capture_fraction_zero_captures_nothing(trained_model, tmp_path):
    url = f"sqlite:///{tmp_path}/none.sqlite3"
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True,
                      "CAPTURE_ENV": {"CAPTURE_URL": url, "CAPTURE_FRACTION": "0"}})  # fmt: skip
    client = app.test_client()
    assert client.post("/predict", json={"Weight": 200}).status_code == 200
    assert client.get("/quality").get_json()["versions"] == {}


def test_a_full_queue_drops_records_not_requests(trained_model, tmp_path):
    url = f"sqlite:///{tmp_path}/small.sqlite3"
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True,
                      "CAPTURE_ENV": {"CAPTURE_URL": url, "CAPTURE_QUEUE": "5"}})  # fmt: skip
    client = app.test_client()
    response = client.post("/predict", json={"Weight": [200] * 2000})
    assert response.status_code == 200 and len(response.get_json()["predictions"]) == 2000
    metrics = client.get("/metrics").get_data(as_text=True)
    dropped = next(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("capture_dropped_total "))  # fmt: skip
    assert dropped >= 2000 - 5 - 500  # what the queue and one in-flight batch could hold


# ------------------------------------------------------- a real server, two workers


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_capture_feedback_and_export_on_the_production_server(request, trained_model, tmp_path,
                                                               backend):  # fmt: skip
    url = (f"sqlite:///{tmp_path}/capture.sqlite3" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))  # fmt: skip
    if backend == "postgresql":
        store = open_store(url)
        store.create()
        empty_store(store)
    process, base_url = start_server(trained_model, tmp_path, CAPTURE_URL=url)
    try:
        ids, sent = [], {}
        for i in range(40):  # new connections: both workers answer some
            weight = 170 + i
            answer = requests.post(f"{base_url}/predict", json={"Weight": weight}, timeout=10)
            ids.append((answer.headers["X-Request-ID"], weight))
            sent[answer.headers["X-Request-ID"]] = answer.json()["prediction"]
        time.sleep(1.0)  # captured within a second of being answered
        feedback = [{"request_id": rid, "actual": 60 + w / 15} for rid, w in ids]
        joined = requests.post(f"{base_url}/feedback", json=feedback, timeout=10)
        assert joined.status_code == 200 and len(joined.json()["joined"]) == 40
        quality = requests.get(f"{base_url}/quality", timeout=10).json()["versions"]
        assert [stats["labelled"] for stats in quality.values()] == [40]
        exported = tmp_path / "captured.csv"
        env = {"MODEL_PATH": str(trained_model), "CAPTURE_URL": url}
        result = run_script("utilscli.py", "capture", "export", "--output", str(exported),
                            env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader(io.StringIO(exported.read_text())))
        assert len(rows) == 40 and {r["request_id"] for r in rows} == {rid for rid, _ in ids}
        for row in rows:  # the answer's fields, written from the prediction, are those sent
            answer = sent[row["request_id"]]
            assert (row["height_inches"], row["height_human_readable"]) == (
                str(answer["height_inches"]), answer["height_human_readable"])  # fmt: skip
            assert (float(row["interval_low"]), float(row["interval_high"])) == (
                answer["interval"]["low"], answer["interval"]["high"])  # fmt: skip
        for command in (["drift", "--data", str(exported)], ["evaluate", "--data", str(exported)]):
            checked = run_script("utilscli.py", *command, env=env)
            assert checked.returncode in (0, 1, 2), checked.stderr  # a verdict, not a failure
        evaluated = run_script("utilscli.py", "evaluate", "--data", str(exported), "--json",
                               env=env)  # fmt: skip
        import json

        assert json.loads(evaluated.stdout)["overall"]["rows"] == 40
    finally:
        stop(process)
    assert ROOT.exists()


# --------------------------------------------------------------------------- shadow


@pytest.fixture
def shadow_model(tmp_path, data_file):
    """A different model of the same features: what a retrain with alpha=50 gives."""
    return mlib.train(data_file, tmp_path / "shadow" / "model.joblib", alpha=50.0).model_file


def shadow_app(trained_model, tmp_path, shadow_path):
    url = f"sqlite:///{tmp_path}/capture.sqlite3"
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True,
                      "SHADOW_MODEL_PATH": str(shadow_path), "ROLLOUT_TOLERANCE": 0.05,
                      "CAPTURE_ENV": {"CAPTURE_URL": url}})  # fmt: skip
    return app.test_client(), open_store(url)


def test_a_shadow_scores_every_row_and_never_answers(trained_model, tmp_path, shadow_model):
    client, store = shadow_app(trained_model, tmp_path, shadow_model)
    champion = mlib.load_predictor(trained_model)
    shadow = mlib.load_predictor(shadow_model)
    weights = [170, 200, 240]
    answer = client.post("/predict", json={"Weight": weights}, headers={"X-Request-ID": "s1"})
    assert answer.get_json() == champion.answer({"Weight": weights})  # the champion answers
    assert answer.headers["X-Model-Version"] == champion.version
    deadline = time.monotonic() + 2
    while len(store.rows()) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    roles = sorted((r["role"], r["model_version"]) for r in store.rows())
    assert roles == [("champion", champion.version)] * 3 + [("shadow", shadow.version)] * 3
    client.post("/feedback", json=[{"request_id": "s1", "index": i, "actual": 73.0}
                                   for i in range(3)])  # fmt: skip
    report = client.get("/rollout").get_json()
    expected = [abs(shadow.predict_row((w,)) - champion.predict_row((w,))) for w in weights]
    assert report["champion"]["version"] == champion.version
    assert report["shadow"]["version"] == shadow.version and report["shadow"]["n"] == 3
    assert report["shadow"]["mean_abs_difference"] == pytest.approx(sum(expected) / 3)
    assert report["shadow"]["share_beyond_tolerance"] == pytest.approx(
        sum(d > 0.05 for d in expected) / 3)  # fmt: skip
    assert report["shadow"]["labelled"] == 3
    assert report["shadow"]["shadow_mae"] == pytest.approx(
        sum(abs(shadow.predict_row((w,)) - 73.0) for w in weights) / 3)  # fmt: skip
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "model_shadow_abs_difference_count 3.0" in metrics
    # Quality and the export keep to what was answered.
    assert list(client.get("/quality").get_json()["versions"]) == [champion.version]


def test_a_broken_shadow_never_affects_the_answers(trained_model, tmp_path, shadow_model):
    shadow_model.write_bytes(b"tampered")
    client, _ = shadow_app(trained_model, tmp_path, shadow_model)
    answer = client.post("/predict", json={"Weight": 200})
    assert answer.status_code == 200
    report = client.get("/rollout").get_json()
    assert report["shadow"] is None and "does not match" in report["shadow_refused"]


def test_rollout_status_prints_the_shadows_figures(trained_model, tmp_path, shadow_model):
    process, base_url = start_server(trained_model, tmp_path, SHADOW_MODEL_PATH=str(shadow_model),
                                     CAPTURE_URL=f"sqlite:///{tmp_path}/c.sqlite3")  # fmt: skip
    try:
        for weight in (180, 200, 220):
            requests.post(f"{base_url}/predict", json={"Weight": weight}, timeout=10)
        deadline = time.monotonic() + 5  # the shadow scores, then capture stores, off the path
        while time.monotonic() < deadline:
            shadow = requests.get(f"{base_url}/rollout", timeout=10).json()["shadow"]
            if shadow and shadow["n"] == 3:
                break
            time.sleep(0.1)
        result = run_script("utilscli.py", "rollout", "status", "--host", base_url, env={})
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr
    shadow = mlib.read_metadata(shadow_model)["model_version"]
    assert f"Shadow:   {shadow}: 3 rows scored" in result.stdout
