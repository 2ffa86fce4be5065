"""Evaluate a model folded into ``intercept + Σ coefficient·x + Σ offset[category]``.

At training time a linear model over scaled numeric and one-hot categorical features is
folded into these plain numbers (``cookbook.lifecycle.folding``, stored in ``model.json``),
so serving it needs no scikit-learn, numpy or pandas. The one evaluation lives here, for a
row and for whole columns, adding the terms in the same order so both give the same
floats: the intercept, each number feature's term, then each category's offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cookbook.core.errors import ModelError


@dataclass(frozen=True)
class LinearForm:
    """A model folded into ``intercept + Σ coefficient·x + Σ offset[category]``."""

    intercept: float
    coefficients: Mapping[str, float]  # number feature -> coefficient
    offsets: Mapping[str, Mapping[str, float]]  # category feature -> category -> offset
    max_relative_error: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the form as ``model.json`` stores it."""
        return {
            "intercept": self.intercept,
            "coefficients": dict(self.coefficients),
            "offsets": {name: dict(table) for name, table in self.offsets.items()},
            "max_relative_error": self.max_relative_error,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> LinearForm:
        """Return the form stored in *document*."""
        return cls(
            intercept=float(document["intercept"]),
            coefficients={k: float(v) for k, v in document["coefficients"].items()},
            offsets={
                name: {str(c): float(v) for c, v in table.items()}
                for name, table in document.get("offsets", {}).items()
            },
            max_relative_error=float(document.get("max_relative_error", 0.0)),
        )

    def row_evaluator(self, feature_names: Sequence[str]) -> Callable[[Sequence[Any]], float]:
        """Return a function of a row (values in *feature_names*' order) to its value.

        Raise ``ModelError`` unless the form has exactly one term per feature.
        """
        position = {name: i for i, name in enumerate(feature_names)}
        termed = [*self.coefficients, *self.offsets]
        missing = sorted(set(feature_names) - set(termed))
        unknown = sorted(set(termed) - set(feature_names))
        if missing or unknown or len(termed) != len(feature_names):
            raise ModelError(
                f"model.json's folded form does not match the schema's features "
                f"(missing {missing}, unknown {unknown}): retrain."
            )
        intercept = self.intercept
        numbers = [(position[name], c) for name, c in self.coefficients.items()]
        categories = [(position[name], table) for name, table in self.offsets.items()]

        def evaluate(row: Sequence[Any]) -> float:
            value = intercept
            for index, coefficient in numbers:
                value += coefficient * row[index]
            for index, table in categories:
                value += table[row[index]]
            return value

        return evaluate

    def evaluate_columns(
        self,
        number_column: Callable[[str], Any],
        offset_column: Callable[[str, Mapping[str, float]], Any],
    ) -> Any:
        """Return the values of whole columns: an array like those the callables return.

        ``number_column(name)`` returns a number feature's column as floats, and
        ``offset_column(name, table)`` a category feature's column mapped through *table*:
        numpy arrays or anything else with ``*`` by a float and in-place ``+=``, so the
        core needs no numpy. The first term is a new array the rest are added into: a
        million rows cost a few passes over memory, not one array per term.
        """
        values = None
        for term in self._column_terms(number_column, offset_column):
            if values is None:
                values = term  # intercept + t1 equals t1 + intercept: the row's order of sums
                values += self.intercept
            else:
                values += term
        if values is None:
            raise ModelError("model.json's folded form has no features: retrain.")
        return values

    def _column_terms(
        self,
        number_column: Callable[[str], Any],
        offset_column: Callable[[str, Mapping[str, float]], Any],
    ) -> Iterator[Any]:
        # One term at a time, so no more than two arrays are alive at once.
        for name, coefficient in self.coefficients.items():
            yield number_column(name) * coefficient
        for name, table in self.offsets.items():
            yield offset_column(name, table)


@dataclass(frozen=True)
class ClassifierForm:
    """A linear classifier folded into one ``LinearForm`` per logit and a link.

    Binary: one logit, the positive class's log-odds (``logistic``). Multiclass: one logit
    per class, turned into probabilities by ``softmax``. A row's probabilities come in
    the order of the target's classes.
    """

    logits: tuple[LinearForm, ...]
    link: str
    max_relative_error: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the form as ``model.json`` stores it."""
        return {
            "link": self.link,
            "logits": [form.to_dict() for form in self.logits],
            "max_relative_error": self.max_relative_error,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ClassifierForm:
        """Return the form stored in *document*."""
        from cookbook.core.classes import LOGISTIC, SOFTMAX

        link = str(document["link"])
        logits = tuple(LinearForm.from_dict(item) for item in document["logits"])
        if (
            link not in (LOGISTIC, SOFTMAX)
            or not logits
            or (link == LOGISTIC) != (len(logits) == 1)
        ):
            raise ValueError(f"{len(logits)} logits with link {link!r}")
        return cls(logits, link, float(document.get("max_relative_error", 0.0)))

    def row_evaluator(self, feature_names: Sequence[str]) -> Callable[[Sequence[Any]], tuple]:
        """Return a function of a row (values in *feature_names*' order) to its probabilities."""
        from cookbook.core.classes import LOGISTIC, logistic, softmax

        evaluators = [form.row_evaluator(feature_names) for form in self.logits]
        if self.link == LOGISTIC:
            (only,) = evaluators
            return lambda row: logistic(only(row))
        return lambda row: softmax([evaluate(row) for evaluate in evaluators])


def folded_form_of(document: Mapping[str, Any]) -> LinearForm | ClassifierForm:
    """Return the folded form ``model.json`` stores: a classifier's has logits."""
    if "logits" in document:
        return ClassifierForm.from_dict(document)
    return LinearForm.from_dict(document)
