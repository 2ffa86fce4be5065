"""Hostile input to ``utilscli.py`` as a person meets it: real processes, real files, and
real HTTP servers on 127.0.0.1 that refuse, fail, garble or never answer.

Every case ends the same way: one line on stderr, a non-zero exit, no traceback, and no
file created where none was (no database, no -wal or -shm beside one, no registry).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import foreign_database, free_port, run_script
from scripted_http import Answer, ScriptedService, rollout_report

pytestmark = pytest.mark.reliability

# Empty: as good as unset for every command (click ignores an empty envvar).
UNSET = {"API_TOKEN": "", "ADMIN_TOKEN": "", "CAPTURE_URL": "", "PREDICT_URL": "", "PORT": ""}


def utilscli(*args: str, **env: str):
    return run_script("utilscli.py", *args, env={**UNSET, **env})


def one_line_failure(result, exit_code: int = 1) -> str:
    """Return the failure's one line, after checking it is the only line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture
def service():
    with ScriptedService() as running:
        yield running


# ------------------------------------------------------------------ capture export


def make(case: str, folder: Path) -> Path:
    """Make in *folder* what *case* names, which is no capture store; return its path."""
    path = folder / "capture.sqlite3"
    if case == "empty file":
        path.touch()
    elif case == "not SQLite":
        path.write_bytes(b"id,weight\n1,200\n" * 100)
    elif case.startswith("SQLite without capture tables"):
        foreign_database(path, wal=case.endswith("(WAL)"))
    elif case == "a folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ("case", "words"),
    [("missing file", "does not exist"), ("empty file", "holds no capture tables"),
     ("SQLite without capture tables", "holds no capture tables"),
     ("SQLite without capture tables (WAL)", "holds no capture tables"),
     ("not SQLite", "file is not a database"), ("a folder", "it is a folder")],
)  # fmt: skip
def test_capture_export_of_no_store(trained_model, tmp_path, case, words):
    path = make(case, tmp_path)
    before = files_under(tmp_path)
    result = utilscli("capture", "export", "--capture-url", f"sqlite:///{path}", "--output",
                      str(tmp_path / "out.csv"), MODEL_PATH=str(trained_model))  # fmt: skip
    assert words in one_line_failure(result) and str(path) in result.stderr
    assert files_under(tmp_path) == before


def test_capture_export_of_a_default_store_that_is_not_there(trained_model, tmp_path):
    # The default store lives in the temporary folder, named by MODEL_PATH and PORT.
    result = utilscli("capture", "export", "--output", str(tmp_path / "out.csv"),
                      MODEL_PATH=str(trained_model), PORT="8123", TMPDIR=str(tmp_path))  # fmt: skip
    line = one_line_failure(result)
    assert "does not exist" in line and "PORT=8123" in line and "--capture-url" in line
    assert list(tmp_path.iterdir()) == []


def test_capture_export_of_an_unreachable_postgresql(trained_model, tmp_path):
    result = utilscli("capture", "export", "--capture-url",
                      f"postgresql://cookbook@127.0.0.1:{free_port()}/x", "--output",
                      str(tmp_path / "out.csv"), MODEL_PATH=str(trained_model))  # fmt: skip
    assert "Cannot reach the capture database" in one_line_failure(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "exit_code", "words"),
    [(["--since", "last tuesday"], 2, "Invalid value for '--since'"),
     (["--since", "7x"], 2, "Invalid value for '--since'"),
     (["--output", "no/such/folder/out.csv"], 1, "its folder does not exist")],
)  # fmt: skip
def test_capture_export_with_bad_options(trained_model, tmp_path, args, exit_code, words):
    url = f"sqlite:///{tmp_path}/never.sqlite3"
    if "--output" not in args:
        args = [*args, "--output", str(tmp_path / "out.csv")]
    result = utilscli("capture", "export", "--capture-url", url, *args,
                      MODEL_PATH=str(trained_model))  # fmt: skip
    assert "Traceback" not in result.stderr and result.returncode == exit_code
    assert words in result.stderr.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- rollout


