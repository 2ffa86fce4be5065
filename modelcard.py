"""Render a Markdown model card from a served model's verified ``model.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlib


def _number(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metrics_rows(metrics: Mapping[str, Any]) -> list[str]:
    names = {"held_out": "Held-out rows of the training data", "golden": "Golden evaluation set"}
    rows = []
    for key, label in names.items():
        scores = metrics.get(key)
        if not scores:
            continue
        rows.append(
            f"| {label} | {scores.get('rows', 'n/a')} | {_number(scores.get('r2'), 3)} "
            f"| {_number(scores.get('rmse'), 2)} | {_number(scores.get('mae'), 2)} |"
        )
    return rows


def render_card(metadata: Mapping[str, Any]) -> str:
    """Return the model card for *metadata* as Markdown."""
    data = metadata.get("data", {})
    stats = metadata["weight_stats"]
    low, high = metadata["training_range_lbs"]
    quantiles = stats.get("quantiles", {})
    held_out = metadata.get("metrics", {}).get("held_out", {})
    code = metadata.get("code") or {}
    folded = metadata.get("folded")
    lines = [
        f"# Model card: MLB height from weight, version {metadata['model_version']}",
        "",
        "## Model",
        "",
        f"- Version: `{metadata['model_version']}` (first 12 hex digits of the sha256 of "
        f"`{metadata.get('model_file', 'model.joblib')}`)",
        f"- Trained: {metadata.get('created_at', 'unknown')}",
        f"- Estimator: {metadata.get('estimator', 'unknown')}",
        "- Hyper-parameters: "
        + ", ".join(f"{k}={v}" for k, v in metadata.get("hyperparameters", {}).items()),
        f"- Input: `{metadata.get('feature', mlib.FEATURE)}` in pounds; "
        f"output: `{metadata.get('target', mlib.TARGET)}` in inches",
    ]
    if folded:
        lines.append(
            f"- Served as the line height = {folded['slope']:.6f} × weight + "
            f"{folded['intercept']:.4f} (folded from the estimator, max relative error "
            f"{folded['max_relative_error']:.1e})"
        )
    if code.get("git_commit"):
        dirty = " (with uncommitted changes)" if code.get("git_dirty") else ""
        lines.append(f"- Code: git commit `{code['git_commit'][:12]}`{dirty}, mlib {code['mlib']}")
    lines += [
        "",
        "## Intended use",
        "",
        "Estimate the typical height of a Major League Baseball player from his weight, for",
        "teaching and demonstrating an MLOps workflow (training, versioning, serving, monitoring).",
        "It is not meant for decisions about individual people.",
        "",
        "## Training data",
        "",
        f"- File: `{data.get('file', 'unknown')}`, sha256 `{data.get('sha256', 'unknown')}`",
        f"- Rows: {data.get('rows', 'n/a')} used ({data.get('rows_dropped', 0)} dropped for "
        f"missing values); {data.get('rows_train', 'n/a')} to train, "
        f"{data.get('rows_test', 'n/a')} held out",
        f"- Training weights: {low:g}-{high:g} lb, mean {stats['mean']:.1f}, "
        f"sd {stats['std']:.1f}; 5th-95th percentile "
        f"{quantiles.get('p05', low):g}-{quantiles.get('p95', high):g} lb",
        "",
        "## Metrics",
        "",
        "| Rows | Count | R² | RMSE (in) | MAE (in) |",
        "|---|---|---|---|---|",
        *_metrics_rows(metadata.get("metrics", {})),
        "",
        "## Limitations",
        "",
        f"- Weight explains little of height: R² is about {_number(held_out.get('r2'), 2)} and "
        f"a typical error is about {_number(held_out.get('mae'), 1)} inches. Use it for "
        "averages, not for one player.",
        f"- Weights outside {low:g}-{high:g} lb were never seen in training: predictions "
        "there are extrapolations (the API adds a `warning`), and a straight line need not "
        "hold. Weights above "
        f"{mlib.MAX_WEIGHT_LBS:g} lb are refused.",
        "- Trained on MLB players only (adult men, professional athletes): it does not describe",
        "  other populations.",
        "- The data is a snapshot; check new inputs with `utilscli.py drift` and labelled data",
        "  with `utilscli.py evaluate` before trusting it on them.",
        "",
        "## Library versions",
        "",
        *(f"- {name}: {version}" for name, version in metadata.get("libraries", {}).items()),
        "",
    ]
    return "\n".join(lines)
