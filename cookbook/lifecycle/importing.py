"""Import a model fitted elsewhere: check it predicts labelled rows it did not learn from,
then write its verified pair the way training does.

The labelled rows score the model, calibrate its prediction interval, and become its golden
set: they must be rows the model did not learn from, which only the person importing knows.

A joblib file is a pickle: loading one runs whatever code it holds. Import only files you
made or trust; this module loads the one path it is given, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError, ModelError, first_line_of
from cookbook.core.files import sha256_file
from cookbook.core.loading import IMPORTED
from cookbook.lifecycle.artifacts import save_model
from cookbook.lifecycle.conformal import DEFAULT_COVERAGE, calibrate
from cookbook.lifecycle.data import load_table, read_csv, require_columns
from cookbook.lifecycle.scoring import score
from cookbook.lifecycle.training import (
    MIN_ROWS,
    ModelSpec,
    TrainingReport,
    describe_schema,
    fit_metadata,
    spec_for,
)

INTERVAL_CALIBRATION = "rows given at import"


@dataclass(frozen=True)
class FittedModel:
    """An imported estimator, the labelled rows it was checked on, and its predictions."""

    estimator: Any
    spec: ModelSpec
    frame: Any
    rows_dropped: int
    predicted: Any
    fitted_file: Path
    data_file: Path


def load_fitted(fitted_file: Path) -> Any:
    """Return the estimator a joblib file holds (running the pickle's code), or raise."""
    import joblib

    try:
        estimator = joblib.load(fitted_file)
    except Exception as exc:  # anything a pickle may raise: one line naming the file
        raise ModelError(
            f"{fitted_file} is not a joblib file of a fitted estimator ({first_line_of(exc)})."
        ) from None
    if not callable(getattr(estimator, "predict", None)):
        raise ModelError(
            f"{fitted_file} holds a {type(estimator).__name__}, not an estimator that predicts."
        )
    return estimator


def import_spec(
    estimator: Any,
    fitted_file: Path,
    data: Any,
    *,
    target: str,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    name: str | None = None,
) -> ModelSpec:
    """Return the spec of an imported model: *features*, else the estimator's own
    ``feature_names_in_``; a feature whose column in *data* is text is categorical."""
    known = getattr(estimator, "feature_names_in_", None)
    if not features:
        if known is None:
            raise ModelError(
                f"The estimator in {fitted_file} does not record its feature names "
                "(feature_names_in_): give --features."
            )
        features = tuple(str(feature) for feature in known)
    elif known is not None and set(map(str, known)) != set(features):
        raise ModelError(
            f"The estimator in {fitted_file} was fitted on {', '.join(map(str, known))}, "
            f"not on {', '.join(features)}."
        )
    text = [f for f in features if f in data.columns and data[f].dtype.kind not in "iufb"]
    return spec_for(target, features, tuple(dict.fromkeys((*categorical, *text))), name)


def check_fitted(
    fitted_file: Path,
    data_file: Path,
    *,
    target: str,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    name: str | None = None,
) -> FittedModel:
    """Load *fitted_file* and check it predicts *data_file*'s labelled rows; write nothing.

    Raise ``ModelError`` for a file that is not a joblib estimator or an estimator that
    cannot predict the rows, ``DataError`` for data that lacks the target or a feature.
    """
    import numpy as np

    estimator = load_fitted(fitted_file)
    data = read_csv(data_file, what="Import data")
    require_columns(data, [target], f"Import data {data_file} (target)")
    spec = import_spec(estimator, fitted_file, data, target=target, features=features,
                       categorical=categorical, name=name)  # fmt: skip
    if spec.target in spec.features:
        raise DataError(f"The target {spec.target} cannot also be a feature.")
    require_columns(data, spec.all_features, f"Import data {data_file}")
    frame, dropped = load_table(data_file, numeric=(*spec.numeric, spec.target),
                                categorical=spec.categorical, what="Import data")  # fmt: skip
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"Import data {data_file} has only {len(frame)} usable rows; need {MIN_ROWS}."
        )
    try:
        predicted = np.asarray(estimator.predict(frame[list(spec.all_features)]), dtype=np.float64)
    except Exception as exc:  # the estimator's own refusal, whatever its type: one line
        raise ModelError(
            f"The estimator in {fitted_file} cannot predict the rows of {data_file} "
            f"({first_line_of(exc)})."
        ) from None
    if predicted.shape != (len(frame),) or not np.all(np.isfinite(predicted)):
        raise ModelError(
            f"The estimator in {fitted_file} does not give one finite number per row of "
            f"{data_file} (it gave an array of shape {predicted.shape})."
        )
    return FittedModel(estimator, spec, frame, dropped, predicted, fitted_file, data_file)


def save_imported(
    fitted: FittedModel, model_file: Path, *, coverage: float = DEFAULT_COVERAGE
) -> TrainingReport:
    """Write *fitted*'s verified pair to *model_file* through ``save_model``; return the report.

    The schema is described from the labelled rows; they also give the metrics and
    calibrate the interval. A linear model is folded, and ``save_model`` checks the folded
    form against the estimator on those rows.
    """
    spec, frame = fitted.spec, fitted.frame
    features, actual = frame[list(spec.all_features)], frame[spec.target]
    metrics = score(actual.to_numpy(dtype="float64"), fitted.predicted)
    interval = calibrate(actual.to_numpy(dtype="float64"), fitted.predicted, coverage)
    metadata = fit_metadata(
        fitted.estimator,
        describe_schema(spec, features, actual),
        frame,
        hyperparameters={},
        data={
            "file": fitted.data_file.name,
            "sha256": sha256_file(fitted.data_file),
            "rows": int(len(frame)),
            "rows_dropped": int(fitted.rows_dropped),
            "rows_train": None,  # fitted elsewhere, on rows this project never saw
            "rows_test": int(len(frame)),
        },
        metrics=metrics,
        interval={**interval, "calibration": INTERVAL_CALIBRATION},
        origin={
            "kind": IMPORTED,
            "file": fitted.fitted_file.name,
            "sha256": sha256_file(fitted.fitted_file),
        },
    )
    # The labelled rows check the folded form or the ONNX form against the estimator.
    metadata = save_model(fitted.estimator, metadata, model_file, held_out=features,
                          target_std=float(actual.std(ddof=1)))  # fmt: skip
    return TrainingReport(metrics, Path(model_file), metadata)
