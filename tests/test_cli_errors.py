"""utilscli.py against services and stores that fail: one line on stderr, a non-zero exit,
never a traceback, no file created where none was; and the token each protected call sends.

The services are real HTTP servers on 127.0.0.1 scripted to fail (tests/scripted_http.py);
the stores are real SQLite files and a real PostgreSQL server.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ANSWER_200_LBS, foreign_database, free_port, start_server, stop
from scripted_http import Answer, ScriptedService, rollout_report

import utilscli
from cookbook.cli.http_client import (
    MAX_DETAIL_CHARS,
    Retryable,
    ServiceError,
    call_json,
    retry_after,
)
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_store import open_store
from cookbook.lifecycle.capture_writing import Record
from cookbook.lifecycle.registry import Registry
from cookbook.lifecycle.training import train

# The environment a command could otherwise pick its token or its store from.
CLEAN_ENV = {name: None for name in ("API_TOKEN", "ADMIN_TOKEN", "CAPTURE_URL", "PREDICT_URL",
                                     "PORT", "MODEL_PATH")}  # fmt: skip


@pytest.fixture
def service():
    with ScriptedService() as running:
        yield running


def invoke(*args: str, **env: str):
    return CliRunner().invoke(utilscli.cli, list(args), env={**CLEAN_ENV, **env})


def failure_line(result, exit_code: int = 1) -> str:
    """Return the one line a failed command wrote, after checking it failed cleanly."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------- the HTTP client


UNAUTHORIZED = Answer(401, {"error": "Send Authorization: Bearer <API_TOKEN> to call /x."})


@pytest.mark.parametrize(
    ("answer", "kind", "expected"),
    [
        (UNAUTHORIZED, ServiceError, "answered 401: Send Authorization: Bearer <API_TOKEN> to "
         "call /x. (pass --token or set API_TOKEN)"),
        (Answer(503, {"error": "overloaded"}, headers={"Retry-After": "2"}), Retryable,
         "answered 503: overloaded"),
        (Answer(404, {"error": "no such route"}), ServiceError, "answered 404: no such route"),
        (Answer(500, b"<html>boom</html>", headers={"Content-Type": "text/html"}), ServiceError,
         "answered 500: Internal Server Error"),
        (Answer(200, b"<html>ok</html>", headers={"Content-Type": "text/html"}), ServiceError,
         "answered 200 with a body that is not JSON (text/html)."),
        (Answer(200, b"\xff\xfe{"), ServiceError, "answered 200 with a body that is not JSON"),
        (Answer(200, [1, 2]), ServiceError, "answered 200 with JSON that is not an object"),
        (Answer(200, None), ServiceError, "answered 200 with JSON that is not an object"),
    ],
)  # fmt: skip
def test_call_json_turns_each_bad_answer_into_one_line(service, answer, kind, expected):
    service.answers["/x"] = answer
    with pytest.raises(ServiceError) as caught:
        call_json("GET", f"{service.url}/x", timeout=5)
    assert type(caught.value) is kind
    assert caught.value.message.startswith(f"{service.url}/x {expected}")
    assert "\n" not in caught.value.message


def test_a_retryable_answer_carries_its_retry_after(service):
    service.answers["/x"] = Answer(503, {"error": "busy"}, headers={"Retry-After": "2"})
    with pytest.raises(Retryable) as caught:
        call_json("GET", f"{service.url}/x", timeout=5)
    assert caught.value.retry_after_seconds == 2.0


@pytest.mark.parametrize(("header", "seconds"),
                         [(None, 0.0), ("1.5", 1.5), ("-3", 0.0), ("nan", 0.0), ("1e9", 30.0),
                          ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])  # fmt: skip
def test_retry_after_is_bounded(header, seconds):
    assert retry_after(header) == seconds


def test_a_refused_token_is_told_apart_from_a_missing_one(service):
    service.answers["/x"] = UNAUTHORIZED
    with pytest.raises(ServiceError, match=r"\(the token was refused\)$"):
        call_json("GET", f"{service.url}/x", timeout=5, token="wrong")
    assert service.authorizations("/x") == ["Bearer wrong"]


def test_an_error_text_is_one_line_and_bounded(service):
    service.answers["/x"] = Answer(400, {"error": "first line\n\tsecond line " + "x" * 5000})
    with pytest.raises(ServiceError) as caught:
        call_json("GET", f"{service.url}/x", timeout=5)
    detail = caught.value.message.split("answered 400: ", 1)[1]
    assert detail.startswith("first line second line xxx") and len(detail) == MAX_DETAIL_CHARS


