"""A classifier's served quality from running sums: what one labelled row adds, and the figures.

Feedback scores a classifier's captured row (its answered label and probabilities) once,
against the facts of the model that answered it (``ClassModel``: its classes, positive
class, threshold and prediction set, kept in the store by model version). The score is
added to its minute's quality sums (``capture_tallies.QualitySums``) and to its hour's
bins; ``/quality`` divides the sums:

- ``log_loss``, ``brier``, ``accuracy`` and ``set_coverage``: sums over the labelled rows,
  the figures ``class_scoring.score_classes`` and ``conformal.set_coverage`` give on the
  same rows. Accuracy counts the label that was answered (a request's own threshold too).
- ``ece``: per bin of the answered class's probability (``class_scoring.ECE_BINS`` equal
  bins, as ``score_classes`` bins it), the rows, the correct ones and the summed
  probabilities: the sum over bins of |correct - probabilities|, over the rows, is exactly
  ``score_classes``' ECE.
- ``roc_auc`` (binary): per bin of the positive class's probability (``AUC_BINS`` equal
  bins), the positive and negative rows. A positive and a negative row in different bins
  are ordered as their probabilities are; two in the same bin count as a tie (a half).
  So the binned AUC is within ``roc_auc_max_error`` of the exact one: half the share of
  positive-negative pairs that share a bin (reported beside it).

The bins are kept per hour (``capture_class_bins``), as the shadow's difference bins are:
ECE and AUC cover the window's hours, the first one whole.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cookbook.core.classes import label_index
from cookbook.core.prediction import Predictor
from cookbook.core.schema import BINARY, Target
from cookbook.lifecycle.class_scoring import ECE_BINS

AUC_BINS = 100
# The kinds of bin kept in ``capture_class_bins``.
AUC, ECE = "auc", "ece"
BIN_COLUMNS = ("count", "hits", "confidence")
# Log loss clips a probability at the float64 epsilon, as ``class_scoring.log_loss`` does.
EPSILON = sys.float_info.epsilon


@dataclass(frozen=True)
class ClassModel:
    """What scoring a classifier's captured rows needs of the model that answered them."""

    target: Target
    set_quantile: float | None = None  # None: the model answers without a prediction set

    @classmethod
    def of(cls, predictor: Predictor) -> ClassModel:
        """Return the facts of a classifier *predictor*."""
        prediction_set = predictor.prediction_set
        return cls(predictor.schema.target,
                   None if prediction_set is None else prediction_set.quantile)  # fmt: skip

    def to_json(self) -> str:
        """Return the facts as the store keeps them (``capture_models.facts``)."""
        return json.dumps({"target": self.target.to_dict(), "set_quantile": self.set_quantile})

    @classmethod
    def from_json(cls, text: str) -> ClassModel:
        """Return the facts the store kept as *text*."""
        document = json.loads(text)
        quantile = document.get("set_quantile")
        return cls(Target.from_dict(document["target"]),
                   None if quantile is None else float(quantile))  # fmt: skip


@dataclass(frozen=True)
class RowScore:
    """How one answered row of a classifier scores against its true label."""

    log_loss: float
    brier: float
    correct: bool
    in_set: bool | None  # None: the model has no prediction set
    confidence: float  # the answered class's probability
    positive: float | None  # a binary model's probability of its positive class
    is_positive: bool  # the true label is the positive class


def score_row(model: ClassModel, probabilities: Sequence[float], label: str | None,
              actual: str) -> RowScore | None:  # fmt: skip
    """Return the score of a row answered *label* with *probabilities* (in the model's class
    order) whose true label is *actual*; None when *actual* is not one of the model's
    classes or the probabilities do not fit them.

    A row captured without its label (asked for the probabilities only) is scored on the
    label the model answers at its own threshold.
    """
    target = model.target
    classes = target.classes
    if actual not in classes or len(probabilities) != len(classes):
        return None
    truth = classes.index(actual)
    answered = classes.index(label) if label in classes else label_index(target, probabilities,
                                                                         None)  # fmt: skip
    positive, is_positive = None, False
    if target.task == BINARY:
        index = target.positive_index
        positive, is_positive = probabilities[index], truth == index
        brier = (positive - is_positive) ** 2
    else:
        brier = sum((p - (i == truth)) ** 2 for i, p in enumerate(probabilities))
    true_probability = probabilities[truth]
    return RowScore(
        log_loss=-math.log(min(max(true_probability, EPSILON), 1.0)),
        brier=brier,
        correct=answered == truth,
        in_set=None if model.set_quantile is None else true_probability >= 1 - model.set_quantile,
        confidence=probabilities[answered],
        positive=positive,
        is_positive=is_positive,
    )


