"""The production server's settings and its RSGI adapter, and the server for real over HTTP."""

from __future__ import annotations

import http.client
import io

import pytest
import requests
from helpers import ANSWER_200_LBS, ROOT, RSGIHeaders, RSGIScope, free_port, server_env

from cookbook.web.rsgi import (
    BodyCutShort,
    BodyTooLarge,
    announced_length,
    environ_for,
    read_body,
)
from cookbook.web.server import ServerSettings


def test_settings_come_from_the_environment():
    settings = ServerSettings.from_environ(
        {"PORT": "9000", "WEB_CONCURRENCY": "3", "MAX_PENDING": "1", "READ_TIMEOUT": "7"}
    )
    assert (settings.port, settings.workers, settings.max_pending) == (9000, 3, 1)
    assert settings.read_timeout_seconds == 7
    assert ServerSettings.from_environ({}) == ServerSettings()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [("MAX_PENDING", "0", "at least 1"), ("PORT", "eighty", "whole number"),
     ("WEB_CONCURRENCY", "-2", "at least 1")],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(name, value, words):
    with pytest.raises(ValueError, match=words):
        ServerSettings.from_environ({name: value})


def test_a_bad_setting_stops_the_server_in_one_line(trained_model):
    import subprocess
    import sys

    env = server_env(trained_model, free_port(), MAX_PENDING="none")
    result = subprocess.run([sys.executable, "-m", "cookbook.web.server"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: MAX_PENDING must be a whole number, got 'none'."


def scope(headers: list[tuple[str, str]]) -> RSGIScope:
    return RSGIScope("POST", "/prédict", "a=1", RSGIHeaders(headers))


def test_the_environ_follows_pep_3333():
    headers = [("content-type", "application/json"), ("x-request-id", "r1"), ("accept", "a"),
               ("accept", "b"), ("content-length", "999")]  # fmt: skip
    environ = environ_for(scope(headers), b'{"Weight": 200}')
    assert environ["PATH_INFO"] == "/prédict".encode().decode("latin-1")
    assert environ["CONTENT_TYPE"] == "application/json"
    # The length is the body's as received, whatever the header claimed.
    assert environ["CONTENT_LENGTH"] == "15"
    assert environ["HTTP_X_REQUEST_ID"] == "r1" and environ["HTTP_ACCEPT"] == "a,b"
    assert isinstance(environ["wsgi.input"], io.BytesIO)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8080")


def test_a_chunked_request_reaches_the_app_with_its_length_and_no_transfer_coding():
    headers = [("transfer-encoding", "chunked"), ("content-type", "application/json")]
    environ = environ_for(scope(headers), b'{"Weight": 200}')
    assert environ["CONTENT_LENGTH"] == "15" and "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["wsgi.input_terminated"] is True


@pytest.mark.parametrize(
    ("headers", "length"),
    [({"content-length": "15"}, 15), ({}, None), ({"transfer-encoding": "chunked"}, None),
     ({"transfer-encoding": "gzip, Chunked", "content-length": "3"}, None)],
)  # fmt: skip
def test_the_announced_length(headers, length):
    assert announced_length(headers) == length


class Body:
    """An RSGI protocol's body side as granian serves it: ``await protocol()`` for the whole
    body, or an async iterator of chunks that ends with one empty chunk."""

    def __init__(self, chunks: list[bytes], fails: bool = False) -> None:
        self.chunks = chunks
        self.fails = fails

    async def __call__(self) -> bytes:
        if self.fails:
            raise RuntimeError("stream error")  # granian's protocol error: the client closed
        return b"".join(self.chunks)

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk


def read(body: Body, length: int | None, limit: int = 10) -> bytes:
    import asyncio

    return asyncio.run(read_body(body, length, limit))


def test_a_body_is_read_whole_within_the_limit():
    assert read(Body([b'{"Weight"', b": 200}", b""]), None, limit=15) == b'{"Weight": 200}'
    assert read(Body([b"0123456789"]), 10) == b"0123456789"


def test_a_chunked_body_past_the_limit_is_refused_as_it_arrives():
    read_so_far = []

    class Watched(Body):
        async def __aiter__(self):
            for chunk in self.chunks:
                read_so_far.append(chunk)
                yield chunk

    with pytest.raises(BodyTooLarge):
        read(Watched([b"123456", b"78901", b"never read", b""]), None)
    assert read_so_far == [b"123456", b"78901"]


@pytest.mark.parametrize(
    ("body", "length"),
    [(Body([b"123"], fails=True), 10),  # shorter than its Content-Length
     (Body([b"123", b"", b""]), None)],  # granian's empty chunk for a failed read, then the end
    ids=["Content-Length", "chunked"],
)  # fmt: skip
def test_a_body_cut_short_is_told_apart(body, length):
    with pytest.raises(BodyCutShort):
        read(body, length)


def test_the_production_server_answers_the_cookbooks_curl(live_server):
    # No Content-Type, as the cookbook's curl sends it.
    answer = requests.post(f"{live_server}/predict", data='{"Weight": 200}', timeout=10)
    assert answer.status_code == 200 and answer.json() == {"prediction": ANSWER_200_LBS}
    assert answer.headers["Server"] == "granian"


def test_bad_input_is_a_400_over_real_http(live_server):
    answer = requests.post(f"{live_server}/predict", data='{"Weight": "x"}', timeout=10)
    assert answer.status_code == 400 and "got a string" in answer.json()["error"]


def test_keep_alive_reuses_one_connection(live_server):
    host, port = live_server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    local = set()
    for _ in range(20):
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("Connection") != "close"
        local.add(connection.sock.getsockname())
    connection.close()
    assert len(local) == 1


def test_serve_uses_the_sagemaker_model_dir_when_it_holds_a_pair(tmp_path):
    from cookbook.web.container import sagemaker_environment

    (tmp_path / "model.joblib").write_bytes(b"x")
    env = sagemaker_environment({"SM_MODEL_DIR": str(tmp_path), "PORT": "9999"})
    assert env["MODEL_PATH"] == str(tmp_path / "model.joblib") and env["PORT"] == "8080"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = sagemaker_environment({"SM_MODEL_DIR": str(empty), "MODEL_PATH": "/app/model.joblib"})
    assert env["MODEL_PATH"] == "/app/model.joblib"  # nothing there: the image's own model


def test_serve_refuses_a_tampered_pair_from_the_model_dir(model_copy):
    import subprocess
    import sys

    model_copy.write_bytes(b"tampered")
    env = {**server_env(model_copy, free_port()), "SM_MODEL_DIR": str(model_copy.parent)}
    result = subprocess.run([sys.executable, "-m", "cookbook.web.container", "serve"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1 and "does not match its metadata" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_worker_reaped_by_another_thread_is_not_alive():
    import multiprocessing
    import os

    from cookbook.web.server import worker_alive

    process = multiprocessing.get_context("fork").Process(target=lambda: None)
    process.start()
    os.waitpid(process.pid, 0)  # what granian's watcher thread does, before it records the code
    assert process.is_alive()  # multiprocessing is fooled: the exit code was never recorded
    assert not worker_alive(process)


def test_connections_per_worker_fit_the_open_file_limit():
    from cookbook.web.server import RESERVED_FILES, connections_per_worker

    settings = ServerSettings.from_environ({"MAX_CONNECTIONS": "5000"})
    assert connections_per_worker(settings, 1 << 20) == 5000
    assert connections_per_worker(settings, 1024) == 1024 - RESERVED_FILES


def test_the_server_raises_its_open_file_limit_to_the_hard_limit():
    import subprocess
    import sys

    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from cookbook.web.server import raise_open_files_limit\n"
        "raise_open_files_limit()\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "print(soft == hard or soft == 1 << 20)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.stdout.strip() == "True", result.stderr
