"""Score a CSV of weights in constant memory: ``python cli.py --input weights.csv``.

Imported by ``cli.py`` only when ``--input`` is given, so a single prediction never
pays for numpy and pandas. The math is ``mlib.Predictor.predict_heights``; a weight
is accepted exactly when ``mlib.validate_weight`` would accept the number that
Python's ``float()`` reads from the cell (0 < weight <= 1000 lb, finite).

Output: a CSV with the header ``<column>,height_inches,height_human_readable,extrapolation``
and one row per accepted input row, in input order. The weight is written as read
(``180`` for ``180`` or ``180.0``, shortest round-trip form otherwise), ``height_inches``
and ``height_human_readable`` are what the API answers for that weight, and
``extrapolation`` is ``true`` where the API would add its out-of-training-range warning.

Rejected rows (blank lines, empty cells, text, NaN, infinities, weights out of range)
never stop the run: each is reported with its line number (the header is line 1) and
the reason. Line numbers count physical lines, so they are off by one per quoted
field that spans lines before them.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import click
import numpy as np
import pandas as pd

import mlib

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
    kind: str  # "empty", "not a number", "not finite" or "out of range", for the summary


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


# ------------------------------------------------------------------ the streaming core


def score_csv(
    predictor: mlib.Predictor,
    source: BinaryIO,
    sink: BinaryIO,
    *,
    column: str = mlib.FEATURE,
    on_rejects: Callable[[list[Reject]], None] = lambda rejects: None,
    on_progress: Callable[[int], None] = lambda rows: None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchReport:
    """Stream the CSV in *source* to predictions in *sink*, chunk by chunk; return the counts.

    Raise ``BatchError`` (before writing anything) if *source* has no *column*.
    """
    names = read_header(source)
    require_column(names, column)
    formatter = ChunkFormatter(predictor)
    report = BatchReport()
    sink.write(csv_line([column, "height_inches", "height_human_readable", "extrapolation"]))
    first_line = 2  # the header is line 1
    for cells in read_chunks(source, names, column, chunk_rows):
        weights, rejects = parse_weights(cells, column, first_line)
        accepted = ~np.isnan(weights)
        scored = weights[accepted]
        if len(scored):
            sink.write(formatter.format(scored))
        report.scored += len(scored)
        if rejects:
            report.add_rejects(rejects)
            on_rejects(rejects)
        first_line += len(cells)
        on_progress(len(cells))
    return report


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


def require_column(names: list[str], column: str) -> None:
    """Raise ``BatchError`` unless *column* is one of the header's *names*."""
    if not names or names == [""]:
        raise BatchError(f"Input is empty: expected a header line with a {column!r} column.")
    if column not in names:
        shown = ", ".join(repr(name) for name in names[:20])
        raise BatchError(
            f"Input has no column {column!r} (its columns: {shown}); choose one with --column."
        )


def read_chunks(
    source: BinaryIO, names: list[str], column: str, chunk_rows: int
) -> Iterator[np.ndarray]:
    """Yield the *column* cells of *source* (past its header) in chunks, one per line.

    Blank lines are kept, as empty cells (NaN), so they are reported and line numbers
    hold; a chunk with blank lines but no text still comes back as numbers, the fast path.
    """
    try:
        reader = pd.read_csv(
            source,
            header=None,
            names=names,
            index_col=False,  # extra fields on a line never shift the columns
            usecols=[column],
            chunksize=chunk_rows,
            engine="c",
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],  # only a truly empty cell is missing; "NaN" or "NA" stay text
            encoding="utf-8",
            encoding_errors="replace",
        )
        with reader:
            for frame in reader:
                yield frame[column].to_numpy()
    except pd.errors.EmptyDataError:
        return  # a header and no rows: nothing to score
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BatchError(f"Input is not a readable CSV file: {message}") from None


