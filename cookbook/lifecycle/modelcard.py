"""Render a Markdown model card from a served model's verified ``model.json``, and write it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookbook.core.errors import MlibError
from cookbook.core.files import write_bytes_atomic
from cookbook.core.loading import is_imported, linear_form_of, schema_of, verified_metadata
from cookbook.core.schema import NumberFeature, Schema

CARD_FILE = "MODEL_CARD.md"  # beside the served model


class CardError(MlibError):
    """The card cannot be written: one line saying where and why."""


def card_path(served_model: Path) -> Path:
    """Return where the card of *served_model* lives: ``MODEL_CARD.md`` beside it."""
    return served_model.parent / CARD_FILE


def write_card(served_model: Path, target: Path | None = None) -> Path:
    """Write the verified *served_model*'s card to *target* (default: beside it); return where.

    Raise ``CardError`` when the file cannot be written (``ModelError`` for a model that
    does not verify).
    """
    target = target if target is not None else card_path(served_model)
    text = render_card(verified_metadata(served_model))
    try:
        write_bytes_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise CardError(f"Cannot write {target}: {exc.strerror}") from None
    return target


def _number(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _unit(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _score_row(label: str, scores: Mapping[str, Any]) -> str:
    return (
        f"| {label} | {scores.get('rows', 'n/a')} | {_number(scores.get('r2'), 3)} "
        f"| {_number(scores.get('rmse'), 2)} | {_number(scores.get('mae'), 2)} |"
    )


def _names(features: Any) -> str:
    return ", ".join(f"`{name}`" for name in features)


def _metrics_rows(metadata: Mapping[str, Any]) -> list[str]:
    """Return the metrics table's rows: the model's held-out scores, each baseline's on the
    same rows (``metrics.baselines``), then the golden set's."""
    metrics = metadata.get("metrics", {})
    label = (
        "Rows given at import" if is_imported(metadata) else "Held-out rows of the training data"
    )
    rows = [_score_row(label, metrics["held_out"])] if metrics.get("held_out") else []
    for scores in (metrics.get("baselines") or {}).values():
        label = f"Baseline: Ridge on {_names(scores.get('features', ()))}, same rows"
        rows.append(_score_row(label, scores))
    if metrics.get("golden"):
        rows.append(_score_row("Golden evaluation set", metrics["golden"]))
    return rows


def _baseline_lines(metadata: Mapping[str, Any]) -> list[str]:
    if is_imported(metadata):
        return ["", "- No baseline: the model was fitted elsewhere, so there is no training "
                "split to fit the cookbook's Ridge on"]  # fmt: skip
    if not (metadata.get("metrics") or {}).get("baselines"):
        return []
    return [
        "",
        "- Baselines: the cookbook's Ridge pipeline fitted on this model's training rows and "
        "scored on its held-out rows,\n  on the features named: what this model adds over a "
        "linear one (not served, not gated)",
    ]


def _serving_lines(metadata: Mapping[str, Any]) -> list[str]:
    onnx = metadata.get("onnx")
    if onnx:
        parity = onnx.get("parity", {})
        return [
            f"- Served from `{onnx.get('file')}` by {onnx.get('runtime')} ({onnx.get('input_type')}"
            f" inputs, opset {onnx.get('opset')}); its predictions equal the estimator's on "
            f"{parity.get('rows')} rows to {_number(parity.get('max_abs_difference'), 7)} "
            f"(tolerance {_number(parity.get('tolerance'), 5)})"
        ]
    reason = (metadata.get("serving") or {}).get("reason", "no ONNX form")
    return [f"- Served from its verified joblib file (unpickled): {reason}"]


def _feature_lines(schema: Schema) -> list[str]:
    lines = []
    for feature in schema.features:
        if isinstance(feature, NumberFeature):
            low, high = feature.training_range
            stats, quantiles = feature.stats, feature.stats.get("quantiles", {})
            unit = _unit(feature.unit)
            bounds = feature.bounds.describe(feature.unit)
            lines.append(
                f"- `{feature.name}` (number{', ' + feature.unit if feature.unit else ''}): "
                f"trained on {low:g}-{high:g}{unit}, mean {stats.get('mean', 0):.1f}, "
                f"sd {stats.get('std', 0):.1f}; 5th-95th percentile "
                f"{quantiles.get('p05', low):g}-{quantiles.get('p95', high):g}{unit}; "
                f"accepted: finite{', ' + bounds if bounds else ''}"
            )
        else:
            lines.append(
                f"- `{feature.name}` (category): {', '.join(feature.categories)} "
                f"({sum(feature.frequencies.values())} training rows)"
            )
    return lines


GOLDEN_SET_WORDS = {
    "import": "the data given at import, rows the model did not learn from",
    "held_out": "the held-out rows pinned with the model's first version",
    "file": "every row of a labelled file given to this run",
}


def _golden_lines(metadata: Mapping[str, Any]) -> list[str]:
    golden = metadata.get("golden_set")
    if not golden:
        return []
    scores = metadata.get("metrics", {}).get("golden", {})
    words = GOLDEN_SET_WORDS.get(golden.get("kind"), GOLDEN_SET_WORDS["file"])
    return [
        "",
        f"- The quality gate's golden set: {words} ({scores.get('rows', 'n/a')} rows, "
        f"sha256 `{str(scores.get('sha256', ''))[:12]}`)",
    ]


