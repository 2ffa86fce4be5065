"""``utilscli.py evaluate`` and ``drift``: the served model on labelled data, and data drift."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cookbook.cli.errors import one_line_errors
from cookbook.cli.evaluation_report import metric_tables
from cookbook.cli.tables import fmt, render_table
from cookbook.core.importance import entries_by_concern
from cookbook.core.loading import verified_metadata
from cookbook.core.psi import PSI_ALERT, PSI_WARN
from cookbook.core.settings import model_path
from cookbook.lifecycle import drift as offline_drift
from cookbook.lifecycle import evaluation

LABELLED_CSV = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("evaluate")
@click.option(
    "--data",
    "data_file",
    type=LABELLED_CSV,
    required=True,
    help="Labelled CSV with the model's feature and target columns (and optionally a column "
    "to group by, e.g. Position).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(data_file: Path, as_json: bool) -> None:
    """Print the served model's metrics on labelled data, overall and by group.

    A regression's R², RMSE and MAE; a classifier's log loss, Brier score, accuracy, ROC AUC
    (binary), ECE and the share of true labels in its prediction sets.
    """
    with one_line_errors():
        report = evaluation.evaluate(model_path(), data_file)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"Model {report['model_version']} on {data_file}")
    skipped = report["rows_missing_values"] + report["rows_invalid"]
    if skipped:
        click.echo(f"Skipped {skipped} row(s): missing values or values the model refuses.")
    click.echo("\n\n".join(metric_tables(report)))


def concern_table(report: dict) -> str:
    """Return the features by concern (drifting first, the most important first) as a table
    of their importance, rank, PSI and verdict, and what the importance is measured in."""
    rows = [(e["feature"], fmt(e["importance"], 4), str(e["importance_rank"] or "-"),
             f"{e['psi']:.4f}", e["verdict"]) for e in entries_by_concern(report)]  # fmt: skip
    unit = report["importance_unit"]
    note = (f"importance: mean |contribution| to a prediction, in {unit}" if unit
            else "importance: n/a, the model records none")  # fmt: skip
    table = render_table(("feature", "importance", "rank", "PSI", "verdict"), rows)
    return f"By concern (drifting first, the most important first; {note})\n{table}"


class DriftCheckFailed(click.ClickException):
    """A drift check that could not run: exit 3, apart from the verdicts' 0, 1 and 2."""

    exit_code = 3


DRIFT_EXIT_CODES = {"ok": 0, "warn": 1, "alert": 2}


@click.command("drift")
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV whose inputs to compare with the training data (columns: the features).",
)
@click.option(
    "--column",
    default=None,
    help="Column holding the feature, for a model of one feature [default: its name].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def drift(ctx: click.Context, data_file: Path, column: str | None, as_json: bool) -> None:
    """Compare a file's inputs with the training data, feature by feature: PSI and KS.

    A classifier's answered classes are compared too, with those of its held-out rows. The
    worst PSI sets the exit code: 0 ok (PSI < 0.1), 1 warn (PSI < 0.25), 2 alert, 3 the
    check could not run.
    """
    with one_line_errors(DriftCheckFailed):
        served = model_path()
        columns = None
        if column is not None:
            names = verified_metadata(served)["schema"]["features"]
            if len(names) != 1:
                raise DriftCheckFailed("--column is for a model of one feature.")
            columns = {names[0]["name"]: column}
        report = offline_drift.drift(served, data_file, columns)
    if as_json:
        click.echo(json.dumps(report))
        ctx.exit(DRIFT_EXIT_CODES[report["verdict"]])
    click.echo(f"Model {report['model_version']}: {data_file}")
    for feature in report["features"]:
        rejected = f", {feature['rows_rejected']} rejected" if feature["rows_rejected"] else ""
        click.echo(f"\n{feature['feature']} ({feature['rows']} values{rejected})")
        rows = [
            (
                str(b["category"]) if "category" in b else f"{b['low']:g}-{b['high']:g}",
                f"{b['expected_share']:.1%}",
                f"{b['actual_share']:.1%}",
            )
            for b in feature["bins"]
        ]
        click.echo(render_table(("bin", "training", "this file"), rows))
        click.echo(f"PSI: {feature['psi']:.4f} ({feature['verdict']})")
        if feature["ks"] is not None:
            click.echo(
                f"KS:  {feature['ks']:.4f} (5% critical value {feature['ks_critical_5pct']:.4f})"
            )
    predicted = report.get("predicted_classes")
    if predicted:
        rejected = f", {predicted['rows_rejected']} rejected" if predicted["rows_rejected"] else ""
        click.echo(f"\n{predicted['target']} as the model answers it ({predicted['rows']} "
                   f"rows{rejected})")  # fmt: skip
        rows = [(b["class"], f"{b['expected_share']:.1%}", f"{b['actual_share']:.1%}")
                for b in predicted["bins"]]  # fmt: skip
        click.echo(render_table(("class", "held-out rows", "this file"), rows))
        click.echo(f"PSI: {predicted['psi']:.4f} ({predicted['verdict']})")
    click.echo("\n" + concern_table(report))
    click.echo(
        f"\nVerdict: {report['verdict']} (worst feature {report['worst_feature']}, PSI "
        f"{report['psi']:.4f}; warn at {PSI_WARN:g}, alert at {PSI_ALERT:g})"
    )
    ctx.exit(DRIFT_EXIT_CODES[report["verdict"]])
