"""``utilscli.py models``: list, promote and roll back the registry's model versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cookbook.cli.errors import one_line_errors
from cookbook.cli.gate_report import COLUMNS, echo_gated
from cookbook.cli.options import (
    GATE_TOLERANCE_HELP,
    coverage_option,
    positive_class_option,
    tolerance_option,
)
from cookbook.cli.tables import fmt, render_table
from cookbook.lifecycle import registry
from cookbook.lifecycle.classifying import TASK_CHOICES


@click.group("models")
def models() -> None:
    """List, import, promote and roll back registered model versions (MODEL_PATH's models/)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def models_list(as_json: bool) -> None:
    """List every registered version, oldest first; * marks the served one."""
    store = registry.Registry()
    try:
        with one_line_errors():
            entries = store.listing()
            history = store.history()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    served = history[-1] if history else None
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "version": e.version,
                        "created_at": e.created_at,
                        "held_out": e.held_out,
                        "data_sha256": e.metadata.get("data", {}).get("sha256"),
                        "served": e.version == served,
                        "promoted_before": e.version in history[:-1],
                    }
                    for e in entries
                ]
            )
        )
        return
    if not entries:
        click.echo(f"No models registered in {store.root}: run `python utilscli.py retrain`.")
        return
    # The two first figures the gate shows for this kind of model (R² and RMSE, or log loss
    # and accuracy).
    kind = "log_loss" if any("log_loss" in e.held_out for e in entries) else "r2"
    shown = COLUMNS[kind][:2]
    rows = []
    for entry in entries:
        marker = "*" if entry.version == served else ("earlier" if entry.version in history else "")
        rows.append(
            (
                entry.version,
                entry.created_at.replace("+00:00", "Z"),
                *(fmt(entry.held_out.get(key), digits) for key, _heading, digits in shown),
                str(entry.metadata.get("data", {}).get("sha256", ""))[:12],
                marker,
            )
        )
    headings = tuple(heading for _key, heading, _digits in shown)
    click.echo(render_table(("version", "created", *headings, "data", "promoted"), rows))


@models.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Serve VERSION (or a unique prefix of it, at least 4 characters)."""
    store = registry.Registry()
    with one_line_errors():
        entry = store.promote(version)
    click.echo(f"Promoted {entry.version}: {store.served_model} now serves it.")


@models.command("rollback")
def models_rollback() -> None:
    """Serve the previously promoted version again."""
    store = registry.Registry()
    with one_line_errors():
        entry = store.rollback()
    click.echo(f"Rolled back: {store.served_model} serves {entry.version} again.")


@models.command("import")
@click.argument("fitted_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled CSV of rows the model did not learn from: they score it, calibrate its "
    "interval (a classifier's prediction set) and become its golden set.",
)
@click.option(
    "--target",
    required=True,
    help="The column the model predicts: numbers, or a classifier's labels (each one of its "
    "classes_).",
)
@click.option(
    "--task",
    type=click.Choice(TASK_CHOICES),
    default=None,
    help="Import as a regression or a classifier [default: a classifier when the estimator "
    "has predict_proba and classes_, else a regression].",
)
@positive_class_option()
@click.option(
    "--features",
    default="",
    help="Comma-separated feature columns [default: the estimator's feature_names_in_].",
)
@click.option(
    "--categorical",
    default="",
    help="Comma-separated categorical features [default: the features whose column is text].",
)
@click.option("--name", "model_name_text", default=None, help="The model's name in its schema.")
@click.option(
    "--model-name",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to serve the model; model.json and the registry (models/) go beside it.",
)
@tolerance_option(GATE_TOLERANCE_HELP)
@click.option("--force", is_flag=True, help="Promote the model even if the gate finds it worse.")
@coverage_option()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def models_import(
    ctx: click.Context,
    fitted_file: Path,
    data_file: Path,
    target: str,
    task: str | None,
    positive_class: str | None,
    features: str,
    categorical: str,
    model_name_text: str | None,
    model_name: Path,
    tolerance: float,
    force: bool,
    coverage: float,
    as_json: bool,
) -> None:
    """Import a fitted scikit-learn model from a joblib file, through the quality gate.

    Loading a joblib file runs the code it holds: import only files you made or trust.
    """
    from cookbook.lifecycle import gate, importing
    from cookbook.lifecycle.model_spec import parse_columns

    with one_line_errors():
        fitted = importing.check_fitted(
            fitted_file,
            data_file,
            target=target,
            features=parse_columns(features),
            categorical=parse_columns(categorical),
            name=model_name_text,
            task=task,
            positive_class=positive_class,
        )
        result = gate.import_fitted(
            fitted, model_name.resolve(), tolerance=tolerance, force=force, coverage=coverage
        )
    echo_gated(ctx, result, model_name, tolerance, as_json, rows_label="Rows given")
