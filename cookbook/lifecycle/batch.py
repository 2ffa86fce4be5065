"""Score a CSV of feature values in constant memory: ``python cli.py --input rows.csv``.

Imported only when ``--input`` is given, so a single prediction never pays for numpy and
pandas. The columns are the model's features (other columns are ignored); a value is
accepted exactly when the schema's validation would accept the number that Python's
``float()`` reads from the cell, or the category as written.

Output: a CSV with the header ``<features...>,<answer fields...>,extrapolation`` and one
row per accepted input row, in input order; the answer fields are what the API answers
for that row, and ``extrapolation`` is ``true`` where the API would add its
out-of-training-range warning. Numbers are written as read (``180`` for ``180`` or
``180.0``). A classifier's answer fields are ``label`` and one ``p_<class>`` column per class
(``Schema.table_fields``): the label at the model's own threshold, the probabilities unrounded.

Rejected rows (blank lines, empty cells, text, NaN, infinities, values out of bounds,
unknown categories)
never stop the run: each is reported with its line number (the header is line 1) and
the reason. Line numbers count physical lines, so they are off by one per quoted
field that spans lines before them.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cookbook.core.errors import InvalidInput, first_line_of
from cookbook.core.prediction import Predictor
from cookbook.core.schema import CategoryFeature, NumberFeature, Schema
from cookbook.core.validation import validate_category, validate_number
from cookbook.lifecycle.batch_format import formatter_for
from cookbook.lifecycle.csv_lines import csv_line
from cookbook.lifecycle.vectorized import accepted_numbers

STDIO = "-"
DEFAULT_CHUNK_ROWS = 200_000
# Exit codes: 0 every row scored, 1 the run failed (nothing written), 2 usage error (click).
EXIT_SOME_REJECTED = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a reader that stopped early
# Rejected rows are listed on stderr one per line when no --rejects file is given.
REJECTS_HEADER = ("line", "value", "reason")


class BatchError(Exception):
    """An input that cannot be scored at all (no such column, empty, not a CSV); one line."""


@dataclass(frozen=True)
class Reject:
    """One input row that was not scored: its line number, raw cell and the reason."""

    line: int
    value: str
    reason: str
    kind: str  # "empty", "not a number", "not finite", "out of range" or "unknown category"


@dataclass
class BatchReport:
    """What a batch run did: rows scored, rows rejected, and how many per reason."""

    scored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add_rejects(self, rejects: list[Reject]) -> None:
        """Count *rejects*, grouping their reasons by kind."""
        self.rejected += len(rejects)
        for reject in rejects:
            self.reasons[reject.kind] = self.reasons.get(reject.kind, 0) + 1

    def add(self, other: BatchReport) -> None:
        """Add *other*'s counts to these (a partition's to the run's)."""
        self.scored += other.scored
        self.rejected += other.rejected
        for kind, count in other.reasons.items():
            self.reasons[kind] = self.reasons.get(kind, 0) + count

    def counts(self) -> str:
        """Return "Scored 9,998 rows, rejected 2": the summary line's start."""
        rows = "row" if self.scored == 1 else "rows"
        return f"Scored {self.scored:,} {rows}, rejected {self.rejected:,}"

    def kinds(self) -> str:
        """Return the rejects per reason, "empty: 1, not a number: 1", sorted by reason."""
        return ", ".join(f"{kind}: {count:,}" for kind, count in sorted(self.reasons.items()))


# ------------------------------------------------------------------ the streaming core