def parse_weights(
    cells: np.ndarray, column: str, first_line: int
) -> tuple[np.ndarray, list[Reject]]:
    """Return the weights (NaN where rejected) and a Reject for every rejected cell.

    pandas hands back numbers when every cell of the chunk parsed as one (blank cells
    are NaN). Otherwise (text somewhere in the chunk) ``pandas.to_numeric`` reads the
    cells in bulk; both agree with ``float()`` (a test checks). Either way, only the
    cells that fail the bulk check go one by one through ``float()`` and
    ``mlib.validate_weight``, which say why (or rescue what Python reads but pandas
    does not, such as "1_000").
    """
    if cells.dtype.kind in "iuf":
        weights = cells.astype(np.float64)
    elif cells.dtype.kind == "b":  # a chunk of nothing but True/False
        weights = np.full(len(cells), np.nan)
    else:
        weights = pd.to_numeric(cells, errors="coerce").astype(np.float64, copy=False)
    # NaN fails both comparisons and inf the second: validate_weight's rule, in bulk.
    valid = (weights > 0) & (weights <= mlib.MAX_WEIGHT_LBS)
    if valid.all():
        return weights, []
    rejects = []
    for i in np.flatnonzero(~valid).tolist():
        weights[i], reject = parse_cell(cells[i], column, first_line + i)
        if reject is not None:
            rejects.append(reject)
    return weights, rejects


def parse_cell(cell: object, column: str, line: int) -> tuple[float, Reject | None]:
    """Return one cell's weight, or NaN and the Reject that says why it is not one."""
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
    reject = _number_reject(line, text, number, column)
    return (math.nan, reject) if reject else (number, None)


def _number_reject(line: int, text: str, number: float, column: str) -> Reject | None:
    try:
        mlib.validate_weight(number, name=column)
    except mlib.InvalidWeight as exc:
        kind = "out of range" if math.isfinite(number) else "not finite"
        return Reject(line, text, str(exc).rstrip("."), kind)
    return None


# ------------------------------------------------------------------------ formatting


