"""Score CSV and Parquet files on a Dask cluster: ``python utilscli.py score``.

Each input file is a partition (a Parquet file larger than ``DEFAULT_PARTITION_ROWS`` is
split along its row groups). Partitions run as tasks on the cluster's worker processes;
each task streams its rows in chunks through the same validation, prediction and answers
as ``cli.py --input`` (``batch.parse_chunk``, ``vectorized.answer_columns``) and writes
its own part files, so a worker's memory grows with the chunk, not with the file. Every
worker process loads and verifies the model once (``verified_predictor``), whatever the
number of partitions it scores.

The parts are written into a staging folder beside the output folder, renamed into place
only when every partition succeeded: a failed run leaves no output. The client and every
worker must see the input files, the model and the output folder at the same paths (one
machine, or a filesystem they share).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cookbook.core.errors import MlibError, ModelError, first_line_of
from cookbook.core.model_cache import cached_predictor, forget_loaded_models
from cookbook.core.prediction import Predictor
from cookbook.core.schema import Schema
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.batch import (
    DEFAULT_CHUNK_ROWS,
    BatchError,
    BatchReport,
    parse_chunk,
    read_chunks,
    read_header,
    require_columns,
)
from cookbook.lifecycle.vectorized import answer_columns

if TYPE_CHECKING:
    from distributed import Client

INPUT_KINDS = {".csv": "csv", ".parquet": "parquet"}  # suffix -> reader
# A Parquet file with more rows is split along its row groups, so that a few large files
# still keep every worker busy; a CSV file is one partition (a quoted field may span lines,
# so no byte offset is known to start a row).
DEFAULT_PARTITION_ROWS = 2_000_000
REJECTS_FOLDER = "rejects"
REASON_COLUMN = "reason"
EXTRAPOLATION_COLUMN = "extrapolation"
IMPORTABLE = (
    "the scheduler and every worker need this project importable and the model file at "
    "the same path (run them from the image, or from a checkout on PYTHONPATH)."
)
# An existing cluster gets this long to answer, and then to have at least one worker.
CONNECT_SECONDS = 10.0
WORKERS_SECONDS = 30.0


@dataclass(frozen=True)
class ModelRef:
    """The model a run scores with: its file, and the sha256 the client verified."""

    path: str
    sha256: str

    @classmethod
    def of(cls, predictor: Predictor) -> ModelRef:
        """Return the reference to *predictor*'s verified model file."""
        return cls(str(predictor.path.resolve()), str(predictor.metadata["model_sha256"]))


@dataclass(frozen=True)
class Partition:
    """One task's rows: a file, or some of a Parquet file's row groups."""

    index: int  # its part files are part-<index>; input order
    path: str
    kind: str  # "csv" or "parquet"
    row_groups: tuple[int, ...] | None = None  # Parquet only; None: every row group


# ------------------------------------------------------------ the per-worker model cache

_loads: Counter[str] = Counter()
_loads_lock = threading.Lock()  # a worker may run several tasks at once in threads


def verified_predictor(model: ModelRef) -> Predictor:
    """Return *model*'s Predictor, loaded and verified once per process and then reused.

    Raise ``ModelError`` if the file no longer has the sha256 the client verified: every
    worker must score with the model the run started with.
    """
    predictor = cached_predictor(model.path, _counted_load)
    if predictor.metadata["model_sha256"] != model.sha256:
        # Loaded for an earlier run, and the file was replaced since: load it again.
        forget_loaded_models(model.path)
        predictor = cached_predictor(model.path, _counted_load)
    found = str(predictor.metadata["model_sha256"])
    if found != model.sha256:
        raise ModelError(
            f"Model file {model.path} changed during the run (sha256 {found[:12]}, "
            f"the run started with {model.sha256[:12]}): run it again."
        )
    return predictor


def _counted_load(path: Path) -> Predictor:
    predictor = load_predictor(path)  # checks the sha256 before anything else
    with _loads_lock:
        _loads[str(path)] += 1
    return predictor


def prepare_worker(model: ModelRef) -> str:
    """Load and verify *model* in this worker process now; return its version."""
    return verified_predictor(model).version


def model_loads() -> dict[str, int]:
    """Return how many times this process has loaded each model file."""
    with _loads_lock:
        return dict(_loads)


# ------------------------------------------------------------------ planning, on the client


