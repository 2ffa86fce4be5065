"""Why this answer: a folded model's prediction split exactly into one contribution per feature.

For a folded form ``intercept + Σ coefficient·x + Σ offset[category]`` the contributions are
measured against the training means (the schema's stats and category frequencies):

- a number feature contributes ``coefficient · (x - mean)``;
- a category feature contributes ``offset[x] - mean offset`` (the offsets weighted by how
  often each category was seen in training);
- the base is the form's value at those means, so ``base + Σ contributions`` equals the
  prediction, which is computed apart by the form's own evaluator (the value served), so the
  sum is a check, not a definition: the two agree to float rounding (about 1e-12 of their
  size).

A classifier explains the logit of the class it answered: a binary model's log-odds of that
class (the negated logit when it answered the first class), a multiclass model's own logit
for it. In plain Python, so the Lambda handler explains too.

Tree models are explained by TreeSHAP (``cookbook.lifecycle.tree_explainer``); both kinds
answer the ``Explainer`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cookbook.core.answer_options import MAX_EXPLAINED_ROWS
from cookbook.core.linear import ClassifierForm, LinearForm
from cookbook.core.schema import BINARY, NumberFeature, Schema

# What a tree classifier's trees sum (``model.json["trees"]["output"]``): a random forest
# averages its trees' class probabilities; boosted trees sum raw scores (log-odds, logits).
PROBABILITY_OUTPUT = "probability"


def explained_quantity(schema: Schema, metadata: Mapping[str, Any]) -> str | None:
    """Return what a classifier's explanation measures for the answered class (``log-odds``,
    a multiclass model's ``logit``, a random forest's ``probability``); None for a
    regression, whose explanation is in its target's unit."""
    target = schema.target
    if not target.is_classification:
        return None
    if (metadata.get("trees") or {}).get("output") == PROBABILITY_OUTPUT:
        return "probability"
    return "log-odds" if target.task == BINARY else "logit"


class Explainer(Protocol):
    """What explains a model's answers: one row, or a batch at once."""

    def explain(self, row: Sequence[Any], answered: int = 0) -> dict[str, Any]:
        """Return ``{"base", "contributions", "prediction"}`` for a validated row (a
        classifier: of the class at index *answered*)."""
        ...

    def explain_rows(self, rows: Sequence[Sequence[Any]], answered: Sequence[int]) -> list[dict]:
        """Return the explanation of each validated row, for the class answered for it."""
        ...

    def row_limit(self) -> int:
        """Return the most rows one request may have explained (at most
        ``MAX_EXPLAINED_ROWS``): fewer where each row's explanation is costly, so that one
        request cannot hold its worker for long."""
        ...


@dataclass(frozen=True)
class LinearExplainer:
    """The exact explanation of one linear form (a regression, or one logit)."""

    base: float
    # (row index, feature name, coefficient, mean) for numbers; (index, name, offsets, mean
    # offset) for categories.
    numbers: tuple[tuple[int, str, float, float], ...]
    categories: tuple[tuple[int, str, Mapping[str, float], float], ...]
    evaluate: Callable[[Sequence[Any]], float]  # the form's own value of a row

    @classmethod
    def of(cls, form: LinearForm, schema: Schema) -> LinearExplainer:
        """Return the explainer of *form* for rows of *schema*'s features, at its means."""
        position = {name: i for i, name in enumerate(schema.feature_names)}
        numbers = []
        categories = []
        base = form.intercept
        for feature in schema.features:
            index = position[feature.name]
            if isinstance(feature, NumberFeature):
                coefficient = form.coefficients[feature.name]
                numbers.append((index, feature.name, coefficient, feature.mean))
                base += coefficient * feature.mean
            else:
                offsets = form.offsets[feature.name]
                mean_offset = weighted_mean(offsets, feature.frequencies)
                categories.append((index, feature.name, offsets, mean_offset))
                base += mean_offset
        return cls(base, tuple(numbers), tuple(categories),
                   form.row_evaluator(schema.feature_names))  # fmt: skip

    def explain(self, row: Sequence[Any]) -> dict[str, Any]:
        """Return ``{"base", "contributions", "prediction"}`` for a validated row."""
        contributions: dict[str, float] = {}
        for index, name, coefficient, mean in self.numbers:
            contributions[name] = coefficient * (row[index] - mean)
        for index, name, offsets, mean_offset in self.categories:
            contributions[name] = offsets[row[index]] - mean_offset
        return {"base": self.base, "contributions": contributions, "prediction": self.evaluate(row)}

    def negated(self) -> LinearExplainer:
        """Return the explainer of minus this form (a binary model's other class)."""
        return LinearExplainer(
            -self.base,
            tuple((i, name, -c, mean) for i, name, c, mean in self.numbers),
            tuple((i, name, {k: -v for k, v in offsets.items()}, -mean)
                  for i, name, offsets, mean in self.categories),
            lambda row: -self.evaluate(row),
        )  # fmt: skip


def weighted_mean(offsets: Mapping[str, float], frequencies: Mapping[str, int]) -> float:
    """Return the offsets' mean weighted by training frequencies (plain mean without them)."""
    total = sum(frequencies.get(category, 0) for category in offsets)
    if total <= 0:
        return sum(offsets.values()) / len(offsets)
    return sum(value * frequencies.get(category, 0) for category, value in offsets.items()) / total


@dataclass(frozen=True)
class FoldedExplainer:
    """Explanations of a folded model: one linear explainer per class it can answer."""

    per_class: tuple[LinearExplainer, ...]  # a regression: one

    @classmethod
    def of(cls, form: LinearForm | ClassifierForm, schema: Schema) -> FoldedExplainer:
        """Return the explainer of a folded regression or classifier."""
        if isinstance(form, LinearForm):
            return cls((LinearExplainer.of(form, schema),))
        explainers = tuple(LinearExplainer.of(logit, schema) for logit in form.logits)
        if len(explainers) == 1:  # binary: the logit is the second class's log-odds
            (second,) = explainers
            explainers = (second.negated(), second)
        return cls(explainers)

    def explain(self, row: Sequence[Any], answered: int = 0) -> dict[str, Any]:
        """Return the explanation of *row*'s prediction, or of the logit of the class at
        index *answered* for a classifier."""
        return self.per_class[answered].explain(row)

    def explain_rows(self, rows: Sequence[Sequence[Any]], answered: Sequence[int]) -> list[dict]:
        """Return the explanation of each validated row, for the class answered for it."""
        per_class = self.per_class
        return [per_class[a].explain(row) for row, a in zip(rows, answered, strict=True)]

    def row_limit(self) -> int:
        """Return ``MAX_EXPLAINED_ROWS``: a folded explanation costs microseconds."""
        return MAX_EXPLAINED_ROWS
