"""``evaluate``'s metrics as a text table: all rows, then each group of the column the
report was grouped by (``group_by``, with ``by_group`` holding ``{group: metrics}``); a
regression's R², RMSE and MAE, or a classifier's metrics."""

from __future__ import annotations

from typing import Any

from cookbook.cli.tables import fmt, render_table

# (header, metric, decimals) of each task's columns.
REGRESSION_COLUMNS = (("R²", "r2", 4), ("RMSE", "rmse", 3), ("MAE", "mae", 3))
CLASS_COLUMNS = (("log loss", "log_loss", 4), ("Brier", "brier", 4), ("accuracy", "accuracy", 4),
                 ("ROC AUC", "roc_auc", 4), ("ECE", "ece", 4),
                 ("set coverage", "set_coverage", 3))  # fmt: skip


def metric_tables(report: dict[str, Any]) -> list[str]:
    """Return the table of *report*: the "all" row, then one row per group if it has any."""
    columns = CLASS_COLUMNS if "log_loss" in report["overall"] else REGRESSION_COLUMNS
    header = ("n", *(title for title, _, _ in columns))
    overall = _cells("all", report["overall"], columns)
    groups = report.get("by_group") or {}
    if not groups:
        return [render_table(("rows", *header), [overall])]
    rows = [overall] + [_cells(str(name), metrics, columns)
                        for name, metrics in sorted(groups.items())]  # fmt: skip
    return [render_table((_title(report["group_by"]), *header), rows)]


def _cells(name: str, metrics: dict[str, Any], columns: tuple) -> tuple[str, ...]:
    return (name, str(metrics["rows"]),
            *(fmt(metrics[key], digits) for _, key, digits in columns))  # fmt: skip


def _title(column: str) -> str:
    return column[:1].upper() + column[1:]
