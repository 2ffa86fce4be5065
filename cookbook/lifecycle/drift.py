"""Check a file's inputs against the training data offline, feature by feature.

Number features: the Population Stability Index over the training histogram's bins
(the service's own binning, so online and offline PSIs agree) and the two-sample
Kolmogorov-Smirnov statistic against the stored ECDF. Category features: PSI over the
training categories' frequencies, with unseen categories in a bin of their own. A
classifier's answers too: the PSI of the classes it answers for the file's rows against
those it answered on its held-out rows at training (the answered columns of
``model.json``'s ``diagnostics.confusion``). The worst verdict among them is the file's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.files import sha256_file
from cookbook.core.importance import importance_of, importance_unit, rank_drift
from cookbook.core.loading import schema_of, verified_metadata
from cookbook.core.psi import (
    PSI_ALERT,
    PSI_WARN,
    bin_index,
    drift_verdict,
    expected_class_counts,
    psi_from_counts,
    worst_verdict,
)
from cookbook.core.schema import CategoryFeature, NumberFeature, Schema
from cookbook.lifecycle.class_scoring import predicted_class_counts
from cookbook.lifecycle.data import read_csv
from cookbook.lifecycle.vectorized import accepted_numbers

# Kolmogorov-Smirnov critical value coefficient for a two-sample test at the 5% level.
KS_COEFFICIENT_5PCT = 1.358
UNSEEN = "(unseen)"


def ks_statistic(values: Any, counts: Any, sample: Any) -> float:
    """Return the two-sample Kolmogorov-Smirnov D between a stored ECDF and a sample."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    cumulative /= cumulative[-1]
    sample = np.sort(np.asarray(sample, dtype=np.float64))
    # Both ECDFs are right-continuous steps: the largest gap sits on a jump of one of them.
    points = np.union1d(values, sample)
    reference = cumulative[np.searchsorted(values, points, side="right")]
    observed = np.searchsorted(sample, points, side="right") / len(sample)
    return float(np.max(np.abs(reference - observed)))