def test_no_answer_within_the_timeout_is_one_line(service):
    service.answers["/x"] = Answer(200, {}, delay_seconds=1.0)
    with pytest.raises(ServiceError) as caught:
        call_json("GET", f"{service.url}/x", timeout=0.2)
    assert type(caught.value) is ServiceError  # not retried: the service may be working on it
    assert caught.value.message == f"{service.url}/x did not answer within 0.2 s."


def test_a_refused_connection_is_retryable_and_one_line():
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(Retryable) as caught:
        call_json("GET", url, timeout=5)
    assert caught.value.message == f"Cannot reach {url}: Connection refused"


@pytest.mark.parametrize("url", ["localhost:8080/predict", "predict", "http://", "http://a b/"])
def test_a_url_that_is_not_one_is_said_so(url):
    with pytest.raises(ServiceError, match="is not an http:// or https:// URL"):
        call_json("GET", url, timeout=5)


def test_a_tls_failure_is_one_line_and_not_retried(service):
    url = service.url.replace("http://", "https://") + "/x"  # TLS to a plain-HTTP server
    with pytest.raises(ServiceError) as caught:
        call_json("GET", url, timeout=5)
    assert type(caught.value) is ServiceError
    assert caught.value.message == f"Cannot reach {url}: TLS failed: wrong version number"


# -------------------------------------------------------------- --token everywhere


def token_commands(url: str) -> dict[str, tuple[list[str], str, Answer]]:
    """Return each command that calls a protected route: its arguments, the route, an answer."""
    return {
        "predict": (["predict", "--weight", "200", "--host", f"{url}/predict"], "/predict",
                    Answer(200, {"prediction": ANSWER_200_LBS})),
        "loadtest": (["loadtest", "--host", f"{url}/predict", "--seconds", "0.2",
                      "--concurrency", "1"], "/predict", Answer(200, {"prediction": 1.0})),
        "rollout status": (["rollout", "status", "--host", url], "/rollout",
                           Answer(200, rollout_report())),
        # --min-labels above the report's labels: refused after the call, nothing promoted.
        "rollout promote": (["rollout", "promote", "--host", url, "--min-labels", "1000"],
                            "/rollout", Answer(200, rollout_report())),
    }  # fmt: skip


@pytest.mark.parametrize("command", ["predict", "loadtest", "rollout status", "rollout promote"])
@pytest.mark.parametrize(
    ("flag", "env", "sent"),
    [(None, "from-env", "Bearer from-env"), ("from-flag", "from-env", "Bearer from-flag"),
     (None, None, None)],
)  # fmt: skip
def test_every_protected_call_sends_the_token(service, tmp_path, command, flag, env, sent):
    args, route, answer = token_commands(service.url)[command]
    service.answers[route] = answer
    extra = ["--token", flag] if flag else []
    environment = {"MODEL_PATH": str(tmp_path / "model.joblib")}
    if env:
        environment["API_TOKEN"] = env
    invoke(*args, *extra, **environment)
    seen = service.authorizations(route)
    assert seen and set(seen) == {sent}


@pytest.mark.parametrize("token", ["two words\n", "é", " padded ", ""])
def test_a_token_that_cannot_be_a_header_is_a_usage_error(service, token):
    result = invoke("rollout", "status", "--host", service.url, "--token", token)
    assert result.exit_code == 2 and "a token is printable ASCII" in result.stderr
    assert service.seen == []


# ------------------------------------------------------------------------- rollout


ROLLOUT_FAILURES = [
    (UNAUTHORIZED, "/rollout answered 401: Send Authorization: Bearer <API_TOKEN> to call /x. "
     "(pass --token or set API_TOKEN)"),
    (Answer(503, {"error": "the model is loading"}), "/rollout answered 503: the model is loading"),
    (Answer(200, b"<html>a proxy's page</html>", headers={"Content-Type": "text/html"}),
     "/rollout answered 200 with a body that is not JSON (text/html)."),
    (Answer(200, {"champion": 5, "canary": {"version": "b"}}), "/rollout did not answer with a "
     "rollout report this CLI can read ("),
    (Answer(200, {"versions": {}}), "/rollout did not answer with a rollout report this CLI can "
     "read (KeyError: 'champion')."),
]  # fmt: skip


