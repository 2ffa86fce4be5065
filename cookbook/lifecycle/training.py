"""Train a pipeline of any of ``ESTIMATORS`` on a CSV; write a verified model pair.

One estimator holds every step. Ridge (the cookbook's model): number features scaled,
category features one-hot encoded, the regression, and the target scaled
(``TransformedTargetRegressor``). Tree ensembles: numbers as they are (a tree does not need
scaling, and a scaled number in float32 falls on the other side of a split far more often
in the ONNX form), categories one-hot encoded. Rows are split before fitting, with an
explicit ``random_state``.
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError, ModelError
from cookbook.core.files import sha256_file
from cookbook.core.loading import is_imported, schema_of
from cookbook.core.schema import (
    CLASS_ANSWER,
    HEIGHT_ANSWER,
    REGRESSION,
    VALUE_ANSWER,
    Bounds,
    CategoryFeature,
    NumberFeature,
    Schema,
    Target,
)
from cookbook.core.settings import data_path, model_path
from cookbook.lifecycle.artifacts import save_model
from cookbook.lifecycle.class_scoring import diagnostics_of, label_indices, score_classes
from cookbook.lifecycle.classifying import (
    CLASSIFICATION,
    LOGISTIC,
    build_classifier,
    class_target,
    estimator_outputs,
)
from cookbook.lifecycle.column_info import DEFAULT_MODEL, column_info
from cookbook.lifecycle.conformal import (
    DEFAULT_COVERAGE,
    MAX_COVERAGE,
    MIN_COVERAGE,
    calibrate,
    calibrate_sets,
)
from cookbook.lifecycle.data import load_table
from cookbook.lifecycle.folding import fold_classifier, fold_linear
from cookbook.lifecycle.scoring import score

RANDOM_STATE = 3  # the cookbook's split, so held-out scores stay comparable
DEFAULT_TEST_SIZE = 0.1
METADATA_FORMAT = 2
HISTOGRAM_BINS = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# A feature's empirical CDF is stored exactly up to this many distinct values (MLB
# weights are whole pounds: about 100), else as this many quantiles.
ECDF_MAX_POINTS = 1000
MIN_ROWS = 10
# The estimator families ``retrain --estimator`` offers. The linear ones are the defaults:
# Ridge for a regression, a logistic regression for a classifier; the trees serve both.
RIDGE = "ridge"
TREE_FAMILIES = ("hist-gradient-boosting", "random-forest", "lightgbm")
REGRESSORS = (RIDGE, *TREE_FAMILIES)
CLASSIFIERS = (LOGISTIC, *TREE_FAMILIES)
ESTIMATORS = (*REGRESSORS, LOGISTIC)
TREES = 100  # boosting iterations or forest size


@dataclass(frozen=True)
class ModelSpec:
    """Which columns a model learns from and predicts, as ``retrain`` names them."""

    target: str = DEFAULT_MODEL["target"]
    features: tuple[str, ...] = DEFAULT_MODEL["features"]
    categorical: tuple[str, ...] = ()
    name: str | None = None
    estimator: str = RIDGE  # one of ESTIMATORS
    task: str = REGRESSION  # or CLASSIFICATION
    positive_class: str | None = None  # a binary classifier's, when not the second class

    @property
    def is_classification(self) -> bool:
        """Return whether the spec trains a classifier."""
        return self.task == CLASSIFICATION

    @property
    def all_features(self) -> tuple[str, ...]:
        """Return every feature: the number features, then the categorical ones."""
        return (*self.numeric, *self.categorical)

    @property
    def numeric(self) -> tuple[str, ...]:
        """Return the number features."""
        return tuple(f for f in self.features if f not in self.categorical)

    @property
    def columns(self) -> tuple[str, ...]:
        """Return every column the model reads from a labelled file: features, then target."""
        return (*self.all_features, self.target)

    @classmethod
    def of_schema(cls, schema: Schema) -> ModelSpec:
        """Return the spec a served model was trained with."""
        categorical = tuple(f.name for f in schema.categorical)
        target = schema.target
        if target.is_classification:
            return cls(target.name, schema.feature_names, categorical, schema.name, LOGISTIC,
                       CLASSIFICATION, target.positive_class)  # fmt: skip
        return cls(target.name, schema.feature_names, categorical, schema.name)

    @classmethod
    def of_metadata(cls, metadata: Mapping[str, Any]) -> ModelSpec:
        """Return the spec a served model was trained with: its columns and its family.

        Ridge models record no family (``hyperparameters``); the others record theirs.
        Raise ``ModelError`` for a model this project cannot retrain as it is: one fitted
        elsewhere and imported, or of a family it does not offer.
        """
        if is_imported(metadata):
            raise ModelError(
                f"Model {metadata.get('model_version', 'unknown')} was imported (fitted "
                "elsewhere): this project has no family to retrain it with; retrain "
                "--estimator trains one of its own to replace it."
            )
        spec = cls.of_schema(schema_of(metadata))
        family = (metadata.get("hyperparameters") or {}).get("estimator", spec.estimator)
        if family not in ESTIMATORS:
            raise ModelError(
                f"Model {metadata.get('model_version', 'unknown')} is a {family!r} model: "
                f"this project retrains only {', '.join(ESTIMATORS)}."
            )
        return replace(spec, estimator=family)


DEFAULT_SPEC = ModelSpec()  # the cookbook's model: Height from Weight


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


def build_estimator(
    spec: ModelSpec = ModelSpec(), alpha: float = 1.0, random_state: int = RANDOM_STATE
):
    """Return the unfitted estimator of *spec*'s family, every step in one pipeline.

    Ridge: feature scaling and encoding, Ridge, target scaling. The tree ensembles: numbers
    unscaled, categories one-hot encoded, the regressor on one thread (forked serving
    workers must not inherit native thread pools), seeded with *random_state*.
    """
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if spec.estimator not in ESTIMATORS:
        raise DataError(
            f"Unknown estimator {spec.estimator!r}: choose one of {', '.join(ESTIMATORS)}."
        )
    if spec.is_classification:
        if spec.estimator == RIDGE:
            raise DataError(
                f"{RIDGE} is a regressor: a classifier is a {LOGISTIC} (the default) or one of "
                f"{', '.join(TREE_FAMILIES)}."
            )
        return build_classifier(
            spec.estimator, spec.numeric, spec.categorical, random_state, TREES
        )  # fmt: skip
    if spec.estimator == LOGISTIC:
        raise DataError(f"{LOGISTIC} is a classifier: add --task {CLASSIFICATION}.")
    if spec.estimator != RIDGE:
        parts: list[tuple[str, Any, list[str]]] = []
        if spec.numeric:
            parts.append(("numbers", "passthrough", list(spec.numeric)))
        if spec.categorical:
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            parts.append(("categories", encoder, list(spec.categorical)))
        return make_pipeline(ColumnTransformer(parts), tree_regressor(spec.estimator, random_state))
    if not spec.categorical:
        # Number features only: the cookbook's own pipeline, unchanged, so its models stay
        # byte for byte what they were.
        regressor = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
    else:
        parts = [("categories", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical))]
        if spec.numeric:
            parts.insert(0, ("numbers", StandardScaler(), list(spec.numeric)))
        regressor = make_pipeline(ColumnTransformer(parts), Ridge(alpha=alpha))
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def tree_regressor(family: str, random_state: int) -> Any:
    """Return the unfitted tree ensemble of *family*, on one thread, seeded."""
    if family == "hist-gradient-boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=TREES, random_state=random_state)
    if family == "random-forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=TREES, n_jobs=1, random_state=random_state)
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=TREES, n_jobs=1, random_state=random_state, verbose=-1
    )  # fmt: skip


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
    spec: ModelSpec = ModelSpec(),
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
    spec: ModelSpec = ModelSpec(),
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
    spec: ModelSpec = ModelSpec(),
    *,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int = RANDOM_STATE,
    what: str = "Training data",
):
    """Return the rows ``train`` holds out of *data_file* with the same split parameters."""
    return split_rows(data_file, spec, test_size=test_size, random_state=random_state, what=what)[1]


# ------------------------------------------------------------------ the schema


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


def slug(text: str) -> str:
    """Return *text* as a lower-case name of letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def parse_columns(text: str | None) -> tuple[str, ...]:
    """Return the column names in a comma-separated option value."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def spec_for(
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    name: str | None = None,
    estimator: str | None = None,
    task: str = REGRESSION,
    positive_class: str | None = None,
) -> ModelSpec:
    """Return the spec ``retrain --features A,B --categorical C`` asks for (C is a feature too);
    without *estimator*, the task's linear default."""
    everything = tuple(dict.fromkeys((*features, *categorical)))
    if estimator is None:
        estimator = LOGISTIC if task == CLASSIFICATION else RIDGE
    return ModelSpec(target, everything, tuple(categorical), name, estimator, task, positive_class)