def score_csv(
    predictor: Predictor,
    source: BinaryIO,
    sink: BinaryIO,
    *,
    columns: Mapping[str, str] | None = None,
    on_rejects: Callable[[list[Reject]], None] = lambda rejects: None,
    on_progress: Callable[[int], None] = lambda rows: None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchReport:
    """Stream the CSV in *source* to predictions in *sink*, chunk by chunk; return the counts.

    *columns* maps a feature to the input column that holds it (default: its own name).
    Raise ``BatchError`` (before writing anything) if *source* lacks one of them.
    """
    schema = predictor.schema
    inputs = {f.name: (columns or {}).get(f.name, f.name) for f in schema.features}
    names = read_header(source)
    require_columns(names, list(inputs.values()), single=len(inputs) == 1)
    report = BatchReport()
    sink.write(csv_line([*inputs.values(), *schema.table_fields(), "extrapolation"]))
    first_line = 2  # the header is line 1
    # Chunks are predicted and formatted on threads (onnxruntime and numpy release the
    # GIL), each run by one runtime thread so every row sums its trees in the order the
    # API does, while the next chunk is read and the oldest written: reading, predicting
    # and writing overlap on every core instead of taking turns.
    workers = os.cpu_count() or 1
    formatter = formatter_for(predictor)
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict") as predicting:
        for chunk in read_chunks(source, names, list(dict.fromkeys(inputs.values())), chunk_rows):
            values, rejects = parse_chunk(schema, inputs, chunk, first_line)
            rows = len(chunk)
            accepted = np.ones(rows, dtype=bool)
            for reject in rejects:
                accepted[reject.line - first_line] = False
            valid = {name: column[accepted] for name, column in values.items()}
            if accepted.any():
                pending.append(predicting.submit(formatter.format, valid))
            if len(pending) > workers:
                sink.write(pending.popleft().result())
            report.scored += int(accepted.sum())
            if rejects:
                report.add_rejects(rejects)
                on_rejects(rejects)
            first_line += rows
            on_progress(rows)
        while pending:
            sink.write(pending.popleft().result())
    return report


def parse_chunk(
    schema: Schema, inputs: Mapping[str, str], chunk: pd.DataFrame, first_line: int
) -> tuple[dict[str, np.ndarray], list[Reject]]:
    """Return each feature's parsed values and one Reject per rejected row (its first problem)."""
    values: dict[str, np.ndarray] = {}
    by_line: dict[int, Reject] = {}
    for feature in schema.features:
        column = inputs[feature.name]
        cells = chunk[column].to_numpy()
        if isinstance(feature, NumberFeature):
            values[feature.name], rejects = parse_numbers(cells, feature, column, first_line)
        else:
            values[feature.name], rejects = parse_categories(cells, feature, column, first_line)
        for reject in rejects:
            by_line.setdefault(reject.line, reject)
    return values, [by_line[line] for line in sorted(by_line)]


def read_header(source: BinaryIO) -> list[str]:
    """Read the first line of *source* and return its column names, made unique.

    A repeated name gets a suffix (``Weight``, ``Weight.1``) as pandas would, so the
    first column of that name is the one scored.
    """
    first_line = source.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    names: list[str] = []
    for name in next(csv.reader([first_line]), []):
        unique, copy = name, 0
        while unique in names:
            copy += 1
            unique = f"{name}.{copy}"
        names.append(unique)
    return names


def require_columns(names: list[str], columns: list[str], *, single: bool = True) -> None:
    """Raise ``BatchError`` unless every one of *columns* is among the header's *names*."""
    wanted = ", ".join(repr(column) for column in columns)
    if not names or names == [""]:
        raise BatchError(f"Input is empty: expected a header line with a {wanted} column.")
    missing = [column for column in columns if column not in names]
    if missing:
        shown = ", ".join(repr(name) for name in names[:20])
        hint = "choose one with --column" if single else "the model's features are " + wanted
        raise BatchError(
            f"Input has no column {', '.join(map(repr, missing))} (its columns: {shown}); {hint}."
        )


def read_chunks(
    source: BinaryIO,
    names: list[str],
    columns: list[str],
    chunk_rows: int,
    *,
    dtype: type | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the *columns* of *source* (past its header) in chunks, one row per line.

    Blank lines are kept, as empty cells (NaN), so they are reported and line numbers
    hold; a chunk with blank lines but no text still comes back as numbers, the fast path.
    ``dtype=str`` reads every cell as text instead, as written.
    """
    try:
        reader = pd.read_csv(
            source,
            header=None,
            names=names,
            index_col=False,  # extra fields on a line never shift the columns
            usecols=columns,
            chunksize=chunk_rows,
            engine="c",
            dtype=dtype,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],  # only a truly empty cell is missing; "NaN" or "NA" stay text
            encoding="utf-8",
            encoding_errors="replace",
        )
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        return  # a header and no rows: nothing to score
    except (pd.errors.ParserError, ValueError) as exc:
        raise BatchError(f"Input is not a readable CSV file: {first_line_of(exc)}") from None


def parse_numbers(
    cells: np.ndarray, feature: NumberFeature, column: str, first_line: int
) -> tuple[np.ndarray, list[Reject]]:
    """Return the numbers (NaN where rejected) and a Reject for every rejected cell.

    pandas hands back numbers when every cell of the chunk parsed as one (blank cells
    are NaN). Otherwise (text somewhere in the chunk) ``pandas.to_numeric`` reads the
    cells in bulk; both agree with ``float()`` (a test checks). Either way, only the
    cells that fail the bulk check go one by one through ``float()`` and
    ``validate_number``, which say why (or rescue what Python reads but pandas
    does not, such as "1_000").
    """
    if cells.dtype.kind in "iuf":
        weights = cells.astype(np.float64)
    elif cells.dtype.kind == "b":  # a chunk of nothing but True/False
        weights = np.full(len(cells), np.nan)
    else:
        weights = pd.to_numeric(cells, errors="coerce").astype(np.float64, copy=False)
    valid = accepted_numbers(feature, weights)  # validate_number's rule, in bulk
    if valid.all():
        return weights, []
    rejects = []
    for i in np.flatnonzero(~valid).tolist():
        weights[i], reject = parse_cell(cells[i], feature, column, first_line + i)
        if reject is not None:
            rejects.append(reject)
    return weights, rejects


def parse_cell(
    cell: object, feature: NumberFeature, column: str, line: int
) -> tuple[float, Reject | None]:
    """Return one cell's number, or NaN and the Reject that says why it is not one."""
    if isinstance(cell, float) and math.isnan(cell):  # pandas' mark for an empty cell
        cell = ""
    text = str(cell)[:100]
    if isinstance(cell, bool | np.bool_):
        return math.nan, Reject(line, text, f"{column} is not a number: {text}", "not a number")
    if isinstance(cell, str):
        if not cell.strip():
            reason = f"{column} is empty (blank line or empty cell)"
            return math.nan, Reject(line, text, reason, "empty")
        try:
            number = float(cell)
        except ValueError:
            reason = f"{column} is not a number: {cell.strip()[:40]!r}"
            return math.nan, Reject(line, text, reason, "not a number")
    else:
        try:
            number = float(cell)
        except OverflowError:  # an integer too large for a float
            number = math.inf
    try:
        return validate_number(feature, number, name=column), None
    except InvalidInput as exc:
        kind = "out of range" if math.isfinite(number) else "not finite"
        return math.nan, Reject(line, text, str(exc).rstrip("."), kind)


def parse_categories(
    cells: np.ndarray, feature: CategoryFeature, column: str, first_line: int
) -> tuple[np.ndarray, list[Reject]]:
    """Return the categories as text (None where rejected) and a Reject for every rejected cell."""
    if cells.dtype == object:  # text as read, and NaN for an empty cell
        texts = cells.copy()
    else:  # a chunk whose cells all read as numbers: compare their text
        texts = np.array(
            [None if isinstance(c, float) else str(c) for c in cells.tolist()], dtype=object
        )
    # Hash each distinct cell once: a chunk holds few, and testing each row costs 10×.
    codes, distinct = pd.factorize(texts, use_na_sentinel=False)
    known = set(feature.categories)
    valid = np.array([isinstance(text, str) and text in known for text in distinct])[codes]
    rejects = []
    for i in np.flatnonzero(~valid).tolist():
        text = texts[i][:100] if isinstance(texts[i], str) else ""
        if not text.strip():
            reason, kind = f"{column} is empty (blank line or empty cell)", "empty"
        else:
            try:
                validate_category(feature, texts[i], name=column)
            except InvalidInput as exc:
                reason, kind = str(exc).rstrip("."), "unknown category"
        rejects.append(Reject(first_line + i, text, reason, kind))
        texts[i] = None
    return texts, rejects


@contextmanager
def open_input(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield a buffered binary stream for *path* (``-`` is stdin) and its size if known."""
    if path == STDIO:
        yield sys.stdin.buffer, None
        return
    with open(path, "rb") as stream:
        yield stream, os.fstat(stream.fileno()).st_size


@contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """Yield a binary stream that becomes *path* only if the block succeeds.

    ``-`` is stdout. A path that exists but is not a regular file (``/dev/null``, a FIFO)
    is written in place: renaming over it would replace the device itself. A symlink's
    target is replaced, not the link.
    """
    if path == STDIO:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "wb") as stream:
            yield stream
        return
    destination = Path(os.path.realpath(path))
    try:
        handle, staged = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
        )
    except OSError as exc:
        raise BatchError(f"Cannot write {path}: {exc.strerror} ({destination.parent}).") from None
    try:
        with os.fdopen(handle, "wb", buffering=1 << 20) as stream:
            yield stream
        os.chmod(staged, 0o644)  # mkstemp makes 0600; a predictions file is for reading
        os.replace(staged, destination)
    finally:
        Path(staged).unlink(missing_ok=True)