@pytest.mark.parametrize("command", ["status", "promote"])
@pytest.mark.parametrize(("answer", "expected"), ROLLOUT_FAILURES)
def test_rollout_fails_in_one_line_on_a_bad_answer(service, tmp_path, command, answer, expected):
    service.answers["/rollout"] = answer
    result = invoke("rollout", command, "--host", service.url,
                    MODEL_PATH=str(tmp_path / "model.joblib"))  # fmt: skip
    assert failure_line(result).startswith(f"Error: {service.url}{expected}")
    assert list(tmp_path.iterdir()) == []  # no registry was created or touched


@pytest.mark.parametrize("command", ["status", "promote"])
def test_rollout_of_a_dead_or_silent_service_is_one_line(service, tmp_path, command):
    dead = f"http://127.0.0.1:{free_port()}"
    result = invoke("rollout", command, "--host", dead, MODEL_PATH=str(tmp_path / "m.joblib"))
    assert failure_line(result) == f"Error: Cannot reach {dead}/rollout: Connection refused"
    service.answers["/rollout"] = Answer(200, rollout_report(), delay_seconds=1.0)
    result = invoke("rollout", command, "--host", service.url, "--timeout", "0.2",
                    MODEL_PATH=str(tmp_path / "m.joblib"))  # fmt: skip
    assert failure_line(result) == f"Error: {service.url}/rollout did not answer within 0.2 s."


@pytest.fixture
def champion_and_candidate(tmp_path, trained_model, data_file):
    """A served model with a registry, and a second model (alpha=50) registered in it."""
    served = tmp_path / "served" / "model.joblib"
    served.parent.mkdir()
    for source in (trained_model, trained_model.with_suffix(".json")):
        served.parent.joinpath(source.name).write_bytes(source.read_bytes())
    store = Registry(served)
    champion = store.adopt_served()
    with store.staging() as staged:
        train(data_file, staged / "model.joblib", alpha=50.0)
        candidate = store.register(staged / "model.joblib")
    return served, champion.version, candidate.version


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(Answer(401, {"error": "Send Authorization: Bearer <ADMIN_TOKEN> to reload the model."}),
      "answered 401: Send Authorization: Bearer <ADMIN_TOKEN> to reload the model. "
      "(the token was refused)"),
     (Answer(200, b"reloaded", headers={"Content-Type": "text/plain"}),
      "answered 200 with a body that is not JSON (text/plain).")],
)  # fmt: skip
def test_a_failed_reload_says_the_registry_promoted(service, champion_and_candidate, answer,
                                                    expected):  # fmt: skip
    served, champion, candidate = champion_and_candidate
    service.answers["/rollout"] = Answer(200, rollout_report(champion, candidate))
    service.answers["/admin/reload"] = answer
    result = invoke("rollout", "promote", "--host", service.url, "--admin-token", "wrong",
                    MODEL_PATH=str(served))  # fmt: skip
    line = failure_line(result)
    assert line == (f"Error: {candidate} is promoted in the registry but the service did not "
                    f"reload: {service.url}/admin/reload {expected}")  # fmt: skip
    assert Registry(served).history()[-1] == candidate
    assert service.authorizations("/admin/reload") == ["Bearer wrong"]


# ------------------------------------------------------------------------- predict


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(Answer(200, {"prediction": 73.6}), "did not answer with a prediction."),
     (Answer(200, {"predictions": "many"}), "did not answer with a prediction."),
     (Answer(200, {"height": 73.6}), "did not answer with a prediction."),
     (Answer(200, b"", headers={"Content-Type": "text/plain"}),
      "answered 200 with a body that is not JSON (text/plain)."),
     (UNAUTHORIZED, "answered 401: Send Authorization: Bearer <API_TOKEN> to call /x. "
      "(pass --token or set API_TOKEN)")],
)  # fmt: skip
def test_predict_fails_in_one_line_on_a_bad_answer(service, answer, expected):
    service.answers["/predict"] = answer
    result = invoke("predict", "--weight", "200", "--host", f"{service.url}/predict")
    assert failure_line(result) == f"Error: {service.url}/predict {expected}"


