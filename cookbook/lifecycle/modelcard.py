"""Render a Markdown model card from a served model's verified ``model.json``, and write it.

The card links pictures written beside it as SVG (``card_pictures``), drawn from
``model.json`` alone: a classifier's reliability diagram and confusion matrix, and any
model's importance chart when it records its features' importance.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookbook.core.errors import MlibError
from cookbook.core.files import write_bytes_atomic
from cookbook.core.importance import by_importance, importance_of, importance_unit
from cookbook.core.linear import ClassifierForm
from cookbook.core.loading import is_imported, linear_form_of, schema_of, verified_metadata
from cookbook.core.schema import NumberFeature, Schema
from cookbook.lifecycle import class_card
from cookbook.lifecycle.card_parts import (
    coverage_lines,
    importance_lines,
    importance_rows_words,
    linear_terms,
    metrics_table,
    names,
    number,
    rows_words,
    share,
    unit,
)
from cookbook.lifecycle.card_pictures import (
    IMPORTANCE,
    draw_pictures,
    importance_svg,
    picture_paths,
)

CARD_FILE = "MODEL_CARD.md"  # beside the served model


class CardError(MlibError):
    """The card cannot be written: one line saying where and why."""


def card_path(served_model: Path) -> Path:
    """Return where the card of *served_model* lives: ``MODEL_CARD.md`` beside it."""
    return served_model.parent / CARD_FILE


def write_card(served_model: Path, target: Path | None = None) -> list[Path]:
    """Write the verified *served_model*'s card to *target* (default: beside it), and a
    classifier's pictures beside the card; return the files written, the card first.

    Pictures of an earlier card at *target* that this card does not draw are removed, so no
    stale picture sits beside it. Raise ``CardError`` when a file cannot be written
    (``ModelError`` for a model that does not verify).
    """
    target = target if target is not None else card_path(served_model)
    metadata = verified_metadata(served_model)
    paths = picture_paths(target)
    drawn = pictures_of(metadata)
    text = render_card(metadata, {name: path.name for name, path in paths.items()})
    for name, path in paths.items():
        if name in drawn:
            _write(path, drawn[name])
        else:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise CardError(f"Cannot remove the old picture {path}: {exc.strerror}") from None
    _write(target, text)
    return [target, *(paths[name] for name in drawn)]


def _write(path: Path, text: str) -> None:
    try:
        write_bytes_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise CardError(f"Cannot write {path}: {exc.strerror}") from None


def pictures_of(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Return the SVG text of each picture the card of *metadata* shows: a classifier's two
    when it kept its ``diagnostics``, and the importance chart of a model that records it."""
    schema = schema_of(metadata)
    target = schema.target
    stored = metadata.get("diagnostics")
    drawn = {}
    if target.is_classification and stored:
        drawn.update(draw_pictures(stored, target.classes, rows_words(metadata)))
    importance = importance_of(metadata, schema)
    if importance:
        drawn[IMPORTANCE] = importance_svg(
            by_importance(importance),
            importance_unit(schema, metadata),
            importance_rows_words(metadata),
        )
    return drawn


def _baseline_lines(metadata: Mapping[str, Any], family: str) -> list[str]:
    if is_imported(metadata):
        return ["", "- No baseline: the model was fitted elsewhere, so there is no training "
                f"split to fit the cookbook's {family} on"]  # fmt: skip
    if not (metadata.get("metrics") or {}).get("baselines"):
        return []
    return [
        "",
        f"- Baselines: the cookbook's {family} pipeline fitted on this model's training rows and "
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
            f"{parity.get('rows')} rows to {number(parity.get('max_abs_difference'), 7)} "
            f"(tolerance {number(parity.get('tolerance'), 5)})"
        ]
    reason = (metadata.get("serving") or {}).get("reason", "no ONNX form")
    return [f"- Served from its verified joblib file (unpickled): {reason}"]


