"""Score the linear model beside a trained model, on that model's own split: its baselines.

The linear model is the task's default: the cookbook's Ridge for a regression, the logistic
regression for a classifier (scored with the classifier's metrics).

A tree ensemble's held-out R² says little on its own: beside the Ridge pipeline fitted on the
same training rows and scored on the same held-out rows, it says what the trees add. ``retrain``
records one for any model that is not that Ridge (on the model's own features), and one per
feature subset asked for (``retrain --baseline-features``), in ``model.json`` as
``metrics.baselines``: a mapping from a name such as ``ridge(Weight)`` to the features and the
held-out ``r2``, ``rmse``, ``mae`` and ``rows``. Only the scores are kept: a baseline is
neither saved, served nor gated. An imported model has no training split, so none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from cookbook.core.errors import DataError
from cookbook.core.schema import Target
from cookbook.lifecycle.class_scoring import score_classes
from cookbook.lifecycle.classifying import LOGISTIC, class_target
from cookbook.lifecycle.model_spec import RIDGE, ModelSpec, build_estimator
from cookbook.lifecycle.scoring import score


def linear_family(spec: ModelSpec) -> str:
    """Return the task's linear family: Ridge, or a classifier's logistic regression."""
    return LOGISTIC if spec.is_classification else RIDGE


def baseline_name(spec: ModelSpec) -> str:
    """Return the name a baseline is recorded under: ``ridge(Weight, Age, Position)``."""
    return f"{spec.estimator}({', '.join(spec.all_features)})"


def baseline_specs(spec: ModelSpec, feature_sets: Iterable[Sequence[str]] = ()) -> list[ModelSpec]:
    """Return the Ridge specs to score beside a model of *spec*, each feature set once.

    The Ridge of the model's own features comes first, unless the model is that Ridge; then
    one per set of *feature_sets*, each a subset of the model's features (so the baseline
    learns from the very rows the model did), in the model's order of features. Raise
    ``DataError`` for a set that names a column the model does not learn from.
    """
    linear = linear_family(spec)
    chosen = [] if spec.estimator == linear else [spec.all_features]
    for features in feature_sets:
        unknown = [name for name in features if name not in spec.all_features]
        if unknown:
            raise DataError(
                f"Baseline features {', '.join(unknown)} are not among the model's features "
                f"({', '.join(spec.all_features)}): a baseline is scored on the model's own rows."
            )
        subset = tuple(name for name in spec.all_features if name in features)
        itself = spec.estimator == linear and subset == spec.all_features
        if subset and not itself and subset not in chosen:
            chosen.append(subset)
    return [
        replace(spec, features=subset, name=None, estimator=linear,
                categorical=tuple(c for c in spec.categorical if c in subset))
        for subset in chosen
    ]  # fmt: skip


def score_baselines(
    baselines: Sequence[ModelSpec], training: Any, held_out: Any
) -> dict[str, dict[str, Any]]:
    """Fit each of *baselines* on the *training* rows and return its scores on the *held_out*
    rows (the model's own split: ``TrainingReport.training_rows`` and ``held_out``), keyed by
    ``baseline_name``."""
    scores = {}
    for baseline in baselines:
        columns, target = list(baseline.all_features), baseline.target
        fitted = build_estimator(baseline).fit(training[columns], training[target])
        if baseline.is_classification:
            classes = [str(c) for c in fitted.classes_]
            scored_target = class_target(Target(target), classes, baseline.positive_class)
            probabilities = fitted.predict_proba(held_out[columns])
            scores_of = score_classes(scored_target, held_out[target].astype(str).tolist(),
                                      probabilities)  # fmt: skip
        else:
            actual = held_out[target].to_numpy(dtype="float64")
            scores_of = score(actual, fitted.predict(held_out[columns]))
        scores[baseline_name(baseline)] = {"features": columns, **scores_of}
    return scores


def recorded_feature_sets(metadata: Mapping[str, Any] | None) -> list[tuple[str, ...]]:
    """Return the feature sets of the baselines *metadata* records (``ct`` keeps them)."""
    recorded = ((metadata or {}).get("metrics") or {}).get("baselines") or {}
    return [tuple(scores.get("features") or ()) for scores in recorded.values()]
