"""``evaluate``'s metrics as text tables: all rows, then the groups of each grouping it has.

A grouping is a report key ``by_<column>`` holding ``{group: metrics}`` (the library's
``by_position`` today); its table is headed by the column's name.
"""

from __future__ import annotations

from typing import Any

from cookbook.cli.tables import fmt, render_table

METRICS_HEADER = ("n", "R²", "RMSE", "MAE")


def metric_tables(report: dict[str, Any]) -> list[str]:
    """Return one table per grouping in *report*, each led by the "all" row; one if none."""
    overall = _cells("all", report["overall"])
    groupings = {key.removeprefix("by_"): groups for key, groups in report.items()
                 if key.startswith("by_") and groups}  # fmt: skip
    if not groupings:
        return [render_table(("rows", *METRICS_HEADER), [overall])]
    return [
        render_table((_title(column), *METRICS_HEADER),
                     [overall] + [_cells(str(name), m) for name, m in sorted(groups.items())])
        for column, groups in groupings.items()
    ]  # fmt: skip


def _cells(name: str, metrics: dict[str, Any]) -> tuple[str, ...]:
    return (name, str(metrics["rows"]), fmt(metrics["r2"], 4), fmt(metrics["rmse"], 3),
            fmt(metrics["mae"], 3))  # fmt: skip


def _title(column: str) -> str:
    return column[:1].upper() + column[1:]
