"""What the model card writes alike for every task: numbers, the metrics table, coverage lines.

``modelcard`` assembles the card and writes a regression's sections; ``class_card`` writes a
classifier's. Both take these pieces from here, so a figure, a score row or a coverage
caveat reads the same on every card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cookbook.core.importance import by_importance, importance_of, importance_unit
from cookbook.core.linear import LinearForm
from cookbook.core.loading import is_imported
from cookbook.core.schema import Schema

IMPORTANCE_HEADING = "## What the model relies on"

Column = tuple[str, str, int]  # a metrics table column: heading, score key, decimals


def number(value: Any, digits: int) -> str:
    """Return *value* with *digits* decimals, or "n/a" for None."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def share(value: Any) -> str:
    """Return *value* as a percentage to a tenth, or "n/a" for None."""
    return "n/a" if value is None else f"{value:.1%}"


def unit(text: str | None) -> str:
    """Return " <unit>" to write after a number, or nothing without a unit."""
    return f" {text}" if text else ""


def rows_words(metadata: Mapping[str, Any]) -> str:
    """Return the rows a model was scored on, as the card and its pictures name them."""
    return "rows given at import" if is_imported(metadata) else "held-out rows"


def importance_rows_words(metadata: Mapping[str, Any]) -> str:
    """Return the rows the model's importance was measured on: "104 held-out rows"."""
    return f"{metadata.get('importance_rows', 'n/a')} {rows_words(metadata)}"


def names(features: Any) -> str:
    """Return feature names as the card writes them: `Weight`, `Age`."""
    return ", ".join(f"`{name}`" for name in features)


def metrics_table(metadata: Mapping[str, Any], columns: Sequence[Column], family: str) -> list[str]:
    """Return the metrics table: the model's held-out scores, each baseline's on the same
    rows (``metrics.baselines``, fitted as *family*: "Ridge"), then the golden set's."""
    metrics = metadata.get("metrics", {})

    def row(label: str, scores: Mapping[str, Any]) -> str:
        cells = [number(scores.get(key), digits) for _heading, key, digits in columns]
        return f"| {label} | {scores.get('rows', 'n/a')} | {' | '.join(cells)} |"

    label = (
        "Rows given at import" if is_imported(metadata) else "Held-out rows of the training data"
    )
    lines = [
        f"| Rows | Count | {' | '.join(heading for heading, _key, _digits in columns)} |",
        "|" + "---|" * (2 + len(columns)),
    ]
    if metrics.get("held_out"):
        lines.append(row(label, metrics["held_out"]))
    for scores in (metrics.get("baselines") or {}).values():
        lines.append(
            row(f"Baseline: {family} on {names(scores.get('features', ()))}, same rows", scores)
        )
    if metrics.get("golden"):
        lines.append(row("Golden evaluation set", metrics["golden"]))
    return lines


def coverage_lines(
    metadata: Mapping[str, Any], calibration: Mapping[str, Any], what: str
) -> list[str]:
    """Return the held-out and golden-set coverage of *calibration* (``interval`` or
    ``prediction_set``), *what* naming it ("interval", "set"), with how far to trust each."""
    lines = [
        f"- Held-out coverage: {share(calibration.get('held_out_coverage'))}, measured on the "
        + (
            f"rows given at import, which the {what} is calibrated on, so"
            if is_imported(metadata)
            else f"held-out rows the {what} is calibrated on (every training row still goes "
            "into the\n  fit), so"
        )
        + " optimistic by construction: expect somewhat less on new data.",
    ]
    if "golden_coverage" in calibration:
        caveat = (
            f"rows the {what} was not calibrated on"
            if calibration.get("golden_independent")
            else "the same rows as the calibration, so no more independent"
        )
        lines.append(
            f"- Golden-set coverage: {share(calibration.get('golden_coverage'))} ({caveat})"
        )
    return lines


def linear_terms(form: LinearForm) -> str:
    """Return a folded form's sum as the card writes it: ``61.7742 + 0.059184 × Weight``."""
    terms = [f"{c:.6f} × {name}" for name, c in form.coefficients.items()]
    terms += [f"an offset per {name}" for name in form.offsets]
    return f"{form.intercept:.4f} + {' + '.join(terms)}"


def importance_lines(metadata: Mapping[str, Any], schema: Schema, picture: str) -> list[str]:
    """Return the section on what the model relies on: each feature's importance as a bar chart
    (*picture*: its file name beside the card) and a table, the largest first; or why the
    model has none."""
    importance = importance_of(metadata, schema)
    lines = ["", IMPORTANCE_HEADING, ""]
    if not importance:
        return [
            *lines,
            "- No importance recorded: this model's `model.json` has no `importance`: it was "
            "saved before importance\n  was recorded, imported without held-out rows to measure "
            "it on, or cannot explain its answers.",
        ]
    measured = importance_unit(schema, metadata)
    rows = importance_rows_words(metadata)
    total = sum(importance.values())
    lines += [
        f"Each feature's importance is its mean absolute contribution to the model's predictions "
        f"on the {rows},\nin {measured}. The answers move most with the features at the top: a "
        "drifting feature near the top is\nthe first to check (`utilscli.py drift` and "
        "`GET /drift` list the features by concern).",
        "",
        f"![Importance of each feature on the {rows}, in {measured}]({picture})",
        "",
        f"| Rank | Feature | Importance ({measured}) | Share of the total |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {rank} | {names((name,))} | {value:.4g} | {share(value / total if total else None)} |"
        for rank, (name, value) in enumerate(by_importance(importance), start=1)
    ]
    return lines