def find_inputs(pattern: str) -> list[Path]:
    """Return the ``.csv`` and ``.parquet`` files *pattern* (a glob or a folder) names, sorted.

    A folder contributes its own ``.csv`` and ``.parquet`` files (not its subfolders' and
    not hidden ones); a glob must match only such files. Raise ``BatchError`` otherwise.
    """
    folder = Path(pattern)
    if folder.is_dir():
        files = [
            path
            for path in folder.iterdir()
            if path.is_file() and path.suffix.lower() in INPUT_KINDS and path.name[0] != "."
        ]
    else:
        files = [Path(name) for name in glob.glob(pattern, recursive=True)]
        files = [path for path in files if path.is_file()]
        others = [path for path in files if path.suffix.lower() not in INPUT_KINDS]
        if others:
            raise BatchError(f"{others[0]} is neither a .csv nor a .parquet file.")
    if not files:
        raise BatchError(f"No .csv or .parquet files match {pattern}.")
    return sorted(files)


def plan_partitions(
    files: list[Path], schema: Schema, partition_rows: int = DEFAULT_PARTITION_ROWS
) -> list[Partition]:
    """Return the partitions that score *files*, after checking each one's columns.

    Raise ``BatchError`` for a file that cannot be read or lacks a feature column, before
    anything is scored.
    """
    partitions: list[Partition] = []
    for path in files:
        kind = INPUT_KINDS[path.suffix.lower()]
        input_names(path, kind, schema)
        runs = row_group_runs(path, partition_rows) if kind == "parquet" else [None]
        for groups in runs:
            partitions.append(Partition(len(partitions), str(path), kind, groups))
    return partitions


def row_group_runs(path: Path, partition_rows: int) -> list[tuple[int, ...] | None]:
    """Return the Parquet file's row groups in runs of at least *partition_rows* rows."""
    with parquet_file(path) as parquet:
        metadata = parquet.metadata
    if metadata.num_rows <= partition_rows:
        return [None]
    runs: list[tuple[int, ...] | None] = []
    run: list[int] = []
    rows = 0
    for group in range(metadata.num_row_groups):
        run.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= partition_rows:
            runs.append(tuple(run))
            run, rows = [], 0
    if run:
        runs.append(tuple(run))
    return runs


def input_names(path: Path | str, kind: str, schema: Schema) -> list[str]:
    """Return the file's column names; raise ``BatchError`` unless the output can hold them.

    Every feature must be there, and no column may have the name of one the output adds.
    """
    if kind == "csv":
        with open(path, "rb") as source:
            names = read_header(source)
    else:
        with parquet_file(path) as parquet:
            names = list(parquet.schema_arrow.names)
    added = [*schema.table_fields(), EXTRAPOLATION_COLUMN, REASON_COLUMN]
    try:
        require_columns(names, list(schema.feature_names), single=False)
    except BatchError as exc:
        raise BatchError(f"{path}: {exc}") from None
    clashes = [name for name in names if name in added]
    if clashes:
        raise BatchError(
            f"{path}: Input already has a column {clashes[0]!r}, which the output adds: "
            "rename or drop it."
        )
    return names


