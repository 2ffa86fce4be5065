"""Helpers the tests share (fixtures live in conftest.py): paths, a real gunicorn, faults,
the Dockerfile's facts, and the committed model's expected answers, each defined once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cookbook.core.layout import metadata_path, present_side_files

# What the committed model (and any model trained the cookbook's way on htwtmlb.csv) answers.
# Its 90% split-conformal interval is ± HALF_WIDTH inches, calibrated on the held-out rows.
HALF_WIDTH = 3.3889400367952476
HELD_OUT_COVERAGE = 97 / 104


def interval(low: float, high: float, low_text: str, high_text: str) -> dict:
    return {"low": low, "high": high, "coverage": 0.9,
            "low_human_readable": low_text, "high_human_readable": high_text}  # fmt: skip


ANSWER_200_LBS = {
    "height_inches": 73.6,
    "height_human_readable": "6 foot, 2 inches",
    "interval": interval(70.2, 77.0, "5 foot, 10 inches", "6 foot, 5 inches"),
}
ANSWER_180_LBS = {
    "height_inches": 72.4,
    "height_human_readable": "6 foot, 0 inches",
    "interval": interval(69.0, 75.8, "5 foot, 9 inches", "6 foot, 4 inches"),
}
ANSWER_250_LBS = {
    "height_inches": 76.6,
    "height_human_readable": "6 foot, 5 inches",
    "interval": interval(73.2, 80.0, "6 foot, 1 inches", "6 foot, 8 inches"),
}
# The committed model's version (model.joblib's sha256, first 12 digits).
COMMITTED_VERSION = "62d988d3b1d2"
TRAINING_ROWS = 1033
HELD_OUT_ROWS = 104

ROOT = Path(__file__).resolve().parent.parent


DATA = ROOT / "htwtmlb.csv"

# OpenBLAS picks its kernels by CPU, and their sums differ in the last bit (a model trained
# on one machine is one ulp off the same training on another, so its bytes and version
# differ): a fresh training equals a committed model to this relative tolerance, and equals
# its own repeat on one machine exactly.
LAST_BITS = 1e-12


def same_fit(model_file: Path, other_file: Path, frame) -> bool:
    """Return whether two fitted models predict the same on *frame* (a classifier: the same
    probabilities), to the last bits."""
    import numpy as np

    from cookbook.lifecycle.artifacts import load_estimator

    def outputs(estimator):
        classifier = hasattr(estimator, "predict_proba")
        return estimator.predict_proba(frame) if classifier else estimator.predict(frame)

    ours, theirs = load_estimator(model_file), load_estimator(other_file)
    return bool(np.allclose(outputs(ours), outputs(theirs), rtol=LAST_BITS, atol=0))


# scikit-learn's bundled classification data, with text labels, as the tests write them.
CANCER_FEATURES = ["mean_radius", "mean_texture", "mean_concavity", "mean_smoothness"]
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def cancer_frame():
    """Return breast_cancer's CANCER_FEATURES and its ``diagnosis``: malignant or benign."""
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    cancer["diagnosis"] = cancer["target"].map({0: "malignant", 1: "benign"})
    return cancer[[*CANCER_FEATURES, "diagnosis"]]


