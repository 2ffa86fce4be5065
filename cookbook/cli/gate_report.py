"""The quality gate's comparison, as the cells of one table (text for retrain, Markdown for CI),
and the report of a gated candidate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cookbook.cli.tables import fmt, render_table
from cookbook.core.loading import schema_of
from cookbook.lifecycle.gate import Comparison, RetrainResult

HEADER = ("rows", "n", "R² cand.", "R² served", "ΔR²", "RMSE cand.", "RMSE served",
          "MAE cand.", "MAE served", "verdict")  # fmt: skip


def comparison_cells(comparisons: list[Comparison]) -> tuple[tuple[str, ...], list[tuple]]:
    """Return the header and one row of cells per comparison, candidate against served."""
    rows = []
    for c in comparisons:
        served = c.served or {}
        rows.append((
            c.rows_name, str(c.candidate["rows"]),
            fmt(c.candidate["r2"], 4), fmt(served.get("r2"), 4),
            fmt(c.r2_change, 4, signed=True),
            fmt(c.candidate["rmse"], 3), fmt(served.get("rmse"), 3),
            fmt(c.candidate["mae"], 3), fmt(served.get("mae"), 3),
            "ok" if c.passed else "WORSE",
        ))  # fmt: skip
    return HEADER, rows


def comparison_table(comparisons: list[Comparison]) -> str:
    """Return the candidate-versus-served comparison as an aligned text table."""
    return render_table(*comparison_cells(comparisons))


def baseline_table(baselines: dict[str, dict]) -> str:
    """Return the baselines' held-out scores (``metrics.baselines``) as an aligned text table."""
    rows = [(name, str(scores["rows"]), fmt(scores["r2"], 4), fmt(scores["rmse"], 3),
             fmt(scores["mae"], 3)) for name, scores in baselines.items()]  # fmt: skip
    return render_table(("baseline", "n", "R²", "RMSE", "MAE"), rows)


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
    unit = schema_of(result.entry.metadata).target.unit
    unit_text = f" {unit}" if unit else ""
    click.echo(f"Model version: {result.entry.version}")
    click.echo(f"Model file:    {model_name}")
    click.echo(f"{rows_label + ':':<15}{metrics['rows']}")
    click.echo(f"R²:            {metrics['r2']:.4f}")
    click.echo(f"RMSE:          {metrics['rmse']:.3f}{unit_text}")
    click.echo(f"MAE:           {metrics['mae']:.3f}{unit_text}")
    if result.baselines:
        click.echo("")
        click.echo("Baselines, the cookbook's Ridge on the same rows:")
        click.echo(baseline_table(result.baselines))
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.served_version is not None:
        click.echo("")
        click.echo(
            f"Candidate {result.entry.version} against served {result.served_version} "
            f"(R² may drop by at most {tolerance:g}):"
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