def number_drift(feature: NumberFeature, cells: Any) -> dict[str, Any]:
    """Return the PSI, KS and per-bin shares of one number column against its training data."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
    accepted = accepted_numbers(feature, numbers)
    values = numbers[accepted]
    if not len(values):
        raise DataError(f"No valid values of {feature.name} to compare.")
    edges, expected = feature.histogram["edges"], feature.histogram["counts"]
    actual = [0] * len(expected)
    for value in values.tolist():
        actual[bin_index(value, edges)] += 1
    psi = psi_from_counts(expected, actual)
    report: dict[str, Any] = {
        "feature": feature.name,
        "kind": feature.kind,
        "rows": int(len(values)),
        "rows_rejected": int(len(numbers) - len(values)),
        "psi": psi,
        "verdict": drift_verdict(psi),
        "ks": None,
        "ks_critical_5pct": None,
        "bins": [
            {
                "low": edges[i],
                "high": edges[i + 1],
                "expected_share": expected[i] / sum(expected),
                "actual_share": actual[i] / len(values),
            }
            for i in range(len(expected))
        ],
    }
    if feature.ecdf:
        reference_rows = sum(feature.ecdf["counts"])
        report["ks"] = ks_statistic(feature.ecdf["values"], feature.ecdf["counts"], values)
        report["ks_critical_5pct"] = KS_COEFFICIENT_5PCT * math.sqrt(
            (reference_rows + len(values)) / (reference_rows * len(values))
        )
    return report


def category_drift(feature: CategoryFeature, cells: Any) -> dict[str, Any]:
    """Return the PSI and per-category shares of one category column against training."""
    present = cells.dropna().astype(str)
    if not len(present):
        raise DataError(f"No values of {feature.name} to compare.")
    seen = present.value_counts()
    names = [*feature.categories, UNSEEN]
    expected = [feature.frequencies.get(c, 0) for c in feature.categories] + [0]
    unseen = int(len(present) - seen.reindex(feature.categories, fill_value=0).sum())
    actual = [int(seen.get(c, 0)) for c in feature.categories] + [unseen]
    psi = psi_from_counts(expected, actual)
    return {
        "feature": feature.name,
        "kind": feature.kind,
        "rows": int(len(present)),
        "rows_rejected": int(len(cells) - len(present)),
        "psi": psi,
        "verdict": drift_verdict(psi),
        "ks": None,
        "ks_critical_5pct": None,
        "bins": [
            {
                "category": name,
                "expected_share": want / sum(expected),
                "actual_share": got / len(present),
            }
            for name, want, got in zip(names, expected, actual, strict=True)
        ],
    }


def predicted_class_drift(served_model: Path, schema: Schema, cells: Any,
                          expected: list[float]) -> dict[str, Any]:  # fmt: skip
    """Return the PSI and per-class shares of the classes a classifier answers (at its own
    threshold) for the rows of *cells* (a frame of its features, as text) whose every
    feature it accepts, against the *expected* counts of its held-out rows."""
    import pandas as pd

    from cookbook.lifecycle.artifacts import load_predictor
    from cookbook.lifecycle.evaluation import valid_rows
    from cookbook.lifecycle.vectorized import predict_frame

    predictor = load_predictor(served_model)
    frame = pd.DataFrame({
        feature.name: pd.to_numeric(cells[feature.name], errors="coerce")
        if isinstance(feature, NumberFeature) else cells[feature.name]
        for feature in schema.features
    })  # fmt: skip
    rows = frame[valid_rows(predictor, frame)]
    if rows.empty:
        raise DataError("No row has every feature valid: no answered class to compare.")
    target = schema.target
    counts = predicted_class_counts(target, predict_frame(predictor, rows))
    actual = [counts[name] for name in target.classes]
    psi = psi_from_counts(expected, actual)
    return {
        "target": target.name,
        "rows": int(len(rows)),
        "rows_rejected": int(len(frame) - len(rows)),
        "psi": psi,
        "verdict": drift_verdict(psi),
        "bins": [
            {"class": name, "expected_share": want / sum(expected), "actual_share": got / len(rows)}
            for name, want, got in zip(target.classes, expected, actual, strict=True)
        ],
    }


def drift(
    served_model: Path, data_file: Path, columns: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return every feature's drift report for *data_file* (with its importance and rank),
    the worst verdict among them (a classifier's answered classes, ``predicted_classes``,
    count in the verdict too) and the features by concern.

    *columns* maps a feature to the file's column that holds it (default: its own name).
    The top-level ``psi``, ``ks`` and ``bins`` are the worst feature's.
    """
    metadata = verified_metadata(served_model)
    schema = schema_of(metadata)
    columns = columns or {}
    wanted = {feature.name: columns.get(feature.name, feature.name) for feature in schema.features}
    frame = read_csv(data_file, usecols=lambda name: name in wanted.values(), dtype=str)
    reports = []
    for feature in schema.features:
        column = wanted[feature.name]
        if column not in frame.columns:
            raise DataError(f"{data_file} has no {column} column.")
        if isinstance(feature, NumberFeature):
            reports.append(number_drift(feature, frame[column]))
        else:
            reports.append(category_drift(feature, frame[column]))
    worst = max(reports, key=lambda report: report["psi"])
    verdicts = [report["verdict"] for report in reports]
    concern = rank_drift(
        reports, importance_of(metadata, schema), importance_unit(schema, metadata)
    )
    predicted = None
    expected = expected_class_counts(metadata, schema.target.classes)
    if schema.target.is_classification and expected is not None:
        cells = frame.rename(columns={column: name for name, column in wanted.items()})
        predicted = predicted_class_drift(served_model, schema, cells, expected)
        verdicts.append(predicted["verdict"])
    report = {
        "model_version": metadata["model_version"],
        "data": {"file": str(data_file), "sha256": sha256_file(data_file)},
        "verdict": worst_verdict(verdicts),
        "worst_feature": worst["feature"],
        "psi": worst["psi"],
        "rows": worst["rows"],
        "rows_rejected": worst["rows_rejected"],
        "ks": worst["ks"],
        "ks_critical_5pct": worst["ks_critical_5pct"],
        "bins": worst["bins"],
        "thresholds": {"warn": PSI_WARN, "alert": PSI_ALERT},
        "features": reports,
        **concern,
    }
    if predicted is not None:
        report["predicted_classes"] = predicted
    return report