def parquet_file(path: Path | str) -> pq.ParquetFile:
    """Open a Parquet file (its footer), or raise ``BatchError`` in one line."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise BatchError(f"{path} is not a readable Parquet file: {first_line_of(exc)}") from None


# ------------------------------------------------------------------ one partition, on a worker


def score_partition(
    partition: Partition,
    model: ModelRef,
    staging: str,
    output_format: str = "parquet",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchReport:
    """Score *partition* into its part files in *staging*; return its counts.

    The scored rows go to ``part-<index>`` (the input's columns, number features as the
    numbers scored, then the answer fields and ``extrapolation``); rejected rows, if any,
    to ``rejects/part-<index>`` (the input's columns as read, then ``reason``).
    """
    predictor = verified_predictor(model)
    schema = predictor.schema
    inputs = {name: name for name in schema.feature_names}
    if not Path(staging, REJECTS_FOLDER).is_dir():
        raise BatchError(
            f"A worker cannot see the staging folder {staging}: the output folder must be on "
            "a filesystem that the client and every worker share."
        )
    name = f"part-{partition.index:05d}.{output_format}"
    csv = output_format == "csv"
    report = BatchReport()
    try:
        with (
            PartWriter(Path(staging, name), output_format) as scored,
            PartWriter(Path(staging, REJECTS_FOLDER, name), output_format) as rejected,
        ):
            for chunk in read_partition(partition, schema, chunk_rows):
                values, rejects = parse_chunk(schema, inputs, chunk, first_line=0)
                accepted = np.ones(len(chunk), dtype=bool)
                accepted[[reject.line for reject in rejects]] = False  # line: the chunk's row
                kept = {feature: column[accepted] for feature, column in values.items()}
                scored.write(chunk[accepted].assign(**output_columns(predictor, kept, csv)))
                report.scored += int(accepted.sum())
                if rejects:
                    reasons = {REASON_COLUMN: [reject.reason for reject in rejects]}
                    rejected.write(chunk[~accepted].assign(**reasons))
                    report.add_rejects(rejects)
    except BatchError as exc:
        raise BatchError(f"{partition.path}: {exc}") from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise BatchError(f"{partition.path}: {first_line_of(exc)}") from None
    return report


def output_columns(
    predictor: Predictor, values: dict[str, np.ndarray], csv: bool
) -> dict[str, object]:
    """Return the columns a scored chunk gets from its valid *values*: numbers, answers, flag.

    A number feature's column becomes the number scored; the answer fields are the API's;
    ``extrapolation`` is a boolean, or ``true``/``false`` in CSV as ``cli.py --input``
    writes it.
    """
    answers, outside = answer_columns(predictor, values)
    columns: dict[str, object] = {
        feature.name: values[feature.name] for feature in predictor.schema.numeric
    }
    for name, column in answers.items():
        # Text stays an object array (pyarrow writes it fastest) except when empty, where
        # it would be written with no type at all.
        empty_text = column.dtype == object and not len(column)
        columns[name] = pd.array(column, dtype="str") if empty_text else column
    columns[EXTRAPOLATION_COLUMN] = np.where(outside, "true", "false") if csv else outside
    return columns


def read_partition(partition: Partition, schema: Schema, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the partition's rows in chunks of at most *chunk_rows*, at least one (maybe empty).

    A CSV's cells are read as text, as written (so ``007`` stays ``007``, and a column
    reads alike in every chunk); a Parquet file's columns keep their types.
    """
    names = input_names(partition.path, partition.kind, schema)  # it may have changed since
    empty = True
    if partition.kind == "csv":
        with open(partition.path, "rb") as source:
            read_header(source)
            for chunk in read_chunks(source, names, names, chunk_rows, dtype=str):
                empty = False
                yield chunk
        if empty:
            yield pd.DataFrame({name: pd.Series(dtype=str) for name in names})
        return
    groups = None if partition.row_groups is None else list(partition.row_groups)
    with parquet_file(partition.path) as parquet:
        # One thread: a worker is one core, so the cluster's size is the machine's share.
        for batch in parquet.iter_batches(
            batch_size=chunk_rows, row_groups=groups, use_threads=False
        ):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield parquet.schema_arrow.empty_table().to_pandas()


class PartWriter:
    """Write frames to one part file, Parquet or CSV; the file appears on the first write."""

    def __init__(self, path: Path, output_format: str) -> None:
        self.path = path
        self.output_format = output_format
        self._parquet: pq.ParquetWriter | None = None
        self._csv = None

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, frame: pd.DataFrame) -> None:
        """Append *frame*'s rows (a row group, for Parquet)."""
        if self.output_format == "csv":
            header = self._csv is None
            if header:
                self._csv = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            frame.to_csv(self._csv, header=header, index=False, lineterminator="\n")
            return
        schema = None if self._parquet is None else self._parquet.schema
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False, nthreads=1)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        """Close the file, if one was opened."""
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()


# ------------------------------------------------------------------------- the run