SERVICE_FAILURES = {
    "401": (Answer(401, {"error": "Send Authorization: Bearer <API_TOKEN> to call /rollout."}),
            "answered 401: Send Authorization: Bearer <API_TOKEN> to call /rollout. "
            "(pass --token or set API_TOKEN)"),
    "503": (Answer(503, {"error": "the model is loading"}), "answered 503: the model is loading"),
    "not JSON": (Answer(200, b"<html>gateway</html>", headers={"Content-Type": "text/html"}),
                 "answered 200 with a body that is not JSON (text/html)."),
    "no answer": (Answer(200, rollout_report(), delay_seconds=3.0),
                  "did not answer within 0.5 s."),
}  # fmt: skip


@pytest.mark.parametrize("command", ["promote", "status"])
@pytest.mark.parametrize("failure", list(SERVICE_FAILURES))
def test_rollout_against_a_failing_service(service, tmp_path, command, failure):
    answer, words = SERVICE_FAILURES[failure]
    service.answers["/rollout"] = answer
    result = utilscli("rollout", command, "--host", service.url, "--timeout", "0.5",
                      MODEL_PATH=str(tmp_path / "model.joblib"))  # fmt: skip
    assert one_line_failure(result) == f"Error: {service.url}/rollout {words}"
    assert list(tmp_path.iterdir()) == []  # no registry made, nothing promoted


@pytest.mark.parametrize("command", ["promote", "status"])
def test_rollout_against_no_service(tmp_path, command):
    dead = f"http://127.0.0.1:{free_port()}"
    result = utilscli("rollout", command, "--host", dead, MODEL_PATH=str(tmp_path / "m.joblib"))
    assert one_line_failure(result) == f"Error: Cannot reach {dead}/rollout: Connection refused"


def test_rollout_promote_sends_the_token_it_is_given(service, tmp_path):
    service.answers["/rollout"] = Answer(200, rollout_report())
    result = utilscli("rollout", "promote", "--host", service.url, "--min-labels", "1000",
                      MODEL_PATH=str(tmp_path / "m.joblib"), API_TOKEN="s3cret")  # fmt: skip
    assert "labelled rows" in one_line_failure(result)
    assert service.authorizations("/rollout") == ["Bearer s3cret"]


def test_rollout_promote_of_a_version_this_registry_lacks(service, tmp_path):
    service.answers["/rollout"] = Answer(200, rollout_report())
    result = utilscli("rollout", "promote", "--host", service.url,
                      MODEL_PATH=str(tmp_path / "model.joblib"))  # fmt: skip
    assert "No model version 'bbbbbbbbbbbb'" in one_line_failure(result)
    assert list(tmp_path.iterdir()) == []  # not even the registry's lock file


# ---------------------------------------------------------------------- ct's fetch


@pytest.mark.parametrize(
    ("answer", "words"),
    [(Answer(503, {"error": "busy"}), "Cannot fetch {url}: Service Unavailable."),
     (Answer(401, {"error": "who?"}), "Cannot fetch {url}: Unauthorized."),
     (Answer(200, b"<html>sign in</html>", headers={"Content-Type": "text/html"}),
      "{url} has no Weight column."),
     (Answer(200, b"", headers={"Content-Type": "text/csv"}), "{url} is empty."),
     (None, "Cannot fetch {url}: [Errno 111] Connection refused.")],
)  # fmt: skip
def test_ct_of_data_it_cannot_fetch_or_read(service, model_copy, answer, words):
    url = f"{service.url}/data.csv" if answer else f"http://127.0.0.1:{free_port()}/data.csv"
    if answer:
        service.answers["/data.csv"] = answer
    before = files_under(model_copy.parent)
    pr_file = model_copy.parent / "pr.md"
    result = utilscli("ct", "--data-url", url, "--pr-file", str(pr_file),
                      MODEL_PATH=str(model_copy))  # fmt: skip
    assert words.format(url=url) in one_line_failure(result)
    assert files_under(model_copy.parent) == before  # the served model untouched, no PR file


# ------------------------------------------------------------------------- predict


@pytest.mark.parametrize("failure", ["401", "not JSON", "no answer"])
def test_predict_against_a_failing_service(service, failure):
    answer, words = SERVICE_FAILURES[failure]
    service.answers["/predict"] = answer
    result = utilscli("predict", "--weight", "200", "--host", f"{service.url}/predict",
                      "--timeout", "0.5")  # fmt: skip
    assert one_line_failure(result).startswith(f"Error: {service.url}/predict {words[:20]}")
