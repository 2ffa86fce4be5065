"""Describe a model's columns from its training rows: the schema ``model.json`` carries
(statistics, histograms, the empirical CDF, examples, metric buckets) and the page chart's bins.
"""

from __future__ import annotations

import re
from typing import Any

from cookbook.core.schema import (
    CLASS_ANSWER,
    HEIGHT_ANSWER,
    VALUE_ANSWER,
    Bounds,
    CategoryFeature,
    NumberFeature,
    Schema,
    Target,
)
from cookbook.lifecycle.classifying import class_target
from cookbook.lifecycle.column_info import DEFAULT_MODEL, column_info
from cookbook.lifecycle.model_spec import ModelSpec

HISTOGRAM_BINS = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# A feature's empirical CDF is stored exactly up to this many distinct values (MLB
# weights are whole pounds: about 100), else as this many quantiles.
ECDF_MAX_POINTS = 1000


def describe_schema(spec: ModelSpec, features: Any, target: Any, classes: Any = None) -> Schema:
    """Return the schema of a model trained on *features* and *target* (the training rows);
    a classifier's *classes* are its estimator's ``classes_``."""
    described = [describe_number(name, features[name]) for name in spec.numeric]
    described += [describe_category(name, features[name]) for name in spec.categorical]
    target_info = column_info(spec.target)
    is_default = spec.all_features == DEFAULT_MODEL["features"] and (
        spec.target == DEFAULT_MODEL["target"]
    )
    title = (
        DEFAULT_MODEL["title"] if is_default else f"{spec.target} from {', '.join(spec.features)}"
    )
    name = spec.name or (
        DEFAULT_MODEL["name"]
        if is_default
        else slug(f"{spec.target}-from-{'-'.join(spec.features)}")
    )
    if spec.is_classification:
        described_target = class_target(
            Target(name=spec.target, description=target_info.get("description", "")),
            classes,
            spec.positive_class,
        )
        answer_format = CLASS_ANSWER
    else:
        described_target = Target(
            name=spec.target,
            unit=target_info.get("unit"),
            unit_name=target_info.get("unit_name"),
            description=target_info.get("description", ""),
            metric_buckets=tuple(target_info.get("metric_buckets") or quantile_buckets(target)),
            training_range=(float(target.min()), float(target.max())),
        )
        answer_format = (
            HEIGHT_ANSWER if target_info.get("answer") == HEIGHT_ANSWER else VALUE_ANSWER
        )
    return Schema(
        name=name,
        features=tuple(described),
        target=described_target,
        answer_format=answer_format,
        title=title,
        description=DEFAULT_MODEL["description"] if is_default else f"Predicts {title}.",
    )


def describe_number(name: str, values: Any) -> NumberFeature:
    """Return a number feature's schema from its training values."""
    import numpy as np

    array = values.to_numpy(dtype=np.float64)
    info = column_info(name)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS)
    median = nice(float(np.median(array)))
    return NumberFeature(
        name=name,
        training_range=(float(array.min()), float(array.max())),
        histogram={"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
        stats={
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)),
            "min": float(array.min()),
            "max": float(array.max()),
            "quantiles": {
                f"p{round(q * 100):02d}": float(np.quantile(array, q)) for q in QUANTILES
            },
        },
        ecdf=ecdf(array),
        bounds=Bounds.from_dict(info.get("bounds", {})),
        unit=info.get("unit"),
        unit_name=info.get("unit_name"),
        description=info.get("description", ""),
        example=float(info.get("example", median)),
        batch_example=tuple(
            info.get("batch_example", (nice(float(np.quantile(array, 0.25))), median))
        ),
        metric_buckets=tuple(info.get("metric_buckets") or quantile_buckets(values)),
    )


def describe_category(name: str, values: Any) -> CategoryFeature:
    """Return a category feature's schema from its training values."""
    counts = values.astype(str).value_counts()
    categories = tuple(sorted(counts.index.tolist()))
    info = column_info(name)
    frequent = counts.index.tolist()
    return CategoryFeature(
        name=name,
        categories=categories,
        frequencies={category: int(counts[category]) for category in categories},
        description=info.get("description", ""),
        example=str(info.get("example", frequent[0])),
        batch_example=tuple(info.get("batch_example", frequent[:2])),
    )


def ecdf(values: Any) -> dict[str, Any]:
    """Return the empirical CDF the offline drift check's Kolmogorov-Smirnov test compares to."""
    import numpy as np

    unique, counts = np.unique(values, return_counts=True)
    if len(unique) <= ECDF_MAX_POINTS:
        return {"values": unique.tolist(), "counts": counts.astype(int).tolist(), "exact": True}
    quantiles = np.quantile(values, np.linspace(0, 1, ECDF_MAX_POINTS + 1))
    share = len(values) / len(quantiles)
    return {"values": quantiles.tolist(), "counts": [share] * len(quantiles), "exact": False}


def quantile_buckets(values: Any) -> list[float]:
    """Return Prometheus bucket bounds at a column's quantiles, three significant digits."""
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    points = np.quantile(array, (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99))
    return sorted({nice(float(p)) for p in points})


def nice(value: float) -> float:
    """Return *value* to three significant digits (examples and buckets people read)."""
    return float(f"{value:.3g}")


def chart_bins(schema: Schema, frame: Any) -> dict[str, Any] | None:
    """Return the page chart's binned target means, for a model of one number feature."""
    feature = schema.single_number
    if feature is None or schema.target.is_classification:
        return None
    info, target_info = column_info(feature.name), column_info(schema.target.name)
    low, high = feature.training_range
    width = float(info.get("chart_bin_width") or nice((high - low) / 14 or 1.0))
    bins = (frame[feature.name] // width) * width
    grouped = frame.groupby(bins)[schema.target.name].agg(["mean", "count"])
    return {
        "feature": feature.name,
        "bin_width": width,
        "x_step": float(info.get("chart_step") or nice((high - low) / 5 or 1.0)),
        "y_step": target_info.get("chart_step"),
        "bins": [
            {"x": float(start + width / 2), "mean": round(float(row["mean"]), 3),
             "count": int(row["count"])}
            for start, row in grouped.iterrows()
        ],
    }  # fmt: skip


def slug(text: str) -> str:
    """Return *text* as a lower-case name of letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"