def score(
    predictor: Predictor,
    pattern: str,
    output_dir: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    output_format: str = "parquet",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchReport:
    """Score every file *pattern* names into *output_dir* on a Dask cluster; return the counts.

    *scheduler* is an existing cluster's address; without one a local cluster of
    *workers* processes (default: one per core) runs for the call. Everything that can
    be checked before the cluster starts is: the files, their columns, the output folder.
    Raise ``BatchError`` (or ``ModelError``) in one line; then no output is left.
    """
    partitions = plan_partitions(find_inputs(pattern), predictor.schema)
    check_output_dir(output_dir)
    with dask_client(scheduler, workers) as client:
        return score_on(
            client,
            partitions,
            predictor,
            output_dir,
            output_format=output_format,
            chunk_rows=chunk_rows,
        )


def score_on(
    client: Client,
    partitions: list[Partition],
    predictor: Predictor,
    output_dir: Path,
    *,
    output_format: str = "parquet",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchReport:
    """Score *partitions* on *client*'s cluster into *output_dir*, atomically; return the counts.

    Every worker loads and verifies the model first: a worker that cannot (the project
    not importable there, the model file not at the same path) fails the run before any
    output is written, instead of dying on its first task.
    """
    from distributed import KilledWorker

    model = ModelRef.of(predictor)
    try:
        client.run(prepare_worker, model)
    except MlibError:
        raise
    except Exception as exc:  # client.run hands a worker's failure back as a bare Exception
        raise BatchError(
            f"A Dask worker cannot score: {first_line_of(exc)}; {IMPORTABLE}"
        ) from None
    with staged_folder(output_dir) as staging:
        futures = client.map(
            score_partition,
            partitions,
            model=model,
            staging=str(staging),
            output_format=output_format,
            chunk_rows=chunk_rows,
            pure=False,
        )
        try:
            reports = client.gather(futures)
        except KilledWorker as exc:
            raise BatchError(
                f"A Dask worker died while scoring ({first_line_of(exc)}); out of memory? "
                "Try a smaller --chunk-rows."
            ) from None
        except RuntimeError as exc:
            if not isinstance(exc.__cause__, ImportError):
                raise
            # The scheduler unpickles the tasks too, so it needs the project as well.
            raise BatchError(
                f"The Dask scheduler cannot read the tasks ({exc.__cause__}); {IMPORTABLE}"
            ) from None
        finally:
            client.cancel(futures)  # the rest, after a failure; a no-op after success
    total = BatchReport()
    for report in reports:
        total.add(report)
    return total


def check_output_dir(output_dir: Path) -> None:
    """Raise ``BatchError`` unless *output_dir* can be created: new or empty, in a folder."""
    if output_dir.is_dir() and any(output_dir.iterdir()):
        raise BatchError(
            f"{output_dir} already exists and is not empty: give a new folder, or remove it."
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise BatchError(f"{output_dir} already exists and is not a folder.")
    parent = output_dir.absolute().parent
    if not parent.is_dir():
        raise BatchError(f"Cannot write {output_dir}: its folder {parent} does not exist.")


@contextmanager
def staged_folder(output_dir: Path) -> Iterator[Path]:
    """Yield a new folder beside *output_dir* that becomes it only if the block succeeds.

    On any failure the staging folder is removed and *output_dir* is left as it was.
    """
    check_output_dir(output_dir)
    parent = output_dir.absolute().parent
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".staging", dir=parent)
        )
    except OSError as exc:
        raise BatchError(f"Cannot write {output_dir}: {exc.strerror} ({parent}).") from None
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes 0700; scored files are for reading
        (staging / REJECTS_FOLDER).mkdir()  # here, never by a task: see remove_tree
        yield staging
        try:
            # An empty folder is replaced; anything else makes the rename fail, never merge.
            os.rename(staging, output_dir)
        except OSError as exc:
            raise BatchError(f"Cannot create {output_dir}: {exc.strerror}.") from None
    except BaseException:
        remove_tree(staging)
        raise


def remove_tree(folder: Path, attempts: int = 10) -> None:
    """Remove *folder* and everything in it, retrying while a task still writes into it.

    Tasks never create folders, so once it is gone nothing can bring it back.
    """
    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.1)


def cores() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """Yield a Dask client: of the cluster at *scheduler*, or of a local cluster for the block.

    The local cluster has *workers* processes (default: one per core) of one thread each,
    on 127.0.0.1, and keeps its logs quiet (failures come back as
    one-line errors instead). Raise ``BatchError`` when the scheduler cannot be reached or
    has no workers.
    """
    from distributed import Client, LocalCluster

    if scheduler is None:
        with (
            LocalCluster(
                n_workers=workers or cores(),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # The scheduler always serves HTTP (None means port 8787, which a second
                # run would find taken); a free port on the loopback, and no dashboard
                # without bokeh.
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.CRITICAL,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(
            f"Cannot reach the Dask scheduler at {scheduler}: {first_line_of(exc)}"
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except TimeoutError:
            raise BatchError(
                f"The Dask cluster at {scheduler} has no workers (waited {WORKERS_SECONDS:g} s)."
            ) from None
        yield client
