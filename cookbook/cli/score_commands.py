"""``utilscli.py score``: score CSV or Parquet files on a Dask cluster into part files."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from cookbook.cli.errors import one_line_errors
from cookbook.cli.options import chunk_rows_option
from cookbook.core.settings import model_path
from cookbook.lifecycle.artifacts import load_predictor


@click.command("score")
@click.option(
    "--input",
    "pattern",
    required=True,
    metavar="PATTERN",
    help="CSV or Parquet files to score: a folder, or a glob (quote it); columns: the features.",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) folder for the part files; rejected rows go to DIR/rejects.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="Format of the scored and the rejected rows' files.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="An existing Dask cluster's scheduler, e.g. tcp://10.0.0.5:8786 "
    "[default: start a local cluster].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes of the local cluster [default: the number of cores].",
)
@chunk_rows_option("Rows a worker reads and scores at a time (its memory grows with it).")
@click.pass_context
def score(ctx: click.Context, pattern: str, output_dir: Path, output_format: str,
          scheduler: str | None, workers: int | None, chunk_rows: int) -> None:  # fmt: skip
    """Score CSV or Parquet files on a Dask cluster into part files; exit 3 if rows were rejected.

    The model is MODEL_PATH's (or model.joblib beside this script); an existing cluster's
    workers must be able to import this project and read the files and the model.
    """
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers is for the local cluster, not with --scheduler.", ctx)
    # dask, pyarrow and pandas: only this command pays for them.
    from cookbook.lifecycle import distributed_scoring
    from cookbook.lifecycle.batch import EXIT_SOME_REJECTED, BatchError

    # A stopped run (kill, a scheduler's timeout) still removes its staging folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with one_line_errors():
            report = distributed_scoring.score(
                load_predictor(model_path()), pattern, output_dir, scheduler=scheduler,
                workers=workers, output_format=output_format, chunk_rows=chunk_rows,
            )  # fmt: skip
    except BatchError as exc:
        raise click.ClickException(str(exc)) from None
    kinds = f" ({report.kinds()})" if report.rejected else ""
    click.echo(f"{report.counts()}{kinds}; output in {output_dir}.", err=True)
    ctx.exit(EXIT_SOME_REJECTED if report.rejected else 0)