def iris_frame():
    """Return iris's IRIS_FEATURES and its ``species``: setosa, versicolor or virginica."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    flowers = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    flowers["species"] = [iris.target_names[t] for t in flowers["target"]]
    return flowers[[*IRIS_FEATURES, "species"]]


def classification_csvs(folder: Path) -> dict[str, Path]:
    """Write cancer.csv (binary) and iris.csv (multiclass) into *folder*; return their paths."""
    files = {"cancer": folder / "cancer.csv", "iris": folder / "iris.csv"}
    cancer_frame().to_csv(files["cancer"], index=False)
    iris_frame().to_csv(files["iris"], index=False)
    return files


def metric(client, line_start: str) -> float:
    """Return the value of the first /metrics sample whose line starts with *line_start*."""
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {line_start!r} in /metrics")


def openapi_paths(app) -> set[str]:
    """Return the app's routes as OpenAPI writes them (Flask's <name> is OpenAPI's {name})."""
    return {re.sub(r"<(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"}  # fmt: skip


def break_model(model_file: Path, fault: str) -> Path:
    """Damage the model pair at *model_file* as *fault* says; return the path to load."""
    metadata_file = metadata_path(model_file)
    if fault in ("missing", "directory"):
        model_file.unlink()
        if fault == "directory":
            model_file.mkdir()
    elif fault == "empty":
        model_file.write_bytes(b"")
    elif fault == "truncated":
        model_file.write_bytes(model_file.read_bytes()[:100])
    elif fault == "tampered":
        model_file.write_bytes(b"\x80\x04tampered")
    elif fault == "metadata missing":
        metadata_file.unlink()
    elif fault == "metadata truncated":
        metadata_file.write_text(metadata_file.read_text()[:50])
    elif fault == "metadata empty":
        metadata_file.write_text("")
    elif fault == "path is a folder":
        return model_file.parent
    else:
        raise ValueError(f"unknown fault {fault!r}")
    return model_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(model_file: Path, port: int, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MODEL_PATH": str(model_file), "PORT": str(port), **extra}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def start_gunicorn(model_file: Path, tmp_dir: Path, **extra: str):
    """Start a real gunicorn on a free 127.0.0.1 port; return (process, base_url)."""
    port = free_port()
    env = server_env(model_file, port, WEB_CONCURRENCY="2", **extra)
    with open(tmp_dir / f"gunicorn-{port}.log", "wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{port}", "app:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process)
    except BaseException:  # a server that never became ready is not left running
        stop(process)
        raise
    return process, base_url


def start_server(model_file: Path, tmp_dir: Path, **extra: str):
    """Start the production server (granian, 2 workers) on a free 127.0.0.1 port.

    Return (process, base_url); its output goes to ``server-<port>.log`` in *tmp_dir*.
    """
    port = free_port()
    env = server_env(model_file, port, WEB_CONCURRENCY="2", HOST="127.0.0.1", **extra)
    with open(tmp_dir / f"server-{port}.log", "wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [sys.executable, "-m", "cookbook.web.server"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process)
    except BaseException:  # a server that never became ready is not left running
        stop(process)
        raise
    return process, base_url


def wait_until_ready(base_url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if requests.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} was not ready within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_script(*args: str, env: dict[str, str], stdin: str | None = None):
    import os

    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    """Return the instructions after the last FROM: what the shipped image is made of."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def arguments_of(keyword: str, stage: list[tuple[str, str]] | None = None) -> list[str]:
    return [arguments for kw, arguments in (stage or final_stage()) if kw == keyword]


def exposed_port() -> int:
    (port,) = arguments_of("EXPOSE")
    return int(port)


def service_uid() -> int:
    """Return the numeric uid the image runs as (USER ${APP_UID} resolved from its ARG)."""
    (user,) = arguments_of("USER")
    uid = user.split(":")[0]
    args = dict(a.split("=", 1) for a in arguments_of("ARG") if "=" in a)
    return int(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], uid))


BAD_BODIES = [
    ('{"Weight": "200"}', "got a string"),
    ('{"Weight": null}', "got null"),
    ('{"Weight": true}', "got a boolean"),
    ('{"Weight": false}', "got a boolean"),
    ('{"Weight": NaN}', "NaN is not a valid JSON number"),
    ('{"Weight": Infinity}', "Infinity is not a valid JSON number"),
    ('{"Weight": -Infinity}', "-Infinity is not a valid JSON number"),
    ('{"Weight": 1e309}', "finite"),
    ('{"Weight": -5}', "greater than 0"),
    ('{"Weight": 0}', "greater than 0"),
    ('{"Weight": 1001}', "at most 1000"),
    ('{"Weight": []}', "empty list"),
    ('{"Weight": {"lbs": 200}}', "got an object"),
    ('{"Weight": [180, [200]]}', r"Weight\[1\] must be a number of pounds, got a list"),
    ('{"Weight": [180, "x"]}', r"Weight\[1\]"),
    ('{"weight": 200}', 'Missing key "Weight"'),
    ("{}", 'Missing key "Weight"'),
    ("[200]", "must be a JSON object"),
    ("200", "must be a JSON object"),
    ('"Weight"', "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('{"Weight": 2', "not valid JSON"),
    ('{"Weight": ', "not valid JSON"),
    ("", "empty"),
    ("   ", "empty"),
    (b"\xff\xfe", "not UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid JSON"),
]


def start_postgres(folder: Path) -> str:
    """Start a real PostgreSQL server (Debian's package) in *folder*; return its URL.

    The server runs as the ``postgres`` user when the tests run as root (initdb refuses
    root), listens on a free 127.0.0.1 port and trusts local connections. Stop it with
    ``stop_postgres(folder)``.
    """
    import glob
    import shutil as _shutil

    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        raise FileNotFoundError("PostgreSQL is not installed: apt-get install postgresql")
    bindir = Path(binaries[-1]).parent
    data = folder / "pgdata"
    port = free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        _shutil.chown(folder, "postgres")
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "cookbook", "--no-sync"], check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                    str(folder / "postgres.log"), "-w", "start"], check=True,
                   capture_output=True)  # fmt: skip
    return f"postgresql://cookbook@127.0.0.1:{port}/postgres"


def stop_postgres(folder: Path) -> None:
    """Stop the PostgreSQL server started in *folder*."""
    import glob

    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(folder / "pgdata"), "-m",
                    "fast", "-w", "stop"], capture_output=True)  # fmt: skip


def threaded_model(folder: Path) -> Path:
    """Write a HistGradientBoostingRegressor pair (it predicts on an OpenMP thread pool),
    fitted on scikit-learn's bundled diabetes data, into *folder*; return its path.

    The cookbook's own training writes the data's schema and metadata, then the estimator
    is swapped for the boosted one: a bare estimator, as an import may bring, saved unfolded
    and checked against its ONNX form (one matrix input) on the data's rows.
    """
    import json

    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    from cookbook.lifecycle.artifacts import save_model
    from cookbook.lifecycle.model_spec import ModelSpec
    from cookbook.lifecycle.training import estimator_summary, train

    frame = load_diabetes(as_frame=True).frame
    data_file = folder / "diabetes.csv"
    frame.to_csv(data_file, index=False)
    features = tuple(name for name in frame.columns if name != "target")
    model_file = folder / "boosted.joblib"
    train(data_file, model_file, spec=ModelSpec(target="target", features=features))
    metadata = json.loads(metadata_path(model_file).read_text())
    for key in ("model_version", "model_file", "model_sha256"):
        metadata.pop(key)
    metadata["folded"] = None
    boosted = HistGradientBoostingRegressor(max_iter=50, random_state=0)
    boosted.fit(frame[list(features)], frame["target"])
    metadata["estimator"] = estimator_summary(boosted)
    save_model(boosted, metadata, model_file, training_rows=frame[list(features)])
    return model_file


def wait_for_rows(store, count: int, seconds: float = 1.0) -> list[dict]:
    """Return the capture store's rows once it holds *count*, or after *seconds*."""
    deadline = time.monotonic() + seconds
    while len(rows := store.rows()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows


def empty_store(store) -> None:
    """Delete what an earlier test left in a capture store (the shared PostgreSQL database)."""
    from cookbook.lifecycle.capture_database import TABLES

    with store.connect() as db:
        for table in TABLES:
            db.execute(f"DELETE FROM {table}")


def foreign_database(path: Path, wal: bool = False) -> Path:
    """Write another program's SQLite database (no capture tables) at *path*."""
    import sqlite3

    with sqlite3.connect(path) as db:
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()
    return path


# ------------------------------------------------------------------ classifiers

# The retrain options of the classifiers the tests train on classification_csvs' files:
# breast_cancer is binary (malignant the positive class), iris multiclass.
CLASSIFIER_ARGS = {
    "binary": ("--target", "diagnosis", "--features", ",".join(CANCER_FEATURES),
               "--positive-class", "malignant"),
    "multiclass": ("--target", "species", "--features", ",".join(IRIS_FEATURES)),
}  # fmt: skip


def retrain_classifier(data_file: Path, model_file: Path, *args: str) -> dict:
    """Run ``utilscli.py retrain --task classification`` in process; return its JSON report."""
    import json

    from click.testing import CliRunner

    from utilscli import cli

    result = CliRunner().invoke(cli, ["retrain", "--task", "classification", "--data",
                                      str(data_file), "--model-name", str(model_file),
                                      "--json", *args])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def without_explanations(model_file: Path, folder: Path) -> Path:
    """Copy the tree model at *model_file* into *folder* as one saved before its trees' arrays
    were stored (no trees record or file, no importance): it serves, and cannot explain."""
    import json
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    metadata = json.loads(metadata_path(model_file).read_text(encoding="utf-8"))
    for key in ("trees", "importance", "importance_rows"):
        metadata.pop(key, None)
    for source in (model_file, *present_side_files(model_file)):
        if not source.name.endswith(".trees.npz"):
            shutil.copy2(source, folder / source.name)
    copy = folder / Path(model_file).name
    metadata_path(copy).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return copy


class RSGIHeaders:
    """RSGI headers as granian hands them over: lower-case names, repeats kept."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = [(name.lower(), value) for name, value in pairs]

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((value for key, value in self.pairs if key == name), default)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def keys(self) -> list[str]:
        return [key for key, _ in self.pairs]

    def items(self) -> list[tuple[str, str]]:
        return list(self.pairs)


class RSGIScope:
    """An RSGI scope with granian's documented attributes."""

    proto = "http"
    http_version = "1.1"
    server = "127.0.0.1:8080"
    client = "127.0.0.1:51000"
    scheme = "http"

    def __init__(self, method: str, path: str, query: str, headers: RSGIHeaders) -> None:
        self.method, self.path, self.query_string, self.headers = method, path, query, headers
