"""Run ``cli.py --input``: score a CSV into a file atomically, list rejects, show progress."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import click

from cookbook.core.prediction import Predictor
from cookbook.lifecycle.batch import (
    EXIT_BROKEN_PIPE,
    EXIT_SOME_REJECTED,
    REJECTS_HEADER,
    BatchError,
    BatchReport,
    Reject,
    atomic_output,
    open_input,
    score_csv,
)
from cookbook.lifecycle.csv_lines import csv_line


def run(
    predictor: Predictor,
    input_path: str,
    output_path: str,
    *,
    columns: dict[str, str] | None,
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
                columns=columns,
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
    line = report.counts()
    if report.rejected:
        where = f"listed in {rejects_path}" if rejects_path else "listed above"
        line += f" ({report.kinds()}; {where})"
    click.echo(line + ".", err=True)
