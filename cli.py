#!/usr/bin/env python
"""Predict an MLB player's height from weight on this machine: ``python cli.py --weight 180``.

``python cli.py --input weights.csv --output predictions.csv`` scores a whole CSV (see batch.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

import mlib


class WeightType(click.ParamType):
    """A weight in pounds, validated exactly as the HTTP API validates it."""

    name = "pounds"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of pounds.", param, ctx)
        try:
            return mlib.validate_weight(number, name="weight")
        except mlib.InvalidWeight as exc:
            self.fail(str(exc), param, ctx)


WEIGHT = WeightType()
TALL_INCHES = 72


def echo_prediction(result: dict, as_json: bool = False) -> None:
    """Print one prediction: green when taller than 72 inches, red otherwise, as the cookbook."""
    if as_json:
        click.echo(json.dumps(result))
        return
    # Judge the height the reader sees (whole inches), so "6 foot, 0 inches" is never green.
    shown_inches = math.floor(result["height_inches"] + 0.5)
    colour = "green" if shown_inches > TALL_INCHES else "red"
    click.secho(result["height_human_readable"], bg=colour, fg="white")
    if "warning" in result:
        click.secho(f"Warning: {result['warning']}", fg="yellow", err=True)


@click.command()
@click.option("--weight", type=WEIGHT, help="Weight of an MLB player in pounds (asked if missing).")
@click.option("--json", "as_json", is_flag=True, help="Print the prediction as JSON.")
@click.option(
    "--model",
    "model_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to use (default: MODEL_PATH, or model.joblib beside this script).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="CSV of weights to score in bulk ('-' for stdin) instead of one --weight.",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    show_default=True,
    help="Where --input's predictions go, as CSV ('-' for stdout).",
)
@click.option(
    "--column",
    default=mlib.FEATURE,
    show_default=True,
    help="Name of --input's column that holds the weights in pounds.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write --input's rejected rows (line, value, reason) to this CSV instead of stderr.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=200_000,  # batch.DEFAULT_CHUNK_ROWS, not imported: --weight must not load pandas
    show_default=True,
    help="Rows of --input read and scored at a time (memory is proportional to it).",
)
@click.version_option(mlib.__version__)
@click.pass_context
def predictcli(
    ctx: click.Context,
    weight: float | None,
    as_json: bool,
    model_file: Path | None,
    input_path: str | None,
    output_path: str,
    column: str,
    rejects_path: str | None,
    chunk_rows: int,
) -> None:
    """Predict the height of an MLB player from weight, or of every row of a CSV (--input).

    With --input, exits 0 when every row was scored and 3 when some rows were rejected.
    """
    check_batch_options(ctx, weight, as_json, input_path)
    try:
        predictor = mlib.load_predictor(model_file)
    except mlib.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    if input_path is not None:
        import batch  # numpy and pandas: only a batch run pays for them

        ctx.exit(
            batch.run(
                predictor,
                input_path,
                output_path,
                column=column,
                rejects_path=rejects_path,
                chunk_rows=chunk_rows,
            )
        )
    if weight is None:
        weight = click.prompt("MLB Player Weight", type=WEIGHT)
    echo_prediction(predictor.prediction(weight), as_json)


def check_batch_options(
    ctx: click.Context, weight: float | None, as_json: bool, input_path: str | None
) -> None:
    """Refuse option mixes that mean nothing: --weight or --json with --input, and vice versa."""
    if input_path is not None:
        if weight is not None:
            raise click.UsageError("Give either --weight or --input, not both.", ctx)
        if as_json:
            raise click.UsageError("--json is for a single --weight; --input writes CSV.", ctx)
        return
    source = click.core.ParameterSource.DEFAULT
    for name in ("output_path", "column", "rejects_path", "chunk_rows"):
        if ctx.get_parameter_source(name) not in (source, None):
            option = "--" + name.removesuffix("_path").replace("_", "-")
            raise click.UsageError(f"{option} only applies with --input.", ctx)


if __name__ == "__main__":
    predictcli()
