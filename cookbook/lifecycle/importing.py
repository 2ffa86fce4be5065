"""Import a model fitted elsewhere: check it predicts labelled rows it did not learn from,
then write its verified pair the way training does.

The labelled rows score the model, calibrate its prediction interval (a classifier's
prediction set), and become its golden set: they must be rows the model did not learn from,
which only the person importing knows.

A classifier is recognised by itself (it has ``predict_proba`` and ``classes_``): its classes
are its ``classes_`` as text, in that order, a binary one's positive class the second unless
named, and it is scored and calibrated on its probabilities. Every label in the rows must be
one of its classes.

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
from cookbook.core.schema import REGRESSION, Target
from cookbook.lifecycle.artifacts import save_model
from cookbook.lifecycle.class_scoring import diagnostics_of, label_indices, score_classes
from cookbook.lifecycle.classifying import CLASSIFICATION, class_target
from cookbook.lifecycle.conformal import DEFAULT_COVERAGE, calibrate, calibrate_sets
from cookbook.lifecycle.data import read_csv, require_columns
from cookbook.lifecycle.describing import describe_schema
from cookbook.lifecycle.model_spec import ModelSpec, spec_for
from cookbook.lifecycle.scoring import score
from cookbook.lifecycle.training import MIN_ROWS, TrainingReport, fit_metadata, load_labelled

CALIBRATION_ROWS = "rows given at import"


@dataclass(frozen=True)
class FittedModel:
    """An imported estimator, the labelled rows it was checked on, and its predictions (a
    classifier's probabilities, rows × its ``classes_``)."""

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


def is_classifier(estimator: Any) -> bool:
    """Return whether a fitted *estimator* classifies: it has ``predict_proba`` and ``classes_``."""
    return callable(getattr(estimator, "predict_proba", None)) and (
        getattr(estimator, "classes_", None) is not None
    )


def import_task(estimator: Any, fitted_file: Path, task: str | None = None) -> str:
    """Return the task to import *estimator* as: *task* when given, else what it is by itself
    (``CLASSIFICATION`` or ``REGRESSION``); raise ``ModelError`` for a classification asked
    of an estimator that has no probabilities to give."""
    if task is None:
        return CLASSIFICATION if is_classifier(estimator) else REGRESSION
    if task == CLASSIFICATION and not is_classifier(estimator):
        raise ModelError(
            f"The estimator in {fitted_file} ({type(estimator).__name__}) is not a classifier: "
            "it has no predict_proba and classes_; import it without --task classification."
        )
    return task


def import_spec(
    estimator: Any,
    fitted_file: Path,
    data: Any,
    *,
    target: str,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    name: str | None = None,
    task: str = REGRESSION,
    positive_class: str | None = None,
) -> ModelSpec:
    """Return the spec of an imported model of *task*: *features*, else the estimator's own
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
    categorical = tuple(dict.fromkeys((*categorical, *text)))
    return spec_for(target, features, categorical, name, task=task, positive_class=positive_class)


def check_fitted(
    fitted_file: Path,
    data_file: Path,
    *,
    target: str,
    features: Sequence[str] = (),
    categorical: Sequence[str] = (),
    name: str | None = None,
    task: str | None = None,
    positive_class: str | None = None,
) -> FittedModel:
    """Load *fitted_file* and check it predicts *data_file*'s labelled rows; write nothing.

    The *task* is the estimator's own (``import_task``) unless given. Raise ``ModelError``
    for a file that is not a joblib estimator or an estimator that cannot predict the rows,
    ``DataError`` for data that lacks the target or a feature, or a classifier's rows with
    a label that is not one of its classes.
    """
    estimator = load_fitted(fitted_file)
    data = read_csv(data_file, what="Import data")
    require_columns(data, [target], f"Import data {data_file} (target)")
    spec = import_spec(estimator, fitted_file, data, target=target, features=features,
                       categorical=categorical, name=name,
                       task=import_task(estimator, fitted_file, task),
                       positive_class=positive_class)  # fmt: skip
    if spec.target in spec.features:
        raise DataError(f"The target {spec.target} cannot also be a feature.")
    if positive_class is not None and not spec.is_classification:
        raise DataError("--positive-class applies to a classifier; this import is a regression.")
    require_columns(data, spec.all_features, f"Import data {data_file}")
    frame, dropped = load_labelled(data_file, spec, what="Import data")
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"Import data {data_file} has only {len(frame)} usable rows; need {MIN_ROWS}."
        )
    if spec.is_classification:
        predicted = class_probabilities(estimator, spec, frame, fitted_file, data_file)
    else:
        predicted = predicted_values(estimator, spec, frame, fitted_file, data_file)
    return FittedModel(estimator, spec, frame, dropped, predicted, fitted_file, data_file)


def predicted_values(estimator: Any, spec: ModelSpec, frame: Any, fitted_file: Path,
                     data_file: Path):  # fmt: skip
    """Return a regressor's predictions of *frame*'s rows: one finite float each, or raise
    ``ModelError``."""
    import numpy as np

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
    return predicted


def class_probabilities(estimator: Any, spec: ModelSpec, frame: Any, fitted_file: Path,
                        data_file: Path):  # fmt: skip
    """Return a classifier's probabilities of *frame*'s rows (rows × its ``classes_``), after
    checking every label is one of its classes; raise ``DataError`` for a label it does not
    know, a positive class it does not have, ``ModelError`` for probabilities it cannot give.
    """
    import numpy as np

    classes = [str(c) for c in estimator.classes_]
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ModelError(f"The classifier in {fitted_file} has classes {classes}: two or more "
                         "distinct ones are needed.")  # fmt: skip
    class_target(Target(spec.target), classes, spec.positive_class)  # refuses a wrong class
    unknown = sorted(set(frame[spec.target]) - set(classes))
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataError(
            f"Import data {data_file}: {spec.target} holds labels the classifier in "
            f"{fitted_file} does not know ({shown}{more}); its classes are {', '.join(classes)}."
        )
    try:
        probabilities = np.asarray(
            estimator.predict_proba(frame[list(spec.all_features)]), dtype=np.float64
        )
    except Exception as exc:  # the estimator's own refusal, whatever its type: one line
        raise ModelError(
            f"The classifier in {fitted_file} cannot give probabilities for the rows of "
            f"{data_file} ({first_line_of(exc)})."
        ) from None
    if probabilities.shape != (len(frame), len(classes)) or not np.all(np.isfinite(probabilities)):
        raise ModelError(
            f"The classifier in {fitted_file} does not give one finite probability per class "
            f"and row of {data_file} (it gave an array of shape {probabilities.shape})."
        )
    return probabilities


def save_imported(
    fitted: FittedModel, model_file: Path, *, coverage: float = DEFAULT_COVERAGE
) -> TrainingReport:
    """Write *fitted*'s verified pair to *model_file* through ``save_model``; return the report.

    The schema is described from the labelled rows; they also give the metrics and
    calibrate the interval (a classifier's prediction set, and its card's diagnostics). A
    linear model is folded, and ``save_model`` checks the folded form against the estimator
    on those rows; any other is converted to ONNX and checked on them.
    """
    spec, frame = fitted.spec, fitted.frame
    features, actual = frame[list(spec.all_features)], frame[spec.target]
    schema = describe_schema(spec, features, actual, getattr(fitted.estimator, "classes_", None))
    if spec.is_classification:
        labels = actual.tolist()
        metrics = score_classes(schema.target, labels, fitted.predicted)
        truth = label_indices(schema.target, labels)
        calibration = {
            "prediction_set": {**calibrate_sets(fitted.predicted, truth, coverage),
                               "calibration": CALIBRATION_ROWS},
            "diagnostics": diagnostics_of(schema.target, labels, fitted.predicted),
        }  # fmt: skip
        target_std = None
    else:
        metrics = score(actual.to_numpy(dtype="float64"), fitted.predicted)
        interval = calibrate(actual.to_numpy(dtype="float64"), fitted.predicted, coverage)
        calibration = {"interval": {**interval, "calibration": CALIBRATION_ROWS}}
        target_std = float(actual.std(ddof=1))
    metadata = fit_metadata(
        fitted.estimator,
        schema,
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
        **calibration,
        origin={
            "kind": IMPORTED,
            "file": fitted.fitted_file.name,
            "sha256": sha256_file(fitted.fitted_file),
        },
    )
    # The labelled rows check the folded form or the ONNX form against the estimator.
    metadata = save_model(fitted.estimator, metadata, model_file, held_out=features,
                          target_std=target_std)  # fmt: skip
    return TrainingReport(metrics, Path(model_file), metadata)
