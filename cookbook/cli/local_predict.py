"""``cli.py``: predict on this machine, one row (``--set``, ``--weight``) or a CSV (``--input``).

The model is ``--model``'s, ``MODEL_PATH``'s, or ``model.joblib`` in the project. Only the
model core is imported up front: a single prediction loads neither pandas nor scikit-learn
(a batch run imports them when it starts), so ``python cli.py --weight 180`` starts fast.
"""

from __future__ import annotations

from pathlib import Path

import click

import cookbook
from cookbook.cli.options import WEIGHT_FEATURE, chunk_rows_option, set_option
from cookbook.cli.params import NUMBER
from cookbook.cli.prediction_output import echo_prediction
from cookbook.core.errors import InvalidInput, ModelError
from cookbook.core.prediction import Predictor
from cookbook.core.schema import NumberFeature
from cookbook.lifecycle.artifacts import load_predictor


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


def prompted_row(predictor: Predictor) -> dict[str, object]:
    """Ask for the value of a model's only feature when it is a number (else ask nothing)."""
    feature = predictor.schema.single_number
    if feature is None:
        return {}
    label = f"{feature.name} ({feature.unit_name})" if feature.unit_name else feature.name
    return {feature.name: click.prompt(label, type=NUMBER)}


@click.command()
@click.option(
    "--weight",
    type=NUMBER,
    help=f"Shortcut for --set {WEIGHT_FEATURE}=... (the cookbook's model).",
)
@set_option("A feature's value, for any model; repeat it for each feature.")
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
    assignments: tuple[tuple[str, str], ...],
    as_json: bool,
    model_file: Path | None,
    input_path: str | None,
    output_path: str,
    column: str | None,
    rejects_path: str | None,
    chunk_rows: int,
) -> None:
    """Predict on this machine: one row (--set, --weight) or every row of a CSV (--input).

    Given no features, a model of one number feature asks for it. With --input, exits 0
    when every row was scored and 3 when some rows were rejected.
    """
    check_batch_options(ctx, weight, assignments, as_json, input_path)
    texts = dict(assignments)
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
    elif not row:
        row = prompted_row(predictor)
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
    assignments: tuple[tuple[str, str], ...],
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
