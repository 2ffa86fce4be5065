"""Shared fixtures: a model trained into a temporary folder, the app, and real servers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import (
    CLASSIFIER_ARGS,
    DATA,
    classification_csvs,
    empty_store,
    retrain_classifier,
    start_gunicorn,
    start_postgres,
    start_server,
    stop,
    stop_postgres,
    without_explanations,
)

import mlib
from app import create_app

# Tree models explain as many rows a request as fit this many seconds on the worker: the
# tests' batches (60 rows of a deep forest: about 0.4 s here) must fit on a slower machine
# too. The budget's own test sets it small.
os.environ.setdefault("EXPLAIN_BUDGET_SECONDS", "10")


@pytest.fixture(scope="session")
def unexplained_trees(tmp_path_factory) -> Path:
    """The height-gbm example as a tree model saved before its trees' arrays were stored."""
    example = Path(__file__).resolve().parent.parent / "examples" / "height-gbm" / "model.joblib"
    return without_explanations(example, tmp_path_factory.mktemp("unexplained"))


@pytest.fixture(scope="session")
def data_file() -> Path:
    if not DATA.exists():
        pytest.fail("htwtmlb.csv is missing: run `make data` (make test does it for you).")
    return DATA


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, data_file) -> Path:
    """Train once per run into a temporary folder; tests never touch the committed model."""
    model_file = tmp_path_factory.mktemp("model") / "model.joblib"
    mlib.train(data_file, model_file)
    return model_file


@pytest.fixture(scope="session")
def classification_data(tmp_path_factory) -> dict[str, Path]:
    """breast_cancer (binary) and iris (multiclass) as CSVs: ``{"cancer": ..., "iris": ...}``."""
    return classification_csvs(tmp_path_factory.mktemp("classification-data"))


@pytest.fixture(scope="session")
def classifier(classification_data, tmp_path_factory):
    """``classifier(task, family)``: the model file of a "binary" (breast_cancer) or
    "multiclass" (iris) classifier of that family, trained once per run. Read it only."""
    trained: dict[tuple[str, str], Path] = {}

    def train(task: str, family: str) -> Path:
        if (task, family) not in trained:
            data = classification_data["cancer" if task == "binary" else "iris"]
            model_file = tmp_path_factory.mktemp(f"{task}-{family}") / "model.joblib"
            retrain_classifier(data, model_file, *CLASSIFIER_ARGS[task], "--estimator", family)
            trained[(task, family)] = model_file
        return trained[(task, family)]

    return train


@pytest.fixture(scope="module")
def dask_client():
    """A real local Dask cluster of two worker processes on 127.0.0.1, for the module."""
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # None would still serve HTTP, on 8787
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def model_copy(tmp_path, trained_model) -> Path:
    """A private copy of the trained pair that a test may tamper with."""
    for source in (trained_model, mlib.metadata_path(trained_model)):
        shutil.copy2(source, tmp_path / source.name)
    return tmp_path / trained_model.name


@pytest.fixture
def app(trained_model):
    return create_app({"MODEL_PATH": str(trained_model), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(trained_model, tmp_path_factory):
    """The real production server (two workers) serving the trained model; yields its URL."""
    process, base_url = start_server(trained_model, tmp_path_factory.mktemp("server"))
    yield base_url
    stop(process)


@pytest.fixture(params=["production", "gunicorn"])
def serving(request, tmp_path):
    """Start real servers for model files (``serving(model_file)`` -> base URL), each test
    once on the production server and once on gunicorn; stop them afterwards."""
    processes = []
    starter = start_server if request.param == "production" else start_gunicorn

    def start(model_file: Path, **extra: str) -> str:
        process, base_url = starter(model_file, tmp_path, **extra)
        processes.append(process)
        return base_url

    yield start
    for process in processes:
        stop(process)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session (REQUIRE_POSTGRES=1 makes a missing one fail)."""
    # Not under pytest's temporary folder: that is private to root, and the server runs as
    # the postgres user when the tests run as root.
    folder = Path(tempfile.mkdtemp(prefix="cookbook-postgres-"))
    try:
        url = start_postgres(folder)
    except FileNotFoundError as exc:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield url
    stop_postgres(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """An empty capture store, each test once on SQLite and once on the real PostgreSQL."""
    from cookbook.lifecycle.capture_store import open_store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/capture.sqlite3"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    store.create()
    empty_store(store)
    return store
