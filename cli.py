#!/usr/bin/env python
"""Predict on this machine: ``python cli.py --weight 180``, or any model's row with ``--set``.

``python cli.py --set Weight=200 --set Position=Catcher --json`` predicts one row of any
model (``--model`` or ``MODEL_PATH`` names it); ``python cli.py --input rows.csv --output
predictions.csv`` scores a whole CSV whose columns are the model's features.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

import cookbook
from cookbook.core.errors import InvalidInput, ModelError
from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature
from cookbook.lifecycle.artifacts import load_predictor

TALL_INCHES = 72
WEIGHT_FEATURE = "Weight"  # the feature --weight sets: the cookbook's own


class NumberText(click.ParamType):
    """A number typed on the command line; the model's schema judges its range."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


NUMBER = NumberText()


def chunk_rows_option(help_text: str):
    """Return the ``--chunk-rows`` option of the batch commands (here and ``utilscli.py score``)."""
    return click.option(
        "--chunk-rows",
        type=click.IntRange(min=1),
        default=200_000,  # batch.DEFAULT_CHUNK_ROWS, not imported: --weight must not load pandas
        show_default=True,
        help=help_text,
    )


def parse_assignments(values: tuple[str, ...]) -> dict[str, str]:
    """Return ``--set NAME=VALUE`` options as a dict, or raise a usage error."""
    row = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE.", param_hint="'--set'")
        row[name.strip()] = value
    return row


def typed_row(predictor: Predictor, texts: dict[str, str]) -> dict[str, object]:
    """Return the row with each number feature's text read as a number (others as typed)."""
    row: dict[str, object] = {}
    for name, text in texts.items():
        try:
            feature = predictor.schema.feature(name)
        except KeyError:
            known = ", ".join(predictor.schema.feature_names)
            raise click.BadParameter(
                f"{name} is not a feature of this model (its features: {known}).",
                param_hint="'--set'",
            ) from None
        if not isinstance(feature, NumberFeature):
            row[name] = text
            continue
        try:
            row[name] = NUMBER.convert(text, None, None)
        except click.BadParameter as exc:
            exc.param_hint = "'--set'"  # convert() was given no parameter to name
            raise
    return row


def echo_prediction(result: dict, as_json: bool = False) -> None:
    """Print one prediction: green when taller than 72 inches, red otherwise, as the cookbook."""
    if as_json:
        click.echo(json.dumps(result))
        return
    if "height_human_readable" in result:
        # Judge the height the reader sees (whole inches), so "6 foot, 0 inches" is never green.
        shown_inches = math.floor(result["height_inches"] + 0.5)
        colour = "green" if shown_inches > TALL_INCHES else "red"
        click.secho(result["height_human_readable"], bg=colour, fg="white")
    else:
        click.echo(", ".join(f"{k}: {v}" for k, v in result.items() if k != "warning"))
    if "warning" in result:
        click.secho(f"Warning: {result['warning']}", fg="yellow", err=True)


@click.command()
@click.option("--weight", type=NUMBER, help="Weight of an MLB player in pounds (asked if missing).")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="A feature's value, for any model; repeat it for each feature.",
)
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
    help="CSV of rows to score in bulk ('-' for stdin); its columns are the model's features.",
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
    help="--input's column that holds the feature, for a model of one feature "
    "[default: the feature's name].",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write --input's rejected rows (line, value, reason) to this CSV instead of stderr.",
)
@chunk_rows_option("Rows of --input read and scored at a time (memory is proportional to it).")
@click.version_option(cookbook.__version__)
@click.pass_context
def predictcli(
    ctx: click.Context,
    weight: float | None,
    assignments: tuple[str, ...],
    as_json: bool,
    model_file: Path | None,
    input_path: str | None,
    output_path: str,
    column: str | None,
    rejects_path: str | None,
    chunk_rows: int,
) -> None:
    """Predict the height of an MLB player from weight, or of every row of a CSV (--input).

    With --input, exits 0 when every row was scored and 3 when some rows were rejected.
    """
    check_batch_options(ctx, weight, assignments, as_json, input_path)
    texts = parse_assignments(assignments)
    try:
        predictor = load_predictor(model_file)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    if input_path is not None:
        from cookbook.cli.batch_run import run  # numpy and pandas: only a batch run pays

        ctx.exit(run(predictor, input_path, output_path, columns=input_columns(predictor, column),
                     rejects_path=rejects_path, chunk_rows=chunk_rows))  # fmt: skip
    row = typed_row(predictor, texts)
    if weight is not None:
        row[WEIGHT_FEATURE] = weight
    elif not row and predictor.schema.feature_names == (WEIGHT_FEATURE,):
        row[WEIGHT_FEATURE] = click.prompt("MLB Player Weight", type=NUMBER)
    try:
        result = predictor.prediction(row)
    except InvalidInput as exc:
        # Quoted as click quotes an option it names itself: "Invalid value for '--weight'".
        hint = "'--weight'" if weight is not None or not texts else "'--set'"
        raise click.BadParameter(str(exc), param_hint=hint) from None
    echo_prediction(result, as_json)


def input_columns(predictor: Predictor, column: str | None) -> dict[str, str] | None:
    """Return which --input column holds which feature (``--column`` renames the only one)."""
    if column is None:
        return None
    names = predictor.schema.feature_names
    if len(names) != 1:
        raise click.UsageError(
            "--column is for a model of one feature: name the columns as the features."
        )
    return {names[0]: column}


def check_batch_options(
    ctx: click.Context,
    weight: float | None,
    assignments: tuple[str, ...],
    as_json: bool,
    input_path: str | None,
) -> None:
    """Refuse option mixes that mean nothing: --weight or --json with --input, and vice versa."""
    if input_path is not None:
        if weight is not None or assignments:
            raise click.UsageError("Give either --weight/--set or --input, not both.", ctx)
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
