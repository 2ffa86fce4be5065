"""Train a pipeline of any of ``model_spec.ESTIMATORS`` on a CSV; write a verified model pair.

Rows are split before fitting, with an explicit ``random_state``; the held-out rows score the
model and calibrate its interval or prediction sets.
"""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.files import sha256_file
from cookbook.core.schema import Schema
from cookbook.core.settings import data_path, model_path
from cookbook.lifecycle.artifacts import save_model
from cookbook.lifecycle.class_scoring import diagnostics_of, label_indices, score_classes
from cookbook.lifecycle.classifying import LOGISTIC, estimator_outputs
from cookbook.lifecycle.conformal import (
    DEFAULT_COVERAGE,
    MAX_COVERAGE,
    MIN_COVERAGE,
    calibrate,
    calibrate_sets,
)
from cookbook.lifecycle.data import load_table
from cookbook.lifecycle.describing import chart_bins, describe_schema
from cookbook.lifecycle.folding import fold_classifier, fold_linear
from cookbook.lifecycle.model_spec import (
    DEFAULT_SPEC,
    RANDOM_STATE,
    RIDGE,
    TREES,
    ModelSpec,
    build_estimator,
)
from cookbook.lifecycle.scoring import score

DEFAULT_TEST_SIZE = 0.1
METADATA_FORMAT = 2
MIN_ROWS = 10


@dataclass(frozen=True)
class TrainingReport:
    """What ``train`` did: held-out metrics, where the model went, and its metadata; for a
    model trained here, the split itself (frames of the spec's columns)."""

    metrics: dict[str, Any]
    model_file: Path
    metadata: dict[str, Any]
    training_rows: Any = None
    held_out: Any = None

    @property
    def version(self) -> str:
        """Return the new model's version."""
        return self.metadata["model_version"]


def load_labelled(data_file: Path | str, spec: ModelSpec, what: str = "Training data"):
    """Return ``(frame, rows_dropped)`` with *spec*'s columns checked and typed."""
    if spec.is_classification:  # labels are text, whatever they look like
        return load_table(
            data_file, numeric=spec.numeric, categorical=(*spec.categorical, spec.target),
            what=what,
        )  # fmt: skip
    return load_table(
        data_file,
        numeric=(*spec.numeric, spec.target),
        categorical=spec.categorical,
        what=what,
    )


def train(
    data_file: Path | str | None = None,
    model_file: Path | str | None = None,
    *,
    spec: ModelSpec = DEFAULT_SPEC,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int = RANDOM_STATE,
    alpha: float = 1.0,
    coverage: float = DEFAULT_COVERAGE,
) -> TrainingReport:
    """Split, fit, evaluate and save a model with its metadata; return a TrainingReport.

    The held-out rows also calibrate a split-conformal interval of *coverage*
    (``cookbook.lifecycle.conformal``): every training row still goes into the fit.

    Both files are written to temporary names and renamed into place, so a failed
    or interrupted run leaves the previous model untouched.
    """
    if not 0 < test_size < 1:
        raise DataError(f"Test size must be between 0 and 1 (exclusive), got {test_size!r}.")
    if not MIN_COVERAGE <= coverage <= MAX_COVERAGE:
        raise DataError(
            f"Coverage must be between {MIN_COVERAGE} and {MAX_COVERAGE}, got {coverage!r}."
        )
    if spec.target in spec.features:
        raise DataError(f"The target {spec.target} cannot also be a feature.")
    csv_path = Path(data_file) if data_file is not None else data_path()
    destination = Path(model_file) if model_file is not None else model_path()
    frame, rows_dropped = load_labelled(csv_path, spec)
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"Training data {csv_path} has only {len(frame)} usable rows; need {MIN_ROWS}."
        )
    if frame[spec.target].nunique() < 2:
        raise DataError(
            f"Training data {csv_path}: target column {spec.target} has no variance "
            f"(every row is {frame[spec.target].iloc[0]!r}): there is nothing to learn."
        )
    training_rows, held_out = split_frame(frame, test_size, random_state)
    features = list(spec.all_features)
    x_train, x_test = training_rows[features], held_out[features]
    y_train, y_test = training_rows[spec.target], held_out[spec.target]
    estimator = build_estimator(spec, alpha, random_state).fit(x_train, y_train)
    schema = describe_schema(spec, x_train, y_train, getattr(estimator, "classes_", None))
    if spec.is_classification:
        probabilities = estimator_outputs(estimator, x_test, schema)
        metrics = score_classes(schema.target, y_test.tolist(), probabilities)
        truth = label_indices(schema.target, y_test.tolist())
        calibration = {
            "prediction_set": calibrate_sets(probabilities, truth, coverage),
            "diagnostics": diagnostics_of(schema.target, y_test.tolist(), probabilities),
        }
    else:
        actual, predicted = y_test.to_numpy(dtype="float64"), estimator.predict(x_test)
        metrics = score(actual, predicted)
        calibration = {"interval": calibrate(actual, predicted, coverage)}
    metadata = fit_metadata(
        estimator,
        schema,
        frame,
        hyperparameters=hyperparameters(spec, alpha, test_size, random_state),
        data={
            "file": csv_path.name,
            "sha256": sha256_file(csv_path),
            "rows": int(len(frame)),
            "rows_dropped": int(rows_dropped),
            "rows_train": int(len(x_train)),
            "rows_test": int(len(x_test)),
        },
        metrics=metrics,
        **calibration,
    )
    metadata = save_model(
        estimator,
        metadata,
        destination,
        held_out=x_test,
        training_rows=x_train,
        target_std=None if spec.is_classification else float(y_train.std(ddof=1)),
    )
    return TrainingReport(metrics, destination, metadata, training_rows, held_out)


