"""What training and serving do differently for a classifier: its estimators, classes, outputs.

``retrain --task classification`` trains a ``LogisticRegression`` pipeline by default (numbers
scaled, categories one-hot encoded; folded into logits and a link, served with the standard
library) or a tree ensemble of any family (served from ONNX once its probabilities pass the
parity check). The target is read as text, so its classes are labels (``"0"``, ``"yes"``)
in the estimator's own order (``classes_``, sorted). A binary model's positive class is the
second unless ``--positive-class`` names it, and its threshold is 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.schema import BINARY, DEFAULT_THRESHOLD, MULTICLASS, REGRESSION, Schema, Target

CLASSIFICATION = "classification"
LOGISTIC = "logistic-regression"  # the classifiers' linear family, and their default
# What ``retrain --task`` offers: a classifier's binary or multiclass task follows its data.
TASK_CHOICES = (REGRESSION, CLASSIFICATION)
LOGISTIC_MAX_ITER = 1000


def build_classifier(family: str, numeric: Sequence[str], categorical: Sequence[str],
                     random_state: int, trees: int) -> Any:  # fmt: skip
    """Return the unfitted classifier pipeline of *family* (``LOGISTIC`` or a tree family), on
    one thread, seeded with *random_state*."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    linear = family == LOGISTIC
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numbers", StandardScaler() if linear else "passthrough", list(numeric)))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categories", encoder, list(categorical)))
    if linear:
        final = LogisticRegression(max_iter=LOGISTIC_MAX_ITER)
    elif family == "hist-gradient-boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        final = HistGradientBoostingClassifier(max_iter=trees, random_state=random_state)
    elif family == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        final = RandomForestClassifier(n_estimators=trees, n_jobs=1, random_state=random_state)
    else:
        from lightgbm import LGBMClassifier

        final = LGBMClassifier(n_estimators=trees, n_jobs=1, random_state=random_state, verbose=-1)
    return make_pipeline(ColumnTransformer(parts), final)


def class_target(base: Target, classes: Sequence[Any], positive_class: str | None) -> Target:
    """Return *base* (the target's name and description) as a classifier's target."""
    from dataclasses import replace

    names = tuple(str(c) for c in classes)
    if len(names) < 2:
        raise DataError(f"Target {base.name} has one class ({names}): there is nothing to learn.")
    task = BINARY if len(names) == 2 else MULTICLASS
    if positive_class is not None and positive_class not in names:
        raise DataError(
            f"--positive-class {positive_class!r} is not a class of {base.name}: "
            f"its classes are {', '.join(names)}."
        )
    if task != BINARY and positive_class is not None:
        raise DataError(f"--positive-class applies to binary targets; {base.name} has {names}.")
    return replace(
        base,
        unit=None,
        unit_name=None,
        metric_buckets=(),
        training_range=None,
        task=task,
        classes=names,
        positive_class=(positive_class or names[1]) if task == BINARY else None,
        threshold=DEFAULT_THRESHOLD,
    )


def estimator_outputs(estimator: Any, frame: Any, schema: Schema):
    """Return what the service answers from: a regressor's predictions (float64, one per row)
    or a classifier's probabilities (float64, rows × classes in the schema's order)."""
    import numpy as np

    if not schema.target.is_classification:
        return np.asarray(estimator.predict(frame), dtype=np.float64).reshape(-1)
    probabilities = np.asarray(estimator.predict_proba(frame), dtype=np.float64)
    return probabilities[:, class_order(estimator, schema)]


def class_order(estimator: Any, schema: Schema) -> list[int]:
    """Return, for each of the schema's classes, its column in ``predict_proba``."""
    own = [str(c) for c in getattr(estimator, "classes_", ())]
    missing = [c for c in schema.target.classes if c not in own]
    if missing or len(own) != len(schema.target.classes):
        raise DataError(
            f"The estimator's classes {own} are not the target's {list(schema.target.classes)}."
        )
    return [own.index(c) for c in schema.target.classes]
