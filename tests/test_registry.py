"""The model registry: immutable versions, promotion, rollback, and crash-safe swaps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlib
from cookbook.core.files import sha256_file
from cookbook.lifecycle import gate, registry
from utilscli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, data_file) -> tuple[Path, str, str]:
    """A served model A and a registered, unpromoted model B, built once per module."""
    folder = tmp_path_factory.mktemp("registry-template")
    served = folder / "model.joblib"
    first = gate.retrain(data_file, served, test_size=0.1)
    store = registry.Registry(served)
    with store.staging() as staged:
        mlib.train(data_file, staged / "model.joblib", test_size=0.3)
        second = store.register(staged / "model.joblib")
    assert first.promoted and first.entry.version != second.version
    return folder, first.entry.version, second.version


@pytest.fixture
def store(tmp_path, two_versions) -> registry.Registry:
    """A private copy of the two-version registry that a test may change."""
    template, _a, _b = two_versions
    shutil.copytree(template, tmp_path / "project")
    return registry.Registry(tmp_path / "project" / "model.joblib")


def entry_files(store: registry.Registry, version: str) -> tuple[bytes, bytes]:
    folder = store.root / version
    return (folder / "model.joblib").read_bytes(), (folder / "model.json").read_bytes()


def served_files(store: registry.Registry) -> tuple[bytes, bytes]:
    return store.served_model.read_bytes(), mlib.metadata_path(store.served_model).read_bytes()


def test_every_training_run_is_an_immutable_traceable_entry(store, two_versions, data_file):
    _template, a, _b = two_versions
    assert entry_files(store, a) == served_files(store)  # the served pair is a byte copy
    metadata = json.loads((store.root / a / "model.json").read_text())
    assert metadata["model_version"] == a == sha256_file(store.root / a / "model.joblib")[:12]
    assert metadata["data"]["sha256"] == sha256_file(data_file)
    assert metadata["hyperparameters"] == {"alpha": 1.0, "test_size": 0.1, "random_state": 3}
    assert set(metadata["libraries"]) >= {"python", "numpy", "scikit-learn", "joblib"}
    assert set(metadata["metrics"]) == {"held_out", "golden"}
    code = metadata["code"]
    assert code["cookbook"] == mlib.__version__
    if shutil.which("git") and (ROOT / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        assert code["git_commit"] == head and isinstance(code["git_dirty"], bool)


def test_retraining_the_same_data_keeps_the_existing_entry(store, two_versions, data_file):
    _template, a, _b = two_versions
    before = entry_files(store, a)
    result = gate.retrain(data_file, store.served_model, test_size=0.1)
    assert result.entry.version == a and entry_files(store, a) == before
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")) == sorted(
        [a, two_versions[2], "golden.json", "promotions.json"]
    )


def test_promote_and_rollback_swap_the_served_pair(store, two_versions):
    _template, a, b = two_versions
    assert store.history() == [a]
    store.promote(b[:6])  # a unique prefix is enough
    assert served_files(store) == entry_files(store, b)
    assert mlib.load_predictor(store.served_model).version == b
    assert store.history() == [a, b]
    store.rollback()
    assert served_files(store) == entry_files(store, a) and store.history() == [a]
    with pytest.raises(registry.RegistryError, match="Nothing to roll back to"):
        store.rollback()
    assert served_files(store) == entry_files(store, a)


def test_promoting_the_served_version_again_changes_no_file(store, two_versions):
    # `make retrain` on unchanged data must leave a clean git tree (promotions.json is committed).
    _template, _a, b = two_versions
    store.promote(b)
    files = {p: p.read_bytes() for p in store.root.parent.rglob("*") if p.is_file()}
    store.promote(b)
    assert {p: p.read_bytes() for p in store.root.parent.rglob("*") if p.is_file()} == files


def test_promotion_refuses_a_tampered_entry(store, two_versions):
    _template, a, b = two_versions
    (store.root / b / "model.joblib").write_bytes(b"not the model that was registered")
    with pytest.raises(mlib.ModelError, match="does not match its metadata"):
        store.promote(b)
    assert served_files(store) == entry_files(store, a)


@pytest.mark.parametrize(
    ("version", "words"), [("zz", "too short"), ("ffffffff", "No model version 'ffffffff'")]
)
def test_unknown_versions_are_clear_errors(store, version, words):
    with pytest.raises(registry.RegistryError, match=words):
        store.promote(version)


def test_a_pair_left_half_swapped_is_recovered_from_the_registry(store, two_versions):
    """New joblib beside old json, as a crash between the two renames leaves them."""
    _template, a, b = two_versions
    shutil.copyfile(store.root / b / "model.joblib", store.served_model)
    predictor = mlib.load_predictor(store.served_model)
    assert predictor.version == b
    assert predictor.metadata == json.loads((store.root / b / "model.json").read_text())
    assert mlib.load_model(store.served_model) is not None
    assert store.history() == [a, b]


def test_a_joblib_unknown_to_the_registry_is_still_refused(store):
    store.served_model.write_bytes(b"an unregistered pickle")
    with pytest.raises(mlib.ModelError, match="does not match its metadata"):
        mlib.load_predictor(store.served_model)


def count_replaces(monkeypatch, action) -> int:
    calls = []
    real = os.replace

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", counting)
    action()
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def assert_consistent(store: registry.Registry, allowed: set[str]) -> str:
    """Assert the served model loads whole as one of *allowed*; return its version."""
    mlib.forget_loaded_models()
    predictor = mlib.load_predictor(store.served_model)
    assert predictor.version in allowed
    entry = json.loads((store.root / predictor.version / "model.json").read_text())
    assert predictor.metadata == entry  # metadata and weights from the same version
    assert predictor.linear.coefficients["Weight"] == entry["folded"]["coefficients"]["Weight"]
    assert sha256_file(store.served_model) == entry["model_sha256"]
    assert store.history()[-1] == predictor.version
    return predictor.version


# promote makes 3 renames (joblib, json, history) and rollback 3 (history, joblib, json);
# the test below checks those counts, so every step is covered.
STEPS = 3


def test_promote_and_rollback_rename_three_files(tmp_path, two_versions, monkeypatch):
    template, _a, b = two_versions
    shutil.copytree(template, tmp_path / "p")
    store = registry.Registry(tmp_path / "p" / "model.joblib")
    assert count_replaces(monkeypatch, lambda: store.promote(b)) == STEPS
    assert count_replaces(monkeypatch, store.rollback) == STEPS


@pytest.mark.parametrize("crash_at", range(1, STEPS + 1))
@pytest.mark.parametrize("operation", ["promote", "rollback"])
def test_a_crash_at_any_rename_serves_the_old_or_the_new_model(
    store, two_versions, monkeypatch, crash_at, operation
):
    _template, a, b = two_versions
    if operation == "rollback":
        store.promote(b)
    real = os.replace
    calls = []

    def crashing(*args, **kwargs):
        calls.append(args)
        if len(calls) == crash_at:
            raise OSError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", crashing)
    with pytest.raises(OSError, match="simulated crash"):
        store.promote(b) if operation == "promote" else store.rollback()
    monkeypatch.setattr(os, "replace", real)
    served = assert_consistent(store, {a, b})
    # Running the operation again finishes the job from wherever the crash left it.
    if operation == "promote":
        store.promote(b)
        assert assert_consistent(store, {b}) == b and store.history() == [a, b]
    else:
        if served == b:
            store.rollback()
        assert assert_consistent(store, {a}) == a and store.history() == [a]


CRASHING_PROMOTE = """
import os, sys
from cookbook.lifecycle import registry
real, calls = os.replace, []
def crashing(*args, **kwargs):
    calls.append(args)
    if len(calls) == int(sys.argv[2]):
        os._exit(9)  # die on the spot: no finally blocks, no clean-up
    return real(*args, **kwargs)