def fit_metadata(
    estimator: Any,
    schema: Schema,
    frame: Any,
    *,
    hyperparameters: dict[str, Any],
    data: dict[str, Any],
    metrics: dict[str, Any],
    interval: dict[str, Any] | None = None,
    prediction_set: dict[str, Any] | None = None,
    diagnostics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return the ``model.json`` of a fitted *estimator* of *schema* (``save_model`` adds its
    version): its folded form when it is linear, its calibration (a regression's
    *interval*, a classifier's *prediction_set*), a classifier's *diagnostics* of the rows
    it was scored on (``class_scoring.diagnostics``, the card's pictures), and the page
    chart's bins of *frame*."""
    if schema.target.is_classification:
        folded = fold_classifier(estimator, schema)
        calibration = {"prediction_set": prediction_set, "diagnostics": diagnostics}
    else:
        folded = fold_linear(estimator, schema)
        calibration = {"interval": interval}
    return {
        "format": METADATA_FORMAT,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "schema": schema.to_dict(),
        "estimator": estimator_summary(estimator),
        "hyperparameters": hyperparameters,
        **extra,
        "data": data,
        "libraries": library_versions(),
        "metrics": {"held_out": metrics},
        **calibration,
        "folded": None if folded is None else folded.to_dict(),
        "chart": chart_bins(schema, frame),
    }


def hyperparameters(
    spec: ModelSpec, alpha: float, test_size: float, random_state: int
) -> dict[str, Any]:
    """Return what ``model.json`` records of how the model was built."""
    if spec.estimator == RIDGE:  # the cookbook's model: its metadata stays what it was
        return {"alpha": alpha, "test_size": test_size, "random_state": random_state}
    if spec.estimator == LOGISTIC:
        return {"estimator": LOGISTIC, "task": spec.task, "test_size": test_size,
                "random_state": random_state}  # fmt: skip
    recorded = {"estimator": spec.estimator, "trees": TREES}
    if spec.is_classification:
        recorded["task"] = spec.task
    return {**recorded, "test_size": test_size, "random_state": random_state}


def split_rows(
    data_file: Path | str,
    spec: ModelSpec = DEFAULT_SPEC,
    *,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int = RANDOM_STATE,
    what: str = "Training data",
):
    """Return ``(training rows, held-out rows)`` of *data_file* as ``train`` splits them.

    Both are frames of *spec*'s columns, in ``train``'s order. *what* names the file in
    errors ("Training data", "Golden set source").
    """
    frame, _dropped = load_labelled(data_file, spec, what=what)
    return split_frame(frame, test_size, random_state)


def split_frame(frame: Any, test_size: float, random_state: int) -> tuple[Any, Any]:
    """Return ``(training rows, held-out rows)`` of a labelled frame: the one split of the
    rows that ``train`` fits and scores on, and that the gate and the golden set recreate."""
    from sklearn.model_selection import train_test_split

    training, held_out = train_test_split(frame, test_size=test_size, random_state=random_state)
    return training, held_out


def held_out_rows(
    data_file: Path | str,
    spec: ModelSpec = DEFAULT_SPEC,
    *,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int = RANDOM_STATE,
    what: str = "Training data",
):
    """Return the rows ``train`` holds out of *data_file* with the same split parameters."""
    return split_rows(data_file, spec, test_size=test_size, random_state=random_state, what=what)[1]


def estimator_summary(estimator: Any) -> str:
    """Return the estimator's shape: ``TransformedTargetRegressor(StandardScaler -> Ridge)``,
    or its class name alone for a bare estimator (as an import may bring)."""
    regressor = estimator.regressor_ if hasattr(estimator, "regressor_") else estimator
    steps = getattr(regressor, "steps", None)
    if steps:
        inner = " -> ".join(type(step).__name__ for _, step in steps)
    elif regressor is estimator:
        return type(estimator).__name__
    else:
        inner = type(regressor).__name__
    return f"{type(estimator).__name__}({inner})"


def library_versions() -> dict[str, str]:
    """Return the versions a pickled model depends on."""
    import joblib
    import numpy as np
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }
