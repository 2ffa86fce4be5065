"""The quality gate's comparison, as the cells of one table (text for retrain, Markdown for CI)."""

from __future__ import annotations

from cookbook.cli.tables import fmt, render_table
from cookbook.lifecycle.gate import Comparison

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