def _data_lines(metadata: Mapping[str, Any]) -> list[str]:
    data = metadata.get("data", {})
    file_line = f"`{data.get('file', 'unknown')}`, sha256 `{data.get('sha256', 'unknown')}`"
    used = f"{data.get('rows', 'n/a')} used ({data.get('rows_dropped', 0)} dropped for missing"
    used += " values)"
    if is_imported(metadata):
        origin = metadata["origin"]
        return [
            f"- Fitted elsewhere and imported from `{origin.get('file', 'unknown')}` (sha256 "
            f"`{origin.get('sha256', 'unknown')}`): its training data is not known here",
            f"- Rows given at import: {file_line}; {used}, rows the model did not learn from: "
            "they score it, calibrate its interval and are its golden set",
        ]
    return [
        f"- File: {file_line}",
        f"- Rows: {used}; {data.get('rows_train', 'n/a')} to train, "
        f"{data.get('rows_test', 'n/a')} held out",
    ]


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _interval_lines(metadata: Mapping[str, Any], unit: str | None) -> list[str]:
    interval = metadata.get("interval")
    if not interval:
        return []
    coverage = interval.get("coverage")
    lines = [
        "",
        "## Prediction interval",
        "",
        f"- Method: {interval.get('method', 'split-conformal')}; every answer carries an "
        f"`interval` of the prediction ± {_number(interval.get('half_width'), 2)}{_unit(unit)} "
        f"meant to hold the true value for {_share(coverage)} of cases",
        f"- Half-width: the ceil((n + 1) × {coverage})-th smallest absolute residual of "
        f"n = {interval.get('calibration_rows', 'n/a')} calibration rows "
        f"({interval.get('calibration', 'held-out rows')})",
        f"- Held-out coverage: {_share(interval.get('held_out_coverage'))}, measured on the "
        + (
            "rows given at import, which the interval is calibrated on, so"
            if is_imported(metadata)
            else "held-out rows the interval is calibrated on (every training row still goes "
            "into the\n  fit), so"
        )
        + " optimistic by construction: expect somewhat less on new data.",
    ]
    if "golden_coverage" in interval:
        independent = interval.get("golden_independent")
        caveat = (
            "rows the interval was not calibrated on"
            if independent
            else "the same rows as the calibration, so no more independent"
        )
        lines.append(f"- Golden-set coverage: {_share(interval.get('golden_coverage'))} ({caveat})")
    lines.append(
        "- The band has one width everywhere: it assumes errors as large for every input "
        "and, like any conformal interval, rows like the training data."
    )
    return lines


def render_card(metadata: Mapping[str, Any]) -> str:
    """Return the model card for *metadata* as Markdown."""
    schema = schema_of(metadata)
    target = schema.target
    held_out = metadata.get("metrics", {}).get("held_out", {})
    code = metadata.get("code") or {}
    linear = linear_form_of(metadata)
    numbers = [f for f in schema.features if isinstance(f, NumberFeature)]
    lines = [
        f"# Model card: {schema.title or schema.name}, version {metadata['model_version']}",
        "",
        "## Model",
        "",
        f"- Name: `{schema.name}`; version `{metadata['model_version']}` (first 12 hex digits "
        f"of the sha256 of `{metadata.get('model_file', 'model.joblib')}`)",
        f"- Trained: {metadata.get('created_at', 'unknown')}",
        f"- Estimator: {metadata.get('estimator', 'unknown')}",
        "- Hyper-parameters: "
        + ", ".join(f"{k}={v}" for k, v in metadata.get("hyperparameters", {}).items()),
        f"- Predicts `{target.name}`{' in ' + target.unit_name if target.unit_name else ''} "
        f"from {', '.join(f'`{name}`' for name in schema.feature_names)}",
    ]
    if linear is not None:
        terms = [f"{c:.6f} × {name}" for name, c in linear.coefficients.items()]
        terms += [f"an offset per {name}" for name in linear.offsets]
        lines.append(
            f"- Served as {target.name} = {linear.intercept:.4f} + {' + '.join(terms)} "
            f"(folded from the estimator, max relative error {linear.max_relative_error:.1e})"
        )
    lines += _serving_lines(metadata) if linear is None else []
    if code.get("git_commit"):
        dirty = " (with uncommitted changes)" if code.get("git_dirty") else ""
        package = code.get("cookbook") or code.get("mlib")
        lines.append(f"- Code: git commit `{code['git_commit'][:12]}`{dirty}, cookbook {package}")
    lines += [
        "",
        "## Intended use",
        "",
        f"{schema.description or 'Predicts ' + target.name + '.'} For teaching and "
        "demonstrating an MLOps workflow",
        "(training, versioning, serving, monitoring); not for decisions about individual people.",
        "",
        "## Features",
        "",
        *_feature_lines(schema),
        "",
        "## Training data",
        "",
        *_data_lines(metadata),
        "",
        "## Metrics",
        "",
        f"| Rows | Count | R² | RMSE{_unit(f'({target.unit})' if target.unit else '')} "
        f"| MAE{_unit(f'({target.unit})' if target.unit else '')} |",
        "|---|---|---|---|---|",
        *_metrics_rows(metadata),
        *_baseline_lines(metadata),
        *_golden_lines(metadata),
        *_interval_lines(metadata, target.unit),
        "",
        "## Limitations",
        "",
        f"- R² on held-out rows is about {_number(held_out.get('r2'), 2)} and a typical error "
        f"is about {_number(held_out.get('mae'), 1)}{_unit(target.unit)}. Use it for "
        "averages, not for one case.",
    ]
    for feature in numbers:
        low, high = feature.training_range
        lines.append(
            f"- {feature.name} outside {low:g}-{high:g}{_unit(feature.unit)} was never seen in "
            "training: predictions there are extrapolations (the API adds a `warning`)."
        )
    lines += [
        "- The data is a snapshot of one population; check new inputs with `utilscli.py drift`",
        "  and labelled data with `utilscli.py evaluate` before trusting it on them.",
        "",
        "## Library versions",
        "",
        *(f"- {name}: {version}" for name, version in metadata.get("libraries", {}).items()),
        "",
    ]
    return "\n".join(lines)