def csv_line(fields: list[str]) -> bytes:
    """Return one CSV line (quoted where needed) as UTF-8 bytes."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().encode("utf-8")


class ChunkFormatter:
    """Turn valid weights into CSV lines fast, with lookup tables instead of per-row formatting.

    Everything after the weight depends only on the height rounded to a tenth, the height
    rounded to an inch and the extrapolation flag: a few thousand distinct tails, each
    formatted once by the same code the API uses. Weights with at most two decimals
    (nearly all real data) come from a table too; others are written with ``repr``.
    """

    def __init__(self, predictor: mlib.Predictor) -> None:
        self.predictor = predictor
        self.low_lbs, self.high_lbs = predictor.weight_range_lbs
        self.tails: dict[int, bytes] = {}
        self._hundredths_texts: np.ndarray | None = None  # built on first use

    def format(self, weights: np.ndarray) -> bytes:
        """Return the CSV lines for *weights* (all valid), in order, as UTF-8 bytes."""
        heights = self.predictor.predict_heights(weights)
        keys = self._tail_keys(weights, heights)
        # A dense table over this chunk's few distinct keys: cheaper than np.unique's sort.
        low = int(keys.min())
        offsets = keys - low
        present = np.flatnonzero(np.bincount(offsets))
        table = np.empty(int(offsets.max()) + 1, dtype=object)
        table[present] = [self._tail(low + int(offset)) for offset in present.tolist()]
        # Interleave weight and tail, then join once: no per-row string concatenation.
        pieces = np.empty(2 * len(weights), dtype=object)
        pieces[0::2] = self._weight_texts(weights)
        pieces[1::2] = table[offsets]
        return b"".join(pieces.tolist())

    def _tail_keys(self, weights: np.ndarray, heights: np.ndarray) -> np.ndarray:
        tenths = np.floor(heights * 10 + 0.5)  # mlib.round_tenth's rounding, bit for bit
        inches = np.floor(heights + 0.5)  # mlib.height_human's rounding, bit for bit
        # The whole inch is within one of the tenth's own inch, so it fits in 2 bits.
        inch_offset = inches - np.floor(tenths / 10 + 0.5) + 1
        outside = (weights < self.low_lbs) | (weights > self.high_lbs)
        return (tenths.astype(np.int64) * 4 + inch_offset.astype(np.int64)) * 2 + outside

    def _tail(self, key: int) -> bytes:
        tail = self.tails.get(key)
        if tail is None:
            rest, outside = divmod(key, 2)
            tenths, inch_offset = divmod(rest, 4)
            inches = math.floor(tenths / 10 + 0.5) + inch_offset - 1
            human = mlib.height_human(inches)  # an exact whole inch rounds to itself
            flag = "true" if outside else "false"
            tail = self.tails[key] = f',{tenths / 10!r},"{human}",{flag}\n'.encode()
        return tail

    def _weight_texts(self, weights: np.ndarray) -> np.ndarray:
        # A weight equal to the double nearest k/100 prints as k/100 with trailing zeros
        # dropped: that is repr's shortest round-trip form (without repr's ".0").
        hundredths = np.rint(weights * 100)
        exact = hundredths / 100 == weights
        table = self.hundredths_texts()
        if exact.all():
            return table[hundredths.astype(np.int64)]
        texts = np.empty(len(weights), dtype=object)
        texts[exact] = table[hundredths[exact].astype(np.int64)]
        texts[~exact] = [repr(w).encode() for w in weights[~exact].tolist()]
        return texts

    def hundredths_texts(self) -> np.ndarray:
        """Return the text of every weight k/100 lb, k = 0 .. 100,000, as bytes."""
        if self._hundredths_texts is None:
            limit = int(mlib.MAX_WEIGHT_LBS) * 100
            texts = [
                f"{pounds}.{cents:02d}".rstrip("0").rstrip(".").encode()
                for pounds in range(int(mlib.MAX_WEIGHT_LBS) + 1)
                for cents in range(100)
            ]
            self._hundredths_texts = np.array(texts[: limit + 1], dtype=object)
        return self._hundredths_texts


# ------------------------------------------------------------------- the command line


def run(
    predictor: mlib.Predictor,
    input_path: str,
    output_path: str,
    *,
    column: str,
    rejects_path: str | None,
    chunk_rows: int,
) -> int:
    """Score *input_path* into *output_path* for ``cli.py --input``; return the exit code.

    Files are written beside their destination and renamed into place at the end, so a
    failed run leaves no partial output. Raise ``click.ClickException`` on a fatal error.
    """
    try:
        with (
            open_input(input_path) as (source, size_bytes),
            atomic_output(output_path) as sink,
            rejects_writer(rejects_path) as on_rejects,
            progress(size_bytes, source) as on_progress,
        ):
            report = score_csv(
                predictor,
                source,
                sink,
                column=column,
                on_rejects=on_rejects,
                on_progress=on_progress,
                chunk_rows=chunk_rows,
            )
    except BatchError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as cat does, and keep Python's
        # own flush at exit from failing on the closed pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or 'I/O'}: {exc.strerror or exc}") from None
    echo_summary(report, rejects_path)
    return EXIT_SOME_REJECTED if report.rejected else 0


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


@contextmanager
def rejects_writer(path: str | None) -> Iterator[Callable[[list[Reject]], None]]:
    """Yield a callback that records rejects in *path* (CSV) or, without one, on stderr."""
    if path is None:
        # On a terminal, clear the progress bar's line first; it redraws on the next chunk.
        clear = "\r\x1b[K" if sys.stderr.isatty() else ""

        def to_stderr(rejects: list[Reject]) -> None:
            sys.stderr.write(clear + "".join(f"line {r.line}: {r.reason}\n" for r in rejects))

        yield to_stderr
        return
    with atomic_output(path) as sink:
        sink.write(csv_line(list(REJECTS_HEADER)))

        def to_file(rejects: list[Reject]) -> None:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows((r.line, r.value, r.reason) for r in rejects)
            sink.write(buffer.getvalue().encode("utf-8"))

        yield to_file


@contextmanager
def progress(size_bytes: int | None, source: BinaryIO) -> Iterator[Callable[[int], None]]:
    """Yield a callback that moves a progress bar on stderr, shown only on a terminal."""
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    rows_done = 0
    if size_bytes:
        with click.progressbar(length=size_bytes, label="Scoring", file=sys.stderr) as bar:

            def by_bytes(rows: int) -> None:
                # pandas reads ahead, so the file position runs slightly ahead of the rows.
                bar.update(min(source.tell(), size_bytes) - bar.pos)

            yield by_bytes
        return

    def by_rows(rows: int) -> None:
        nonlocal rows_done
        rows_done += rows
        click.echo(f"\rScoring: {rows_done:,} rows", file=sys.stderr, nl=False)

    yield by_rows
    click.echo("", file=sys.stderr)


def echo_summary(report: BatchReport, rejects_path: str | None) -> None:
    """Tell stderr how many rows were scored and rejected, and why."""
    rows = "row" if report.scored == 1 else "rows"
    line = f"Scored {report.scored:,} {rows}, rejected {report.rejected:,}"
    if report.rejected:
        kinds = ", ".join(f"{kind}: {count:,}" for kind, count in sorted(report.reasons.items()))
        where = f"listed in {rejects_path}" if rejects_path else "listed above"
        line += f" ({kinds}; {where})"
    click.echo(line + ".", err=True)
