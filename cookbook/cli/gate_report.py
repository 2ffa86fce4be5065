"""The quality gate's comparison, as the cells of one table (text for retrain, Markdown for CI),
and the report of a gated candidate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cookbook.cli.tables import fmt, render_table
from cookbook.core.loading import schema_of
from cookbook.lifecycle.gate import Comparison, RetrainResult

# Per gate metric, the columns shown: (metric key, heading, decimals); the first is gated.
COLUMNS = {
    "r2": (("r2", "R²", 4), ("rmse", "RMSE", 3), ("mae", "MAE", 3)),
    "log_loss": (("log_loss", "log loss", 4), ("accuracy", "accuracy", 4), ("brier", "Brier", 4)),
}


def comparison_cells(comparisons: list[Comparison]) -> tuple[tuple[str, ...], list[tuple]]:
    """Return the header and one row of cells per comparison, candidate against served."""
    columns = COLUMNS[comparisons[0].metric if comparisons else "r2"]
    (gated, heading, digits), *others = columns
    header = ["rows", "n", f"{heading} cand.", f"{heading} served",
              "ΔR²" if gated == "r2" else "Δ (better +)"]  # fmt: skip
    for _key, name, _digits in others:
        header += [f"{name} cand.", f"{name} served"]
    rows = []
    for c in comparisons:
        served = c.served or {}
        cells = [c.rows_name, str(c.candidate["rows"]), fmt(c.candidate[gated], digits),
                 fmt(served.get(gated), digits), fmt(c.change, digits, signed=True)]  # fmt: skip
        for key, _name, places in others:
            cells += [fmt(c.candidate[key], places), fmt(served.get(key), places)]
        rows.append((*cells, "ok" if c.passed else "WORSE"))
    return (*header, "verdict"), rows


def comparison_table(comparisons: list[Comparison]) -> str:
    """Return the candidate-versus-served comparison as an aligned text table."""
    return render_table(*comparison_cells(comparisons))


def baseline_table(baselines: dict[str, dict]) -> str:
    """Return the baselines' held-out scores (``metrics.baselines``) as an aligned text table."""
    first = next(iter(baselines.values()))
    columns = COLUMNS["log_loss" if "log_loss" in first else "r2"]
    rows = [(name, str(scores["rows"]), *(fmt(scores[key], digits) for key, _, digits in columns))
            for name, scores in baselines.items()]  # fmt: skip
    return render_table(("baseline", "n", *(heading for _, heading, _ in columns)), rows)


def echo_gated(
    ctx: click.Context,
    result: RetrainResult,
    model_name: Path,
    tolerance: float,
    as_json: bool,
    rows_label: str = "Held-out rows",
) -> None:
    """Print what the gate did with a candidate (``retrain``, ``models import``); exit 1 when
    it was not promoted. *rows_label* names the rows its metrics were measured on."""
    metrics = result.metrics
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model_version": result.entry.version,
                    "model": str(model_name),
                    **metrics,
                    "promoted": result.promoted,
                    "served_version": result.served_version,
                    "baselines": result.baselines,
                    "comparisons": [c.as_dict() for c in result.comparisons],
                    "notes": result.notes,
                }
            )
        )
        if not result.promoted:
            ctx.exit(1)
        return
    target = schema_of(result.entry.metadata).target
    unit_text = f" {target.unit}" if target.unit else ""
    click.echo(f"Model version: {result.entry.version}")
    click.echo(f"Model file:    {model_name}")
    click.echo(f"{rows_label + ':':<15}{metrics['rows']}")
    if target.is_classification:
        for name, key in (("Log loss", "log_loss"), ("Brier", "brier"), ("Accuracy", "accuracy"),
                          ("ROC AUC", "roc_auc"), ("ECE", "ece")):  # fmt: skip
            click.echo(f"{name + ':':<15}{fmt(metrics.get(key), 4)}")
    else:
        click.echo(f"R²:            {metrics['r2']:.4f}")
        click.echo(f"RMSE:          {metrics['rmse']:.3f}{unit_text}")
        click.echo(f"MAE:           {metrics['mae']:.3f}{unit_text}")
    if result.baselines:
        click.echo("")
        family = "logistic regression" if target.is_classification else "Ridge"
        click.echo(f"Baselines, the cookbook's {family} on the same rows:")
        click.echo(baseline_table(result.baselines))
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.served_version is not None:
        click.echo("")
        click.echo(
            f"Candidate {result.entry.version} against served {result.served_version} "
            f"({'log loss may rise' if target.is_classification else 'R² may drop'} by at "
            f"most {tolerance:g}):"
        )
        click.echo(comparison_table(result.comparisons))
    if result.promoted and result.served_version == result.entry.version:
        click.echo(f"Unchanged: {model_name} already serves this model ({result.entry.version}).")
        return
    if result.promoted:
        forced = " (forced)" if not result.passed else ""
        click.echo(f"Promoted{forced}: {model_name} now serves {result.entry.version}.")
        return
    raise click.ClickException(
        f"Candidate {result.entry.version} is worse than the served model beyond the tolerance "
        "and was not promoted (it stays in the registry): use --force to promote it anyway."
    )
