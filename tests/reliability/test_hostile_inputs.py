"""Hostile and careless requests against the real production server with both tokens set:
each row of the hardening issue that an HTTP client can reach, as it was found."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
import requests
from harness import port_of, read_until_closed
from helpers import start_server, stop

pytestmark = pytest.mark.reliability
TOKEN = "hostile-api-token"
ADMIN = "hostile-admin-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
V2_ROW = {"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [200]}]}


@pytest.fixture(scope="module")
def guarded(trained_model, tmp_path_factory):
    """The production server (2 workers) with API_TOKEN, ADMIN_TOKEN and capture on."""
    folder = tmp_path_factory.mktemp("hostile")
    database = folder / "capture.sqlite3"
    process, base_url = start_server(trained_model, folder, API_TOKEN=TOKEN, ADMIN_TOKEN=ADMIN,
                                     CAPTURE_URL=f"sqlite:///{database}")  # fmt: skip
    yield base_url, database
    stop(process)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v2/models/mlb-height/infer", V2_ROW),
        ("POST", "/invocations", {"Weight": 200}),
        ("GET", "/?weight=200", None),
        ("POST", "/", None),  # the form, without its token field
        ("GET", "/model", None),
        ("GET", "/drift", None),
        ("GET", "/quality", None),
        ("GET", "/rollout", None),
        ("POST", "/feedback", {"request_id": "0" * 32, "actual": 74}),
    ],
)
def test_no_prediction_or_served_data_without_the_token(guarded, method, path, body):
    base_url, _ = guarded
    form = {"weight": "200"} if path == "/" and method == "POST" else None
    refused = requests.request(method, base_url + path, json=body, data=form, timeout=10)
    assert refused.status_code == 401, refused.text
    assert "API_TOKEN" in refused.text and "6 foot" not in refused.text
    allowed = requests.request(method, base_url + path, json=body, data=form, timeout=10,
                               headers=BEARER)  # fmt: skip
    assert allowed.status_code != 401


def answered_request_id(base_url: str) -> str:
    answer = requests.post(f"{base_url}/predict", json={"Weight": 200}, headers=BEARER, timeout=10)
    assert answer.status_code == 200
    time.sleep(1.0)  # captured within a second
    return answer.headers["X-Request-ID"]


def test_a_400_digit_true_value_is_a_400(guarded):
    base_url, _ = guarded
    request_id = answered_request_id(base_url)
    body = f'{{"request_id": "{request_id}", "actual": {"9" * 400}}}'
    response = requests.post(f"{base_url}/feedback", data=body, headers=BEARER, timeout=10)
    assert response.status_code == 400 and "finite" in response.json()["error"]


def test_a_huge_true_value_is_refused_and_the_summaries_keep_answering(guarded):
    base_url, _ = guarded
    request_id = answered_request_id(base_url)
    response = requests.post(f"{base_url}/feedback", json={"request_id": request_id,
                             "actual": 1e308}, headers=BEARER, timeout=10)  # fmt: skip
    assert response.status_code == 400 and "between" in response.json()["error"]
    for _ in range(4):  # new connections: both workers
        for path in ("/quality", "/rollout"):
            answer = requests.get(base_url + path, headers={**BEARER, "Connection": "close"},
                                  timeout=10)  # fmt: skip
            assert answer.status_code == 200, (path, answer.text)


@pytest.mark.parametrize(
    "body",
    [
        '{"id": 1e400, "inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], '
        '"data": [200]}]}',
        '{"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [200]}], '
        '"outputs": [{"name": "height_inches", "parameters": "x"}]}',
    ],
)
def test_bad_v2_ids_and_parameters_are_400(guarded, body):
    base_url, _ = guarded
    response = requests.post(f"{base_url}/v2/models/mlb-height/infer", data=body,
                             headers=BEARER, timeout=10)  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]


def test_a_broken_capture_store_is_503_and_metrics_still_answer(guarded):
    base_url, database = guarded
    answered_request_id(base_url)
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE capture_quality RENAME TO capture_quality_gone")
    try:
        for path in ("/quality", "/rollout"):
            answer = requests.get(base_url + path, headers=BEARER, timeout=10)
            assert answer.status_code == 503 and "capture database" in answer.json()["error"]
        scrape = requests.get(f"{base_url}/metrics", timeout=10)
        assert scrape.status_code == 200 and "capture_read_errors_total" in scrape.text
    finally:
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE capture_quality_gone RENAME TO capture_quality")


# The HTTP layer's own answers (granian's, before the app): the README lists them as the
# server's empty answers, and every other error is JSON.
SERVER_ANSWERS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400),
    (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431),
]


@pytest.mark.parametrize(("request_bytes", "status"), SERVER_ANSWERS)
def test_the_http_layers_own_answers_are_empty_and_close(guarded, request_bytes, status):
    base_url, _ = guarded
    with socket.create_connection(("127.0.0.1", port_of(base_url)), timeout=10) as sock:
        sock.sendall(request_bytes)
        received, _ = read_until_closed(sock, 10)
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    assert lines[0].startswith(f"http/1.1 {status} ")
    assert "content-length: 0" in lines and "connection: close" in lines and body == b""


def test_every_other_error_is_json(guarded):
    base_url, _ = guarded
    errors = [("GET", "/nope", None), ("DELETE", "/predict", None), ("POST", "/predict", b"{"),
              ("POST", "/predict", b"x" * (2 << 20))]  # fmt: skip
    for method, path, data in errors:
        answer = requests.request(method, base_url + path, data=data, headers=BEARER, timeout=10)
        assert 400 <= answer.status_code < 500
        assert answer.headers["Content-Type"] == "application/json" and answer.json()["error"]
