"""Score a classifier's probabilities against true labels: log loss, Brier, accuracy, AUC, ECE.

- ``log_loss``: mean of -log p(true class), the probability clipped at the float64 epsilon
  (as scikit-learn clips it). Lower is better.
- ``brier``: binary, the mean of (p(positive) - 1[positive])²; multiclass, the mean over rows
  of the summed squares over classes. Lower is better.
- ``accuracy``: the share of rows whose answered label (the threshold for a binary model)
  is the true one.
- ``roc_auc``: binary only, and only when both classes occur.
- ``ece``: expected calibration error of the answered class's probability, over
  ``ECE_BINS`` equal-width bins: the rows' weighted mean of |accuracy - confidence|.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cookbook.core.schema import BINARY, Target

ECE_BINS = 10


def predicted_indices(target: Target, probabilities: Any):
    """Return each row's answered class (its index) under the model's own threshold."""
    import numpy as np

    probabilities = np.asarray(probabilities, dtype=np.float64)
    if target.task == BINARY:
        positive = target.positive_index
        return np.where(probabilities[:, positive] >= target.threshold, positive, 1 - positive)
    return np.argmax(probabilities, axis=1)  # ties: the first class, as the API answers


def predicted_class_counts(target: Target, probabilities: Any) -> dict[str, int]:
    """Return how many rows the model answers with each class, under its own threshold."""
    import numpy as np

    answered = predicted_indices(target, probabilities)
    counts = np.bincount(answered, minlength=len(target.classes)).tolist()
    return dict(zip(target.classes, counts, strict=True))


def label_indices(target: Target, labels: Sequence[str]):
    """Return the index of each true label among *target*'s classes (-1 for an unknown one)."""
    import numpy as np

    position = {name: i for i, name in enumerate(target.classes)}
    return np.array([position.get(str(label), -1) for label in labels], dtype=np.int64)


def score_classes(target: Target, labels: Sequence[str], probabilities: Any) -> dict[str, Any]:
    """Return the classification metrics of *probabilities* (rows × classes) against *labels*."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rows = len(labels)
    if rows == 0:
        return {name: None for name in ("log_loss", "brier", "accuracy", "roc_auc", "ece")} | {
            "rows": 0
        }
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = label_indices(target, labels)
    if (truth < 0).any():
        unknown = sorted({str(label) for label, i in zip(labels, truth, strict=True) if i < 0})
        raise ValueError(f"labels {unknown[:5]} are not among the classes {list(target.classes)}")
    one_hot = np.eye(len(target.classes))[truth]
    answered = predicted_indices(target, probabilities)
    if target.task == BINARY:
        positive = target.positive_index
        brier = float(np.mean((probabilities[:, positive] - one_hot[:, positive]) ** 2))
        both = len(set(truth.tolist())) == 2
        auc = float(roc_auc_score(truth == positive, probabilities[:, positive])) if both else None
    else:
        brier = float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1)))
        auc = None
    return {
        "log_loss": log_loss(probabilities, truth),
        "brier": brier,
        "accuracy": float(np.mean(answered == truth)),
        "roc_auc": auc,
        "ece": expected_calibration_error(probabilities, answered, truth),
        "rows": int(rows),
    }


def log_loss(probabilities: Any, truth: Any) -> float:
    """Return the mean of -log p(true class), each probability at least the float64 epsilon.

    Computed here rather than by scikit-learn, which warns (an error in the tests) when a
    float32 runtime's probabilities sum to 1 only within 1e-7.
    """
    import numpy as np

    true_probability = probabilities[np.arange(len(truth)), truth]
    return float(-np.mean(np.log(np.clip(true_probability, np.finfo(np.float64).eps, 1.0))))


def expected_calibration_error(probabilities: Any, answered: Any, truth: Any) -> float:
    """Return the ECE of the answered class's probability over ``ECE_BINS`` equal bins."""
    import numpy as np

    confidence = probabilities[np.arange(len(answered)), answered]
    correct = (answered == truth).astype(np.float64)
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    total = 0.0
    for index in np.unique(bins).tolist():
        chosen = bins == index
        total += chosen.sum() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total / len(answered))


def reliability_bins(target: Target, labels: Sequence[str], probabilities: Any) -> list[dict]:
    """Return, per non-empty bin of answered-class confidence, its rows, mean confidence and
    accuracy: the reliability diagram's points."""
    import numpy as np

    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = label_indices(target, labels)
    answered = predicted_indices(target, probabilities)
    confidence = probabilities[np.arange(len(answered)), answered]
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    points = []
    for index in np.unique(bins).tolist():
        chosen = bins == index
        points.append({
            "low": index / ECE_BINS,
            "high": (index + 1) / ECE_BINS,
            "rows": int(chosen.sum()),
            "confidence": float(confidence[chosen].mean()),
            "accuracy": float((answered[chosen] == truth[chosen]).mean()),
        })  # fmt: skip
    return points


def confusion(target: Target, labels: Sequence[str], probabilities: Any) -> list[list[int]]:
    """Return the confusion matrix: rows are true classes, columns answered ones."""
    import numpy as np

    truth = label_indices(target, labels)
    answered = predicted_indices(target, probabilities)
    size = len(target.classes)
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (truth, answered), 1)
    return matrix.tolist()


def diagnostics_of(target: Target, labels: Sequence[str], probabilities: Any) -> dict[str, Any]:
    """Return what the model card draws from scored rows, kept in ``model.json`` because the
    rows are not: their count, the reliability diagram's bins and the confusion matrix."""
    return {
        "rows": len(labels),
        "reliability": reliability_bins(target, labels, probabilities),
        "confusion": confusion(target, labels, probabilities),
    }
