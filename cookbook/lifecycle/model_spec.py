"""What to train: a model's columns and estimator family (``ModelSpec``), and the unfitted
estimator of each family (``build_estimator``).

Ridge (the cookbook's model): number features scaled, category features one-hot encoded, the
regression, and the target scaled (``TransformedTargetRegressor``). Tree ensembles: numbers
as they are (a tree does not need scaling, and a scaled number in float32 falls on the other
side of a split far more often in the ONNX form), categories one-hot encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cookbook.core.errors import DataError, ModelError
from cookbook.core.loading import is_imported, schema_of
from cookbook.core.schema import REGRESSION, Schema
from cookbook.lifecycle.classifying import CLASSIFICATION, LOGISTIC, build_classifier
from cookbook.lifecycle.column_info import DEFAULT_MODEL

RANDOM_STATE = 3  # the cookbook's split, so held-out scores stay comparable
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


def build_estimator(
    spec: ModelSpec = DEFAULT_SPEC, alpha: float = 1.0, random_state: int = RANDOM_STATE
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
