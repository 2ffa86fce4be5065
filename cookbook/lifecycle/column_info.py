"""What the project knows about the MLB data's columns: units, bounds, examples, answers.

Training writes these into a model's schema when its columns have these names; a column
that is not listed here gets a plain schema (finite numbers, no unit, examples from the
data). This is the one place that knows what a "Weight" or a "Height" is.
"""

from __future__ import annotations

from typing import Any

KNOWN_COLUMNS: dict[str, dict[str, Any]] = {
    "Weight": {
        "unit": "lb",
        "unit_name": "pounds",
        "description": "A player's weight in pounds.",
        "bounds": {"minimum": 0.0, "exclusive_minimum": True, "maximum": 1000.0},
        "example": 200.0,
        "batch_example": [180.0, 200.0],
        # MLB weights lie between about 150 and 290 lb; the outer buckets catch mistakes.
        "metric_buckets": [100, 125, 150, 165, 180, 195, 210, 225, 240, 260, 290, 350, 500, 1000],
        "chart_bin_width": 10.0,
        "chart_step": 25.0,
    },
    "Position": {
        "description": "A player's fielding position.",
        # `utilscli.py evaluate` scores each position apart when the data has this column.
        "evaluate_by": True,
        "example": "Catcher",
        "batch_example": ["Catcher", "Shortstop"],
    },
    "Height": {
        "unit": "in",
        "unit_name": "inches",
        "description": "A player's height in inches.",
        # Written as the cookbook does: inches to a tenth, and "6 foot, 2 inches".
        "answer": "height",
        "metric_buckets": [60, 66, 68, 70, 71, 72, 73, 74, 75, 76, 78, 80, 84, 96],
        "chart_step": 2.0,
    },
}
# The cookbook's own model, named as the Open Inference Protocol and the page name it.
DEFAULT_MODEL = {
    "features": ("Weight",),
    "target": "Height",
    "name": "mlb-height",
    "title": "MLB height from weight",
    "description": "Predicts a Major League Baseball player's height from weight.",
}


def evaluation_groups() -> tuple[str, ...]:
    """Return the columns an evaluation is broken down by when the data has them."""
    return tuple(name for name, info in KNOWN_COLUMNS.items() if info.get("evaluate_by"))


def column_info(name: str) -> dict[str, Any]:
    """Return what is known about the column *name* (an empty dict for unknown columns)."""
    return dict(KNOWN_COLUMNS.get(name, {}))