def ece_bin(confidence: float) -> int:
    """Return the ECE bin of an answered class's probability (``score_classes``' bins)."""
    return min(int(confidence * ECE_BINS), ECE_BINS - 1)


def auc_bin(probability: float) -> int:
    """Return the AUC bin of a positive class's probability."""
    return min(int(probability * AUC_BINS), AUC_BINS - 1)


@dataclass
class ClassBins:
    """Bin sums to add to the store: (hour, version, role, kind, bin) -> [count, hits,
    confidence]; hits are the correct rows (ECE) or the positive ones (AUC)."""

    sums: dict[tuple[int, str, str, str, int], list] = field(default_factory=dict)

    def add(self, hour: int, version: str, role: str, score: RowScore) -> None:
        """Add one scored row to its ECE bin and, for a binary model, its AUC bin."""
        self._add((hour, version, role, ECE, ece_bin(score.confidence)), score.correct,
                  score.confidence)  # fmt: skip
        if score.positive is not None:
            self._add((hour, version, role, AUC, auc_bin(score.positive)), score.is_positive,
                      0.0)  # fmt: skip

    def _add(self, key: tuple[int, str, str, str, int], hit: bool, confidence: float) -> None:
        total = self.sums.setdefault(key, [0, 0, 0.0])
        total[0] += 1
        total[1] += hit
        total[2] += confidence

    def __bool__(self) -> bool:
        return bool(self.sums)


def binned_roc_auc(bins: Mapping[int, tuple[float, float]]) -> tuple[float | None, float | None]:
    """Return the ROC AUC of (positives, negatives) counts by bin of the positive class's
    probability, and the most it can be off the exact AUC; (None, None) without both
    classes."""
    positives = sum(p for p, _ in bins.values())
    negatives = sum(n for _, n in bins.values())
    if not positives or not negatives:
        return None, None
    ordered = below = tied = 0.0
    for index in sorted(bins):
        pos, neg = bins[index]
        ordered += pos * below + 0.5 * pos * neg
        tied += pos * neg
        below += neg
    pairs = positives * negatives
    return ordered / pairs, 0.5 * tied / pairs


def binned_ece(bins: Iterable[tuple[float, float, float]]) -> float | None:
    """Return the ECE of (rows, correct rows, summed probability) by bin; None without rows."""
    rows = gap = 0.0
    for count, correct, confidence in bins:
        rows += count
        gap += abs(correct - confidence)
    return gap / rows if rows else None


def class_figures(labelled: float, sums: Mapping[str, float],
                  bins: Mapping[tuple[str, int], tuple[float, float, float]],
                  model: ClassModel) -> dict[str, Any]:  # fmt: skip
    """Return a classifier's quality figures from its summed ``QualitySums`` (*sums* by
    column) and its bins ((kind, bin) -> count, hits, confidence)."""
    auc, auc_error = (None, None)
    if model.target.task == BINARY:
        auc, auc_error = binned_roc_auc({b: (hits, count - hits)
                                         for (kind, b), (count, hits, _) in bins.items()
                                         if kind == AUC})  # fmt: skip
    return {
        "labelled": int(labelled),
        "log_loss": sums["log_loss"] / labelled,
        "brier": sums["brier"] / labelled,
        "accuracy": sums["correct"] / labelled,
        "roc_auc": auc,
        "roc_auc_max_error": auc_error,
        "ece": binned_ece(v for (kind, _), v in bins.items() if kind == ECE),
        "set_coverage": sums["inside_set"] / sums["with_set"] if sums["with_set"] else None,
    }
