"""``evaluate``'s metrics as a text table: all rows, then each group of the column the
report was grouped by (``group_by``, with ``by_group`` holding ``{group: metrics}``)."""

from __future__ import annotations

from typing import Any

from cookbook.cli.tables import fmt, render_table

METRICS_HEADER = ("n", "R²", "RMSE", "MAE")


def metric_tables(report: dict[str, Any]) -> list[str]:
    """Return the table of *report*: the "all" row, then one row per group if it has any."""
    overall = _cells("all", report["overall"])
    groups = report.get("by_group") or {}
    if not groups:
        return [render_table(("rows", *METRICS_HEADER), [overall])]
    rows = [overall] + [_cells(str(name), metrics) for name, metrics in sorted(groups.items())]
    return [render_table((_title(report["group_by"]), *METRICS_HEADER), rows)]


def _cells(name: str, metrics: dict[str, Any]) -> tuple[str, ...]:
    return (name, str(metrics["rows"]), fmt(metrics["r2"], 4), fmt(metrics["rmse"], 3),
            fmt(metrics["mae"], 3))  # fmt: skip


def _title(column: str) -> str:
    return column[:1].upper() + column[1:]
