"""A classifier's answer: its label, the probability of every class, and a prediction set.

In plain Python, so a folded classifier is served (and the Lambda handler answers) with
the standard library only. A prediction is the probabilities of the target's classes, in
the order ``model.json`` lists them; everything a client sees is written from them here:

- ``label``: the most probable class; for a binary model, the positive class when its
  probability is at least the threshold (the model's, or the request's ``threshold``).
- ``probabilities``: ``{"<class>": p, ...}``, unrounded, summing to 1.
- ``set``: the split-conformal prediction set, every class whose probability is at least
  ``1 - q`` (``q`` calibrated on held-out rows, ``cookbook.lifecycle.conformal``): it holds
  the true class for about ``coverage`` of rows. It may hold several classes when the
  model hesitates, or none when no class is likely enough.

A request may ask for only the label or only the probabilities (``"output"``); its options
are read in ``cookbook.core.answer_options``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cookbook.core.errors import InvalidInput, ModelError
from cookbook.core.schema import BINARY, Schema, Target
from cookbook.core.validation import json_type

if TYPE_CHECKING:  # only a type here; answer_options imports this module
    from cookbook.core.answer_options import AnswerOptions

LABEL, PROBABILITIES = "label", "probabilities"
OUTPUTS = (LABEL, PROBABILITIES)
# The request fields (and query parameters) that shape a classifier's answer.
OUTPUT_FIELD, THRESHOLD_FIELD = "output", "threshold"
LOGISTIC, SOFTMAX = "logistic", "softmax"

Probabilities = tuple  # one float per class, in the target's order of classes


def logistic(logit: float) -> Probabilities:
    """Return (1 - p, p) for a binary model's logit, without overflow at either end."""
    if logit >= 0:
        positive = 1.0 / (1.0 + math.exp(-logit))
    else:
        exp = math.exp(logit)
        positive = exp / (1.0 + exp)
    return (1.0 - positive, positive)


def softmax(logits: Sequence[float]) -> Probabilities:
    """Return the probabilities of a multiclass model's logits (shifted: no overflow)."""
    top = max(logits)
    exps = [math.exp(logit - top) for logit in logits]
    # Added left to right, not with sum() (compensated from Python 3.12 on): batch scoring
    # adds whole columns in this order and must give these floats, bit for bit.
    total = 0.0
    for e in exps:
        total += e
    return tuple(e / total for e in exps)


def link_of(task: str) -> str:
    """Return how a linear classifier's logits become probabilities for *task*."""
    return LOGISTIC if task == BINARY else SOFTMAX


def label_index(target: Target, probabilities: Probabilities, threshold: float | None) -> int:
    """Return the position of the answered class: the binary rule, or the most probable."""
    if target.task == BINARY:
        positive = target.positive_index
        chosen = target.threshold if threshold is None else threshold
        return positive if probabilities[positive] >= chosen else 1 - positive
    best = 0
    for index, probability in enumerate(probabilities):
        if probability > probabilities[best]:  # ties keep the first class: a stable answer
            best = index
    return best


@dataclass(frozen=True)
class PredictionSet:
    """The split-conformal set: classes whose probability is at least ``1 - quantile``."""

    quantile: float  # of the held-out rows' scores, 1 - the probability of their true class
    coverage: float

    @classmethod
    def of_metadata(cls, metadata: Mapping[str, Any]) -> PredictionSet | None:
        """Return the set stored in ``metadata["prediction_set"]``, or None without one."""
        stored = metadata.get("prediction_set")
        if not stored:
            return None
        try:
            quantile, coverage = float(stored["quantile"]), float(stored["coverage"])
        except (KeyError, TypeError, ValueError):
            raise ModelError("model.json's prediction_set is malformed: retrain.") from None
        if not (0 <= quantile <= 1 and 0 < coverage < 1):
            raise ModelError("model.json's prediction_set is malformed: retrain.")
        return cls(quantile, coverage)

    def members(self, classes: Sequence[str], probabilities: Probabilities) -> list[str]:
        """Return the classes in the set, most probable first."""
        floor = 1.0 - self.quantile
        chosen = [(p, i) for i, p in enumerate(probabilities) if p >= floor]
        return [classes[i] for _p, i in sorted(chosen, key=lambda pair: (-pair[0], pair[1]))]


def read_output(value: Any) -> str:
    """Return a request's ``output`` if it is ``label`` or ``probabilities``, else raise
    ``InvalidInput`` (the same text in a body or a query)."""
    if value not in OUTPUTS:
        shown = repr(value) if isinstance(value, str) else json_type(value)
        raise InvalidInput(f'"{OUTPUT_FIELD}" must be "{LABEL}" or "{PROBABILITIES}", got {shown}.')
    return value


def read_threshold(target: Target, value: Any, from_query: bool = True) -> float:
    """Return a request's threshold as a float in (0, 1), or raise ``InvalidInput``; text is
    read as a number only *from_query* (a body's threshold is a JSON number)."""
    if target.task != BINARY:
        raise InvalidInput(
            f'"{THRESHOLD_FIELD}" applies to binary models only; this one is {target.task}.'
        )
    if isinstance(value, str) and from_query:
        try:
            value = float(value)
        except ValueError:
            raise InvalidInput(
                f'"{THRESHOLD_FIELD}" must be a number between 0 and 1, got {value[:40]!r}.'
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        shown = json_type(value) if isinstance(value, bool | dict | list) else repr(value)
        raise InvalidInput(
            f'"{THRESHOLD_FIELD}" must be a number between 0 and 1 (exclusive), got {shown}; '
            f"it applies to the probability of {target.positive_class!r}."
        )
    return float(value)


def class_answer_writer(
    schema: Schema, prediction_set: PredictionSet | None
) -> Callable[[Probabilities, AnswerOptions], dict[str, Any]]:
    """Return the function that turns a row's probabilities into its answer."""
    target = schema.target
    classes = target.classes

    def class_answer(probabilities: Probabilities, options: AnswerOptions) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        if options.output != PROBABILITIES:
            answer[LABEL] = classes[label_index(target, probabilities, options.threshold)]
        if options.output != LABEL:
            answer[PROBABILITIES] = dict(zip(classes, probabilities, strict=True))
            if prediction_set is not None:
                answer["set"] = prediction_set.members(classes, probabilities)
                answer["set_coverage"] = prediction_set.coverage
        return answer

    return class_answer