os.replace = crashing
registry.Registry(sys.argv[1]).promote(sys.argv[3])
"""


@pytest.mark.parametrize("crash_at", range(1, STEPS + 1))
def test_a_killed_promotion_serves_the_old_or_the_new_model(store, two_versions, crash_at):
    _template, a, b = two_versions
    process = subprocess.run(
        [sys.executable, "-c", CRASHING_PROMOTE, str(store.served_model), str(crash_at), b],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 9, process.stderr
    expected = a if crash_at == 1 else b
    assert assert_consistent(store, {a, b}) == expected


def run_cli(model: Path, *args: str):
    return CliRunner().invoke(cli, list(args), env={"MODEL_PATH": str(model)})


def test_models_commands(store, two_versions):
    _template, a, b = two_versions
    listed = run_cli(store.served_model, "models", "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.output.splitlines()
    assert header.split() == ["version", "created", "R²", "RMSE", "data", "promoted"]
    by_version = {row.split()[0]: row.split() for row in rows}
    assert set(by_version) == {a, b}
    assert by_version[a][-1] == "*" and by_version[b][-1] != "*"
    assert by_version[a][4] == store.entry(a).metadata["data"]["sha256"][:12]

    promoted = run_cli(store.served_model, "models", "promote", b)
    assert promoted.exit_code == 0 and b in promoted.output
    as_json = json.loads(run_cli(store.served_model, "models", "list", "--json").output)
    assert {e["version"]: (e["served"], e["promoted_before"]) for e in as_json} == {
        a: (False, True),
        b: (True, False),
    }
    rolled = run_cli(store.served_model, "models", "rollback")
    assert rolled.exit_code == 0 and a in rolled.output
    assert mlib.load_predictor(store.served_model).version == a


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["models", "promote", "0000000"], "No model version"),
        (["models", "rollback"], "Nothing to roll back to"),
    ],
)
def test_models_command_errors_are_one_line(store, args, words):
    result = subprocess.run(
        [sys.executable, "utilscli.py", *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "MODEL_PATH": str(store.served_model)}, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr
    assert "Traceback" not in result.stderr


def test_list_shows_an_unregistered_served_model_without_writing(tmp_path, trained_model):
    for source in (trained_model, mlib.metadata_path(trained_model)):
        shutil.copy2(source, tmp_path / source.name)
    result = run_cli(tmp_path / "model.joblib", "models", "list")
    version = mlib.read_metadata(trained_model)["model_version"]
    assert result.exit_code == 0 and version in result.output and "*" in result.output
    assert not (tmp_path / "models").exists()


def test_the_app_serves_a_half_swapped_pair_as_the_new_model(store, two_versions):
    from app import create_app

    _template, _a, b = two_versions
    shutil.copyfile(store.root / b / "model.joblib", store.served_model)
    client = create_app({"MODEL_PATH": str(store.served_model), "TESTING": True}).test_client()
    answer = client.get("/model")
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == b
    assert answer.get_json()["model_version"] == b
    slope = store.entry(b).metadata["folded"]["coefficients"]["Weight"]
    intercept = store.entry(b).metadata["folded"]["intercept"]
    height = client.post("/predict", json={"Weight": 200}).get_json()["prediction"]
    assert height["height_inches"] == round(slope * 200 + intercept, 1)


def test_a_reload_accepts_the_half_swapped_pair_the_app_recovered(store, two_versions):
    # The reload snapshot holds the metadata that verified (the registry entry's), not the
    # stale json beside the new joblib: the snapshot folder has no registry to recover from.
    from app import create_app
    from cookbook.web.reload import ReloadState
    from cookbook.web.served import service_state

    _template, a, b = two_versions
    shutil.copyfile(store.root / b / "model.joblib", store.served_model)
    assert json.loads(mlib.metadata_path(store.served_model).read_text())["model_version"] == a
    app = create_app({"MODEL_PATH": str(store.served_model), "TESTING": True})
    current = service_state(app).served.predictor
    assert current.version == b
    predictor, outcome = ReloadState().reload(store.served_model, current)
    assert outcome.accepted is True, outcome.reason
    assert outcome.model_version == predictor.version == b
    assert predictor.metadata == store.entry(b).metadata