def _feature_lines(schema: Schema) -> list[str]:
    lines = []
    for feature in schema.features:
        if isinstance(feature, NumberFeature):
            low, high = feature.training_range
            stats, quantiles = feature.stats, feature.stats.get("quantiles", {})
            after = unit(feature.unit)
            bounds = feature.bounds.describe(feature.unit)
            lines.append(
                f"- `{feature.name}` (number{', ' + feature.unit if feature.unit else ''}): "
                f"trained on {low:g}-{high:g}{after}, mean {stats.get('mean', 0):.1f}, "
                f"sd {stats.get('std', 0):.1f}; 5th-95th percentile "
                f"{quantiles.get('p05', low):g}-{quantiles.get('p95', high):g}{after}; "
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
        calibrated = "prediction set" if metadata.get("prediction_set") else "interval"
        return [
            f"- Fitted elsewhere and imported from `{origin.get('file', 'unknown')}` (sha256 "
            f"`{origin.get('sha256', 'unknown')}`): its training data is not known here",
            f"- Rows given at import: {file_line}; {used}, rows the model did not learn from: "
            f"they score it, calibrate its {calibrated} and are its golden set",
        ]
    return [
        f"- File: {file_line}",
        f"- Rows: {used}; {data.get('rows_train', 'n/a')} to train, "
        f"{data.get('rows_test', 'n/a')} held out",
    ]


def _interval_lines(metadata: Mapping[str, Any], target_unit: str | None) -> list[str]:
    interval = metadata.get("interval")
    if not interval:
        return []
    coverage = interval.get("coverage")
    lines = [
        "",
        "## Prediction interval",
        "",
        f"- Method: {interval.get('method', 'split-conformal')}; every answer carries an "
        f"`interval` of the prediction ± {number(interval.get('half_width'), 2)}"
        f"{unit(target_unit)} meant to hold the true value for {share(coverage)} of cases",
        f"- Half-width: the ceil((n + 1) × {coverage})-th smallest absolute residual of "
        f"n = {interval.get('calibration_rows', 'n/a')} calibration rows "
        f"({interval.get('calibration', 'held-out rows')})",
        *coverage_lines(metadata, interval, "interval"),
    ]
    lines.append(
        "- The band has one width everywhere: it assumes errors as large for every input "
        "and, like any conformal interval, rows like the training data."
    )
    return lines


# The pictures a card links when it is rendered alone (``card --output -``, tests): the
# names ``write_card`` gives them beside the default MODEL_CARD.md.
DEFAULT_PICTURES = {name: path.name for name, path in picture_paths(Path(CARD_FILE)).items()}


def _model_lines(metadata: Mapping[str, Any], schema: Schema) -> list[str]:
    """Return the model section: what it is, what it predicts and how it is served."""
    target = schema.target
    features = names(schema.feature_names)
    code = metadata.get("code") or {}
    linear = linear_form_of(metadata)
    lines = [
        f"- Name: `{schema.name}`; version `{metadata['model_version']}` (first 12 hex digits "
        f"of the sha256 of `{metadata.get('model_file', 'model.joblib')}`)",
        f"- Trained: {metadata.get('created_at', 'unknown')}",
        f"- Estimator: {metadata.get('estimator', 'unknown')}",
        "- Hyper-parameters: "
        + ", ".join(f"{k}={v}" for k, v in metadata.get("hyperparameters", {}).items()),
    ]
    if target.is_classification:
        lines += class_card.target_lines(target, features)
    else:
        in_unit = f" in {target.unit_name}" if target.unit_name else ""
        lines.append(f"- Predicts `{target.name}`{in_unit} from {features}")
    if isinstance(linear, ClassifierForm):
        lines += class_card.folded_lines(linear, target)
    elif linear is not None:
        lines.append(
            f"- Served as {target.name} = {linear_terms(linear)} "
            f"(folded from the estimator, max relative error {linear.max_relative_error:.1e})"
        )
    else:
        lines += _serving_lines(metadata)
    if code.get("git_commit"):
        dirty = " (with uncommitted changes)" if code.get("git_dirty") else ""
        package = code.get("cookbook") or code.get("mlib")
        lines.append(f"- Code: git commit `{code['git_commit'][:12]}`{dirty}, cookbook {package}")
    return lines


def _quality_lines(metadata: Mapping[str, Any], schema: Schema,
                   pictures: Mapping[str, str]) -> tuple[list[str], str]:  # fmt: skip
    """Return the task's metrics sections (the table, baselines, golden set and calibration;
    a classifier's pictures too) and its first limitation."""
    target = schema.target
    if target.is_classification:
        family = class_card.FAMILY
        sections = [
            *metrics_table(metadata, class_card.COLUMNS, family),
            *_baseline_lines(metadata, family),
            *class_card.metric_notes(target),
            *_golden_lines(metadata),
            *class_card.diagnostics_lines(metadata, target, pictures),
            *class_card.set_lines(metadata),
        ]
        return sections, class_card.limitation_line(metadata, target)
    after = unit(f"({target.unit})" if target.unit else "")
    columns = (("R²", "r2", 3), (f"RMSE{after}", "rmse", 2), (f"MAE{after}", "mae", 2))
    held_out = metadata.get("metrics", {}).get("held_out", {})
    sections = [
        *metrics_table(metadata, columns, "Ridge"),
        *_baseline_lines(metadata, "Ridge"),
        *_golden_lines(metadata),
        *_interval_lines(metadata, target.unit),
    ]
    limitation = (
        f"- R² on held-out rows is about {number(held_out.get('r2'), 2)} and a typical error "
        f"is about {number(held_out.get('mae'), 1)}{unit(target.unit)}. Use it for "
        "averages, not for one case."
    )
    return sections, limitation


def render_card(metadata: Mapping[str, Any], pictures: Mapping[str, str] | None = None) -> str:
    """Return the model card for *metadata* as Markdown. A classifier's card links its
    *pictures*: file names beside the card, by ``card_pictures.PICTURES`` (default:
    ``DEFAULT_PICTURES``)."""
    schema = schema_of(metadata)
    target = schema.target
    numbers = [f for f in schema.features if isinstance(f, NumberFeature)]
    pictures = {**DEFAULT_PICTURES, **(pictures or {})}
    quality, limitation = _quality_lines(metadata, schema, pictures)
    lines = [
        f"# Model card: {schema.title or schema.name}, version {metadata['model_version']}",
        "",
        "## Model",
        "",
        *_model_lines(metadata, schema),
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
        *importance_lines(metadata, schema, pictures[IMPORTANCE]),
        "",
        "## Training data",
        "",
        *_data_lines(metadata),
        "",
        "## Metrics",
        "",
        *quality,
        "",
        "## Limitations",
        "",
        limitation,
    ]
    for feature in numbers:
        low, high = feature.training_range
        lines.append(
            f"- {feature.name} outside {low:g}-{high:g}{unit(feature.unit)} was never seen in "
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
