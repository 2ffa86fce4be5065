"""Operations through the Flask test client: request ids, JSON logs, ML metrics, drift,
model reload, and the bearer tokens."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest
from helpers import ANSWER_200_LBS, metric, openapi_paths
from prometheus_client import CollectorRegistry, Histogram

import mlib
from app import create_app
from cookbook.core.loading import schema_of
from cookbook.core.psi import PSI_ALERT
from cookbook.core.settings import PROJECT_ROOT
from cookbook.web import auth, request_log
from cookbook.web.metrics import observe_many, observe_one
from cookbook.web.online_drift import MIN_ROWS_FOR_VERDICT, DriftWindow
from cookbook.web.served import service_state


def retrain_into(model_file, alpha: float) -> str:
    """Write a different model to *model_file* (its version changes) and return its version."""
    return mlib.train(mlib.data_path(), model_file, alpha=alpha).version


# ------------------------------------------------------------------ request ids, logs


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    made = [client.get("/health").headers["X-Request-ID"] for _ in range(2)]
    assert all(len(rid) == 32 for rid in made) and made[0] != made[1]


@pytest.mark.parametrize("bad", ["x" * 129, "has space", 'quote"s', "new\nline"])
def test_an_unsafe_request_id_is_replaced(client, bad):
    response = client.get("/health", headers={"X-Request-ID": bad.replace("\n", "%0A")})
    assert response.headers["X-Request-ID"] != bad and len(response.headers["X-Request-ID"]) == 32


def test_one_json_log_line_per_request_without_the_payload(client, monkeypatch):
    lines = io.StringIO()
    monkeypatch.setattr(request_log.REQUESTS, "stream", lines)
    client.post("/predict", json={"Weight": [181.5, 203.25, 244.75]},
                headers={"X-Request-ID": "batch-1"})  # fmt: skip
    text = lines.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    fields = json.loads(text)
    assert {k: fields[k] for k in ("method", "path", "status", "request_id", "logger")} == {
        "method": "POST", "path": "/predict", "status": 200, "request_id": "batch-1",
        "logger": request_log.REQUEST_LOGGER,
    }  # fmt: skip
    assert fields["latency_ms"] > 0 and fields["model_version"] and fields["level"] == "info"
    assert fields["ts"].endswith("+00:00") and len(fields["ts"]) == 29
    assert "181.5" not in text and "203.25" not in text and "244.75" not in text


def test_a_strange_path_still_makes_valid_json(client, monkeypatch):
    lines = io.StringIO()
    monkeypatch.setattr(request_log.REQUESTS, "stream", lines)
    client.get('/no"where\\é')
    assert json.loads(lines.getvalue())["path"] == '/no"where\\é'


def test_configure_sends_json_lines_to_the_stream_at_info_only(monkeypatch):
    monkeypatch.setattr(request_log.REQUESTS, "stream", None)
    buffer = io.StringIO()
    request_log.configure("WARNING", stream=buffer)
    assert request_log.REQUESTS.stream is None
    request_log.configure("INFO", stream=buffer)
    logging.getLogger(request_log.SERVICE_LOGGER).info("hello", extra={"fields": {"a": 1}})
    line = json.loads(buffer.getvalue())
    assert line["message"] == "hello" and line["a"] == 1 and line["logger"] == "app.service"
    logging.getLogger("app").handlers.clear()
    logging.getLogger("app").propagate = True
    logging.getLogger("app").setLevel(logging.NOTSET)


def test_importing_the_modules_sets_up_no_logging():
    import subprocess
    import sys

    code = (
        "import logging, app, cookbook.web.request_log, cookbook.web.reload, "
        "cookbook.web.online_drift, cookbook.lifecycle.drift, cookbook.cli.loadgen; "
        "assert not logging.getLogger().handlers; assert not logging.getLogger('app').handlers"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)


# ------------------------------------------------------------------------- metrics


def test_ml_metrics_follow_the_inputs(client):
    client.post("/predict", json={"Weight": 200})
    client.post("/predict", json={"Weight": [100, 180, 400]})
    assert metric(client, "model_input_weight_pounds_count") == 4
    assert metric(client, "model_input_weight_pounds_sum") == 880
    assert metric(client, 'model_input_weight_pounds_bucket{le="100.0"}') == 1
    assert metric(client, 'model_input_weight_pounds_bucket{le="210.0"}') == 3
    assert metric(client, "model_predicted_height_inches_count") == 4
    assert metric(client, 'model_input_out_of_range_total{feature="Weight",side="below"}') == 1
    assert metric(client, 'model_input_out_of_range_total{feature="Weight",side="above"}') == 1
    assert metric(client, "predictions_total") == 4


def test_a_rejected_batch_counts_no_inputs(client):
    client.post("/predict", json={"Weight": [200, "x"]})
    assert metric(client, "model_input_weight_pounds_count") == 0


def test_observe_one_and_many_match_histogram_observe():
    values = [0.5, 100, 149.9, 150, 150.1, 200, 290, 999, 1000, 1e6]
    one, many = CollectorRegistry(), CollectorRegistry()
    buckets = (100, 150, 290, 1000)
    by_one = Histogram("h", "h", buckets=buckets, registry=one)
    by_many = Histogram("h", "h", buckets=buckets, registry=many)
    by_bisect = Histogram("h", "h", buckets=buckets, registry=(bisected := CollectorRegistry()))
    for value in values:
        by_one.observe(value)
        observe_one(by_bisect, value)
    observe_many(by_many, values)

    def samples(registry):
        # _created holds each histogram's creation time, which differs by construction.
        metric_family = next(iter(registry.collect()))
        return [(s.name, s.labels, s.value) for s in metric_family.samples
                if not s.name.endswith("_created")]  # fmt: skip

    assert samples(one) == samples(many) == samples(bisected)
    assert samples(one)[-1] == ("h_sum", {}, sum(values))


# --------------------------------------------------------------------------- drift


def test_drift_window_is_bounded_and_reads_the_training_histogram(trained_model):
    feature = schema_of(mlib.read_metadata(trained_model)).features[0]
    histogram = feature.histogram
    window = DriftWindow(feature, capacity=50)
    window.add([200.0] * 80)
    assert len(window) == 50 and sum(window.counts) == 50
    # A window shaped like the training data does not drift; a shifted one alerts.
    like_training = DriftWindow(feature, capacity=sum(histogram["counts"]))
    edges = histogram["edges"]
    for count, low, high in zip(histogram["counts"], edges, edges[1:], strict=False):
        like_training.add([(low + high) / 2] * count)
    assert like_training.psi() == pytest.approx(0.0, abs=1e-9)
    assert like_training.report()["verdict"] == "ok"
    shifted = DriftWindow(feature)
    shifted.add([270.0] * 500)
    assert shifted.report()["verdict"] == "alert" and shifted.psi() > PSI_ALERT


def test_drift_route_reports_this_worker(client):
    assert client.get("/drift").get_json()["window_size"] == 0
    client.post("/predict", json={"Weight": [285] * MIN_ROWS_FOR_VERDICT})
    report = client.get("/drift").get_json()
    assert report["window_size"] == MIN_ROWS_FOR_VERDICT and report["enough_data"]
    assert report["verdict"] == "alert" and report["psi"] > 0.25
    assert report["worker_pid"] == os.getpid()
    psi = metric(client, 'model_input_drift_psi{feature="Weight"}')
    assert psi == pytest.approx(report["psi"], rel=1e-6)


# ------------------------------------------------------------------- model reload


@pytest.fixture
def admin_app(model_copy):
    application = create_app(
        {"MODEL_PATH": str(model_copy), "TESTING": True, "ADMIN_TOKEN": "s3cret"}
    )
    return application, application.test_client(), model_copy


BEARER = {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize("method", ["get", "post", "put"])
def test_admin_routes_are_404_without_admin_token(client, method):
    response = getattr(client, method)("/admin/reload", headers=BEARER)
    assert response.status_code == 404 and "error" in response.get_json()


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret", "s3cret", "Bearer "])
def test_admin_reload_needs_the_admin_token(admin_app, header):
    _, client, _ = admin_app
    response = client.post("/admin/reload", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and "ADMIN_TOKEN" in response.get_json()["error"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_admin_reload_swaps_in_the_new_model(admin_app):
    app, client, model_file = admin_app
    old = client.post("/predict", json={"Weight": 200}).headers["X-Model-Version"]
    new = retrain_into(model_file, alpha=50.0)
    assert new != old
    response = client.post("/admin/reload", headers=BEARER)
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "reloaded", "model_version": new, "previous_model_version": old,
        "generation": 1,
    }  # fmt: skip
    assert client.post("/predict", json={"Weight": 200}).headers["X-Model-Version"] == new
    assert client.get("/model").get_json()["model_version"] == new
    assert metric(client, "model_reloads_total") == 1


def test_admin_reload_refuses_a_tampered_model_and_keeps_serving(admin_app):
    _, client, model_file = admin_app
    old = client.get("/ready").get_json()["model_version"]
    model_file.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    response = client.post("/admin/reload", headers=BEARER)
    assert response.status_code == 409
    body = response.get_json()
    assert "does not match" in body["error"] and body["model_version"] == old
    answer = client.post("/predict", json={"Weight": 200})
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == old
    assert metric(client, "model_reload_refusals_total") == 1


def test_admin_reload_refuses_a_model_that_fails_its_probe(admin_app):
    _, client, model_file = admin_app
    meta_file = mlib.metadata_path(model_file)
    metadata = json.loads(meta_file.read_text())
    metadata["folded"]["coefficients"]["Weight"] = float("nan")  # loads, but cannot predict
    meta_file.write_text(json.dumps(metadata))
    response = client.post("/admin/reload", headers=BEARER)
    assert response.status_code == 409 and "probe" in response.get_json()["error"]


def test_a_worker_follows_a_reload_done_by_another_process(admin_app):
    # What another worker (or the master on SIGHUP) does: verify, bump the shared generation.
    app, client, model_file = admin_app
    old = service_state(app).served.predictor
    new = retrain_into(model_file, alpha=50.0)
    _, outcome = service_state(app).reload.reload(model_file, old)
    # This "worker" has not swapped yet.
    assert outcome.accepted and service_state(app).served.predictor is old
    assert client.post("/predict", json={"Weight": 200}).headers["X-Model-Version"] == new


def test_a_late_worker_gets_the_accepted_model_even_if_the_file_changed_since(admin_app):
    app, client, model_file = admin_app
    new = retrain_into(model_file, alpha=50.0)
    service_state(app).reload.reload(model_file, service_state(app).served.predictor)
    model_file.write_bytes(b"tampered after the reload was accepted")
    assert client.post("/predict", json={"Weight": 200}).headers["X-Model-Version"] == new


def test_a_worker_keeps_its_model_when_the_snapshot_it_follows_is_bad(admin_app):
    app, client, model_file = admin_app
    old = service_state(app).served.predictor
    retrain_into(model_file, alpha=50.0)
    state = service_state(app).reload
    state.reload(model_file, old)
    (state.snapshots / "1" / "model.joblib").write_bytes(b"corrupted on disk")
    for _ in range(3):  # refused once, then no longer retried on every request
        answer = client.post("/predict", json={"Weight": 200})
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == old.version
    assert metric(client, "model_reload_refusals_total") == 1


def test_reload_keeps_only_the_latest_snapshots(admin_app):
    app, _, model_file = admin_app
    state = service_state(app).reload
    for _ in range(5):
        state.reload(model_file, service_state(app).served.predictor)
    assert sorted(p.name for p in state.snapshots.iterdir()) == ["3", "4", "5"]
    model_file.unlink()
    _, outcome = state.reload(model_file, service_state(app).served.predictor)
    assert not outcome.accepted and "missing" in outcome.reason
    assert sorted(p.name for p in state.snapshots.iterdir()) == ["3", "4", "5"]


def test_the_reload_generation_is_shared_with_forked_processes(admin_app):
    app, _, model_file = admin_app
    state = service_state(app).reload
    pid = os.fork()
    if pid == 0:  # the child plays a worker that reloads
        _, outcome = state.reload(model_file, service_state(app).served.predictor)
        os._exit(0 if outcome.accepted else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert state.generation == 1


# --------------------------------------------------------------------- API token


@pytest.fixture
def token_client(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model), "TESTING": True, "API_TOKEN": "tok"})
    return app.test_client()


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer tok2", "tok"])
def test_api_token_guards_predict(token_client, header):
    response = token_client.post(
        "/predict", json={"Weight": 200}, headers={"Authorization": header} if header else {}
    )
    assert response.status_code == 401 and "API_TOKEN" in response.get_json()["error"]


def test_api_token_lets_the_right_bearer_in_and_leaves_probes_open(token_client):
    ok = token_client.post("/predict", json={"Weight": 200},
                           headers={"Authorization": "bearer tok"})  # fmt: skip
    assert ok.status_code == 200 and ok.get_json()["prediction"] == ANSWER_200_LBS
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert token_client.get(path).status_code == 200, path


def test_api_and_admin_tokens_come_from_the_environment(monkeypatch, trained_model):
    monkeypatch.setenv("API_TOKEN", "from-env")
    monkeypatch.setenv("ADMIN_TOKEN", "admin-env")
    client = create_app({"MODEL_PATH": str(trained_model)}).test_client()
    assert client.post("/predict", json={"Weight": 200}).status_code == 401
    assert client.post("/admin/reload").status_code == 401


@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [("Bearer abc", "abc", True), ("bearer  abc ", "abc", True), ("Bearer abd", "abc", False),
     ("Bearer ab", "abc", False), ("Bearer é", "é", True), (None, "abc", False)],
)  # fmt: skip
def test_bearer_matches(header, expected, ok):
    assert auth.bearer_matches(header, expected) is ok


def test_openapi_lists_the_admin_route_only_when_it_exists(admin_app, client):
    app, admin_client, _ = admin_app
    assert "/admin/reload" in admin_client.get("/openapi.json").get_json()["paths"]
    assert "/admin/reload" not in client.get("/openapi.json").get_json()["paths"]
    assert openapi_paths(app) == set(admin_client.get("/openapi.json").get_json()["paths"])


FORKED_METRICS = """
import os, sys
from cookbook.web.metrics import ServiceMetrics
metrics = ServiceMetrics()  # made before the fork, as the server's master does
metrics.observe_request("POST", "/predict", 200, 0.001)
child = os.fork()
if child == 0:
    metrics.observe_request("POST", "/predict", 200, 0.001)
    metrics.observe_request("POST", "/predict", 200, 0.001)
    os._exit(0)
os.waitpid(child, 0)
print(child, os.getpid())
sys.stdout.write(metrics.render().decode())
"""


def test_forked_workers_write_their_own_metric_files_and_the_scrape_sums_them(tmp_path):
    # prometheus_client picks multi-process mode on import: a process of its own.
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", FORKED_METRICS], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    pids, _, text = done.stdout.partition("\n")
    child, parent = pids.split()
    assert {f"counter_{child}.db", f"counter_{parent}.db"} <= set(os.listdir(tmp_path))
    assert 'http_requests_total{method="POST",route="/predict",status="200"} 3.0' in text