def test_loadtest_refused_with_401_says_to_pass_a_token(service):
    service.answers["/predict"] = UNAUTHORIZED
    result = invoke("loadtest", "--host", f"{service.url}/predict", "--seconds", "0.2",
                    "--concurrency", "1")  # fmt: skip
    line = failure_line(result)
    assert "requests failed (401: " in line and line.endswith("401: pass --token or set API_TOKEN.")


def test_loadtest_of_a_dead_service_is_one_line():
    dead = f"http://127.0.0.1:{free_port()}/predict"
    result = invoke("loadtest", "--host", dead, "--seconds", "0.2", "--concurrency", "1")
    assert failure_line(result).startswith(f"Error: Cannot reach {dead}: every connection")


# ------------------------------------------------------------------ capture export


def listing(folder: Path) -> dict[str, str]:
    """Return every file under *folder* with its sha256: what a command must leave alone."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def not_a_store(case: str, folder: Path) -> tuple[Path, str]:
    """Make what *case* names in *folder*; return its path and the line export must print."""
    no_tables = "{path} holds no capture tables: it is not a capture store."
    if case == "missing":
        return folder / "nope.sqlite3", "No capture database at {path}: it does not exist."
    if case == "folder":
        return folder, "No capture database at {path}: it is a folder."
    if case == "empty":
        (folder / "empty.sqlite3").touch()
        return folder / "empty.sqlite3", no_tables
    if case == "not SQLite":
        (folder / "text.sqlite3").write_text("hello, world\n" * 20)
        return (
            folder / "text.sqlite3",
            "Cannot read the capture database {path}: file is not a database.",
        )
    wal = case == "no capture tables, WAL"  # even a read-only look would add -wal and -shm
    return foreign_database(folder / "other.sqlite3", wal=wal), no_tables


STORE_CASES = ["missing", "folder", "empty", "not SQLite", "no capture tables",
               "no capture tables, WAL"]  # fmt: skip


@pytest.mark.parametrize("case", STORE_CASES)
def test_capture_export_of_what_is_no_store_is_one_line_and_creates_nothing(
    trained_model, tmp_path, case
):
    folder = tmp_path / "store"
    folder.mkdir()
    path, expected = not_a_store(case, folder)
    before = listing(tmp_path)
    result = invoke("capture", "export", "--capture-url", f"sqlite:///{path}", "--output",
                    str(tmp_path / "out.csv"), MODEL_PATH=str(trained_model))  # fmt: skip
    assert failure_line(result) == "Error: " + expected.format(path=path)
    assert listing(tmp_path) == before  # no database, no -wal, no CSV


def test_capture_export_of_an_unreachable_postgresql_is_one_line(trained_model, tmp_path):
    url = f"postgresql://cookbook@127.0.0.1:{free_port()}/x"
    result = invoke("capture", "export", "--capture-url", url, "--output",
                    str(tmp_path / "out.csv"), MODEL_PATH=str(trained_model))  # fmt: skip
    line = failure_line(result)
    assert line.startswith("Error: Cannot reach the capture database: ") and "refused" in line
    assert list(tmp_path.iterdir()) == []


def test_capture_export_of_a_postgresql_database_without_the_tables(trained_model, tmp_path,
                                                                    postgres_url):  # fmt: skip
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS no_capture")
        db.execute("CREATE DATABASE no_capture")
    try:
        url = postgres_url.rsplit("/", 1)[0] + "/no_capture"
        result = invoke("capture", "export", "--capture-url", url, "--output",
                        str(tmp_path / "out.csv"), MODEL_PATH=str(trained_model))  # fmt: skip
        assert failure_line(result) == (
            "Error: The PostgreSQL database holds no capture tables: it is not a capture store."
        )
        with psycopg.connect(url) as db:  # the reader created nothing there either
            assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                              ).fetchone() == (0,)  # fmt: skip
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DROP DATABASE no_capture")


def test_capture_export_of_the_default_store_says_how_it_was_named(trained_model, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the default store would be
    result = invoke("capture", "export", "--output", "-", MODEL_PATH=str(trained_model),
                    PORT="8123")  # fmt: skip
    line = failure_line(result)
    assert line.startswith(f"Error: No capture database at {tmp_path}/cookbook-capture/")
    assert "the default store for this MODEL_PATH and PORT=8123" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "exit_code", "expected"),
    [(["--since", "yesterday"], 2, "Invalid value for '--since': 'yesterday' is neither"),
     (["--output", "{tmp}/no/such/folder/out.csv"], 1, "Cannot write {tmp}/no/such/folder/"
      "out.csv: its folder does not exist.")],
)  # fmt: skip
def test_capture_export_refuses_bad_options_before_reading(trained_model, tmp_path, args,
                                                           exit_code, expected):  # fmt: skip
    url = f"sqlite:///{tmp_path}/never-opened.sqlite3"
    args = [arg.format(tmp=tmp_path) for arg in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "out.csv")]
    result = invoke("capture", "export", "--capture-url", url, *args,
                    MODEL_PATH=str(trained_model))  # fmt: skip
    assert isinstance(result.exception, SystemExit) and result.exit_code == exit_code
    assert result.stderr.splitlines()[-1].startswith("Error: " + expected.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_capture_export_reads_a_store_without_changing_it(trained_model, tmp_path):
    url = f"sqlite:///{tmp_path}/store/capture.sqlite3"
    store = open_store(url)
    store.create()
    store.write([Record("r1", 0, time.time(), "v1", "champion", {"Weight": 200.0}, 73.6, 70.2,
                        77.0)])  # fmt: skip
    store.add_feedback([Feedback("r1", 0, 74.0)])
    database = tmp_path / "store" / "capture.sqlite3"
    before = database.read_bytes()
    result = invoke("capture", "export", "--capture-url", url, "--output", "-",
                    MODEL_PATH=str(trained_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.startswith("request_id,") and row.startswith("r1,") and row.endswith(",74.0")
    assert database.read_bytes() == before


def test_capture_export_of_a_damaged_record_is_one_line(trained_model, tmp_path):
    url = f"sqlite:///{tmp_path}/capture.sqlite3"
    open_store(url).create()
    with sqlite3.connect(tmp_path / "capture.sqlite3") as db:
        db.execute("INSERT INTO capture_batches (first_ts, last_ts, records, feature_names, body)"
                   " VALUES (1, 1, 1, '{}', ?)", (b"[[truncated",))  # fmt: skip
    db.close()
    result = invoke("capture", "export", "--capture-url", url, "--output", "-",
                    MODEL_PATH=str(trained_model))  # fmt: skip
    line = failure_line(result)
    assert line.startswith(f"Error: {tmp_path}/capture.sqlite3 holds a record this version "
                           "cannot read: JSONDecodeError: ")  # fmt: skip


# ------------------------------------------------- a real server behind API_TOKEN

TOKEN = "cli-token"


@pytest.fixture(scope="module")
def protected_server(trained_model, tmp_path_factory):
    """The production server with API_TOKEN set; yields its base URL."""
    process, base_url = start_server(trained_model, tmp_path_factory.mktemp("protected"),
                                     API_TOKEN=TOKEN)  # fmt: skip
    yield base_url
    stop(process)


def protected_calls(base_url: str) -> dict[str, list[str]]:
    return {
        "predict": ["predict", "--weight", "200", "--host", f"{base_url}/predict"],
        "rollout status": ["rollout", "status", "--host", base_url],
        "rollout promote": ["rollout", "promote", "--host", base_url, "--min-labels", "1000"],
        "loadtest": ["loadtest", "--host", f"{base_url}/predict", "--seconds", "0.3",
                     "--concurrency", "1"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["predict", "rollout status", "rollout promote", "loadtest"])
def test_protected_calls_pass_with_the_token_and_say_so_without(protected_server, tmp_path,
                                                                command):  # fmt: skip
    args = protected_calls(protected_server)[command]
    model = str(tmp_path / "model.joblib")  # promote's registry: never reached
    without = invoke(*args, MODEL_PATH=model)
    assert "401" in failure_line(without) and "pass --token or set API_TOKEN" in without.stderr
    wrong = invoke(*args, "--token", "not-it", MODEL_PATH=model)
    assert "401" in failure_line(wrong) and "the token was refused" in wrong.stderr
    for given in ({"API_TOKEN": TOKEN}, {}):
        extra = [] if given else ["--token", TOKEN]
        result = invoke(*args, *extra, MODEL_PATH=model, **given)
        if command == "rollout promote":  # read, then refused on its figures: not a 401
            assert failure_line(result).startswith("Error: Not promoted: ")
        else:
            assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []


def test_health_needs_no_token(protected_server):
    result = invoke("health", "--host", protected_server)
    assert result.exit_code == 0 and "Ready: yes" in result.stdout
