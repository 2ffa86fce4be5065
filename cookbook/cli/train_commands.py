"""``utilscli.py retrain`` and ``ct``: train through the quality gate, by hand or on new data."""

from __future__ import annotations

from pathlib import Path

import click

from cookbook.cli import ct_report
from cookbook.cli.errors import one_line_errors
from cookbook.cli.gate_report import comparison_table, echo_gated
from cookbook.cli.options import (
    GATE_TOLERANCE_HELP,
    coverage_option,
    positive_class_option,
    tolerance_option,
)
from cookbook.core.files import write_bytes_atomic
from cookbook.core.schema import REGRESSION
from cookbook.core.settings import PROJECT_ROOT, data_path, model_path
from cookbook.lifecycle import continuous, gate
from cookbook.lifecycle.classifying import LOGISTIC, TASK_CHOICES
from cookbook.lifecycle.column_info import DEFAULT_MODEL
from cookbook.lifecycle.model_spec import ESTIMATORS, RIDGE, parse_columns, spec_for

GOLDEN_HELP = (
    "Labelled CSV whose every row is the golden set for this run [default: the golden set "
    "pinned in the registry with the model's first version]."
)
golden_option = click.option(
    "--golden",
    "golden_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=GOLDEN_HELP,
)


@click.command("retrain")
@click.option(
    "--tsize",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of rows held out to score the model.",
)
@click.option(
    "--model-name",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(model_path()),
    show_default="MODEL_PATH or model.joblib beside this script",
    help="Where to write the model; model.json is written beside it.",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: str(data_path()),
    show_default="DATA_PATH or htwtmlb.csv beside this script",
    help="Training CSV with the target and feature columns.",
)
@click.option(
    "--target",
    default=DEFAULT_MODEL["target"],
    show_default=True,
    help="Column to predict (numeric for a regression, labels for a classification).",
)
@click.option(
    "--features",
    default=",".join(DEFAULT_MODEL["features"]),
    show_default=True,
    help="Comma-separated numeric feature columns.",
)
@click.option(
    "--categorical",
    default="",
    help="Comma-separated categorical feature columns (one-hot encoded).",
)
@click.option("--name", "model_name_text", default=None, help="The model's name in its schema.")
@click.option(
    "--task",
    type=click.Choice(TASK_CHOICES),
    default=REGRESSION,
    show_default=True,
    help="Predict a number, or a class (the target's values are labels; two of them make "
    "a binary classifier).",
)
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATORS),
    default=None,
    show_default=f"{RIDGE} for a regression, {LOGISTIC} for a classification",
    help="The family: the linear default (folded, served by plain Python), or a tree "
    "ensemble of 100 trees (served from its ONNX form when that passes its parity check).",
)
@positive_class_option()
@click.option(
    "--baseline-features",
    "baseline_features",
    multiple=True,
    metavar="A,B",
    help="Also score the cookbook's Ridge on these comma-separated features (some of the "
    "model's) on the same split, recorded in model.json and the card as a baseline; "
    "repeatable. A model that is not Ridge always gets the Ridge of its own features.",
)
@golden_option
@tolerance_option(GATE_TOLERANCE_HELP)
@click.option("--force", is_flag=True, help="Promote the candidate even if it is worse.")
@coverage_option()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def retrain(
    ctx: click.Context,
    tsize: float,
    model_name: Path,
    data_file: Path,
    target: str,
    features: str,
    categorical: str,
    model_name_text: str | None,
    task: str,
    estimator: str | None,
    positive_class: str | None,
    baseline_features: tuple[str, ...],
    golden_file: Path | None,
    tolerance: float,
    force: bool,
    coverage: float,
    as_json: bool,
) -> None:
    """Retrain, compare with the served model, and promote the new model if it is not worse."""
    spec = spec_for(target, parse_columns(features), parse_columns(categorical),
                    model_name_text, estimator, task, positive_class)  # fmt: skip
    with one_line_errors():
        result = gate.retrain(
            data_file,
            model_name.resolve(),
            spec=spec,
            test_size=tsize,
            tolerance=tolerance,
            golden_file=golden_file,
            force=force,
            coverage=coverage,
            baseline_features=[parse_columns(text) for text in baseline_features],
        )
    echo_gated(ctx, result, model_name, tolerance, as_json)


@click.command("ct")
@click.option("--data-url", required=True, help="The new training CSV: https:// or file://.")
@click.option(
    "--force",
    is_flag=True,
    help="Retrain even if the data is unchanged; promote even if the gate refuses.",
)
@click.option(
    "--pr-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(PROJECT_ROOT / ".ct" / "pull-request.md"),
    show_default=".ct/pull-request.md beside this script",
    help="Where a promotion writes the pull request: the title, a blank line, the body.",
)
@tolerance_option(GATE_TOLERANCE_HELP)
@golden_option
@click.pass_context
def ct(
    ctx: click.Context,
    data_url: str,
    force: bool,
    pr_file: Path,
    tolerance: float,
    golden_file: Path | None,
) -> None:
    """Continuous training: fetch new data, check its drift, retrain through the gate.

    Exit codes: 0 promoted (the pull request is in --pr-file), 3 nothing to do (the
    data is unchanged), 4 refused by the quality gate (the served model is untouched),
    1 the run failed (one line on stderr).
    """
    served = model_path()
    with one_line_errors():
        run = continuous.run(
            data_url, served, force=force, tolerance=tolerance, golden_file=golden_file
        )
    click.echo(f"Data: {data_url}")
    click.echo(f"sha256: {run.data_sha256}")
    report = run.drift
    if report is not None:
        click.echo(
            f"Drift against {report['model_version']}: {report['verdict']} "
            f"(worst feature {report['worst_feature']}, PSI {report['psi']:.4f})"
        )
    if run.retrain is not None:
        click.echo(comparison_table(run.retrain.comparisons))
        for note in run.retrain.notes:
            click.echo(f"Note: {note}")
    click.echo(ct_report.verdict_line(run))
    if run.outcome is continuous.Outcome.PROMOTED:
        text = ct_report.pull_request_text(run, PROJECT_ROOT)
        try:
            pr_file.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(pr_file, text.encode("utf-8"))
        except OSError as exc:
            raise click.ClickException(f"Cannot write {pr_file}: {exc.strerror}") from None
        click.echo(f"Pull request: {pr_file}")
    else:
        pr_file.unlink(missing_ok=True)  # a stale one must not be opened for this run
    ctx.exit(run.outcome.exit_code)
