"""A model's schema: its features, its target, and how its answers are written.

The schema is data in ``model.json`` (``"schema"``), written at training time from the
training rows. Everything that depends on the model's inputs reads it from here:
validation, the prediction answer, the OpenAPI document, drift, metrics, batch scoring,
the page and the model card. A new model is a new schema, not new code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from cookbook.core.errors import ModelError

NUMBER = "number"
CATEGORY = "category"
# Answer formats: a height in inches written as the cookbook does, the target's value, or
# a classifier's label and class probabilities.
HEIGHT_ANSWER = "height"
VALUE_ANSWER = "value"
CLASS_ANSWER = "class"
# What a model predicts: a number, one of two classes, or one of more.
REGRESSION = "regression"
BINARY = "binary"
MULTICLASS = "multiclass"
TASKS = (REGRESSION, BINARY, MULTICLASS)
DEFAULT_THRESHOLD = 0.5
# A classifier's probability of one class, as a column of a table (batch scoring): p_<class>.
PROBABILITY_COLUMN_PREFIX = "p_"
# The largest true value accepted for a target whose training range was not kept: its
# square, summed over a window's labels, stays far inside a float.
MAX_MAGNITUDE = 1e12


@dataclass(frozen=True)
class Bounds:
    """The values a number feature may take (always finite), beyond which input is refused."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def contains(self, value: float) -> bool:
        """Return whether the finite *value* lies within the bounds."""
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_minimum else value < low):
            return False
        return not (
            high is not None and (value >= high if self.exclusive_maximum else value > high)
        )

    def describe(self, unit: str | None) -> str:
        """Return the bounds in words, e.g. "greater than 0 and at most 1000 lb"."""
        parts = []
        if self.minimum is not None:
            word = "greater than" if self.exclusive_minimum else "at least"
            parts.append(f"{word} {self.minimum:g}")
        if self.maximum is not None:
            word = "less than" if self.exclusive_maximum else "at most"
            parts.append(f"{word} {self.maximum:g}")
        text = " and ".join(parts)
        return f"{text} {unit}" if unit and text else text

    def to_dict(self) -> dict[str, Any]:
        """Return the bounds as ``model.json`` stores them (only what is set)."""
        document: dict[str, Any] = {}
        if self.minimum is not None:
            document["minimum"] = self.minimum
            document["exclusive_minimum"] = self.exclusive_minimum
        if self.maximum is not None:
            document["maximum"] = self.maximum
            document["exclusive_maximum"] = self.exclusive_maximum
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Bounds:
        """Return the bounds stored in *document*."""
        return cls(
            minimum=_optional_float(document.get("minimum")),
            maximum=_optional_float(document.get("maximum")),
            exclusive_minimum=bool(document.get("exclusive_minimum", False)),
            exclusive_maximum=bool(document.get("exclusive_maximum", False)),
        )


@dataclass(frozen=True)
class NumberFeature:
    """A numeric input: its unit, validation bounds, training range and distribution."""

    kind: ClassVar[str] = NUMBER

    name: str
    training_range: tuple[float, float]
    histogram: Mapping[str, list]  # "edges" and "counts" of the training values (drift)
    stats: Mapping[str, Any] = field(default_factory=dict)  # mean, std, min, max, quantiles
    ecdf: Mapping[str, Any] | None = None  # the training values' ECDF (offline KS)
    bounds: Bounds = Bounds()
    unit: str | None = None  # as written after a number: "lb"
    unit_name: str | None = None  # as written in a sentence: "pounds"
    description: str = ""
    example: float = 1.0
    batch_example: tuple[float, ...] = (1.0, 2.0)
    metric_buckets: tuple[float, ...] = ()  # Prometheus histogram bounds for inputs

    @property
    def mean(self) -> float:
        """Return the training mean (the probe's input)."""
        return float(self.stats.get("mean", sum(self.training_range) / 2))

    # The one training-range check, for a number or a numpy column alike (no numpy here):
    # a value outside the range was never seen in training, its prediction extrapolates.
    def below_training(self, value: Any) -> Any:
        """Return whether *value* (a number or an array) is below the training range."""
        return value < self.training_range[0]

    def above_training(self, value: Any) -> Any:
        """Return whether *value* (a number or an array) is above the training range."""
        return value > self.training_range[1]

    def outside_training(self, value: Any) -> Any:
        """Return whether *value* (a number or an array) is outside the training range."""
        return self.below_training(value) | self.above_training(value)

    def to_dict(self) -> dict[str, Any]:
        """Return the feature as ``model.json`` stores it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "description": self.description,
            "bounds": self.bounds.to_dict(),
            "training_range": list(self.training_range),
            "example": self.example,
            "batch_example": list(self.batch_example),
            "stats": dict(self.stats),
            "histogram": dict(self.histogram),
            "ecdf": None if self.ecdf is None else dict(self.ecdf),
            "metric_buckets": list(self.metric_buckets),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> NumberFeature:
        """Return the feature stored in *document*."""
        low, high = document["training_range"]
        histogram = document["histogram"]
        if len(histogram["edges"]) != len(histogram["counts"]) + 1 or not histogram["counts"]:
            raise ModelError(f"model.json's histogram of {document['name']} is malformed: retrain.")
        return cls(
            name=str(document["name"]),
            training_range=(float(low), float(high)),
            histogram={"edges": list(histogram["edges"]), "counts": list(histogram["counts"])},
            stats=document.get("stats") or {},
            ecdf=document.get("ecdf"),
            bounds=Bounds.from_dict(document.get("bounds") or {}),
            unit=document.get("unit"),
            unit_name=document.get("unit_name"),
            description=str(document.get("description") or ""),
            example=float(document.get("example", low)),
            batch_example=tuple(float(v) for v in document.get("batch_example", (low, high))),
            metric_buckets=tuple(float(b) for b in document.get("metric_buckets", ())),
        )


@dataclass(frozen=True)
class CategoryFeature:
    """A categorical input: the categories seen in training and how often each was seen."""

    kind: ClassVar[str] = CATEGORY

    name: str
    categories: tuple[str, ...]
    frequencies: Mapping[str, int]  # training rows per category (drift)
    description: str = ""
    example: str = ""
    batch_example: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the feature as ``model.json`` stores it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "categories": list(self.categories),
            "frequencies": dict(self.frequencies),
            "example": self.example,
            "batch_example": list(self.batch_example),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> CategoryFeature:
        """Return the feature stored in *document*."""
        categories = tuple(str(c) for c in document["categories"])
        if not categories:
            raise ModelError(f"model.json lists no categories for {document['name']}: retrain.")
        return cls(
            name=str(document["name"]),
            categories=categories,
            frequencies={str(k): int(v) for k, v in document.get("frequencies", {}).items()},
            description=str(document.get("description") or ""),
            example=str(document.get("example") or categories[0]),
            batch_example=tuple(str(v) for v in document.get("batch_example", categories[:2])),
        )


Feature = NumberFeature | CategoryFeature


@dataclass(frozen=True)
class Target:
    """What the model predicts: a number (its unit and training range) or a class.

    A classifier's ``classes`` are its labels as text, in the order of its probabilities
    (the estimator's ``classes_``). A binary one answers ``positive_class`` when that
    class's probability is at least ``threshold`` (stored at training, 0.5 unless chosen).
    """

    name: str
    unit: str | None = None
    unit_name: str | None = None
    description: str = ""
    metric_buckets: tuple[float, ...] = ()
    # The lowest and highest training value (None: a model trained before it was kept).
    training_range: tuple[float, float] | None = None
    task: str = REGRESSION
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    threshold: float = DEFAULT_THRESHOLD

    @property
    def is_classification(self) -> bool:
        """Return whether the model predicts a class rather than a number."""
        return self.task != REGRESSION

    @cached_property
    def positive_index(self) -> int:
        """Return the position of a binary model's positive class among its classes."""
        return self.classes.index(self.positive_class) if self.positive_class else -1

    def to_dict(self) -> dict[str, Any]:
        """Return the target as ``model.json`` stores it."""
        document: dict[str, Any] = {
            "name": self.name,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "description": self.description,
            "metric_buckets": list(self.metric_buckets),
        }
        if self.training_range is not None:
            document["training_range"] = list(self.training_range)
        if self.is_classification:  # a regression's model.json stays what it was
            document["task"] = self.task
            document["classes"] = list(self.classes)
            if self.task == BINARY:
                document["positive_class"] = self.positive_class
                document["threshold"] = self.threshold
        return document

    def plausible_range(self) -> tuple[float, float]:
        """Return the values a true value may take: the training range widened by its own
        width on each side (so 67-83 in allows 51-99 in); without a training range, any
        value of magnitude below ``MAX_MAGNITUDE``.

        A true value outside it is a mistake (a wrong unit, a typo, an attack), and one
        such value would swamp every error figure of the quality window.
        """
        if self.training_range is None:
            return -MAX_MAGNITUDE, MAX_MAGNITUDE
        low, high = self.training_range
        width = (high - low) or max(abs(high), 1.0)
        return low - width, high + width

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Target:
        """Return the target stored in *document*; raise ``ModelError`` if its task is not
        one of ``TASKS`` or a classifier's classes, positive class or threshold are wrong."""
        task = str(document.get("task", REGRESSION))
        classes = tuple(str(c) for c in document.get("classes") or ())
        target = cls(
            name=str(document["name"]),
            unit=document.get("unit"),
            unit_name=document.get("unit_name"),
            description=str(document.get("description") or ""),
            metric_buckets=tuple(float(b) for b in document.get("metric_buckets", ())),
            training_range=(
                (float(document["training_range"][0]), float(document["training_range"][1]))
                if document.get("training_range")
                else None
            ),  # fmt: skip
            task=task,
            classes=classes,
            positive_class=(
                str(document["positive_class"])
                if document.get("positive_class") is not None
                else None
            ),  # fmt: skip
            threshold=float(document.get("threshold", DEFAULT_THRESHOLD)),
        )
        target.check()
        return target

    def check(self) -> None:
        """Raise ``ModelError`` unless the task and, for a classifier, its classes agree."""
        if self.task not in TASKS:
            raise ModelError(f"model.json's target task {self.task!r} is unknown: retrain.")
        if not self.is_classification:
            return
        wanted = 2 if self.task == BINARY else 3
        if (
            len(set(self.classes)) != len(self.classes)
            or len(self.classes) < wanted
            or (self.task == BINARY and len(self.classes) != 2)
        ):
            raise ModelError(
                f"model.json's {self.task} target lists classes {list(self.classes)}: retrain."
            )
        if self.task == BINARY and (
            self.positive_class not in self.classes or not 0 < self.threshold < 1
        ):
            raise ModelError(
                f"model.json's binary target needs a positive class among {list(self.classes)} "
                f"and a threshold between 0 and 1 (got {self.positive_class!r}, "
                f"{self.threshold!r}): retrain."
            )


@dataclass(frozen=True)
class Schema:
    """Everything about a model's inputs and outputs that serving needs."""

    name: str
    features: tuple[Feature, ...]
    target: Target
    answer_format: str = VALUE_ANSWER
    answer_digits: int = 4  # decimals of a VALUE_ANSWER
    title: str = ""
    description: str = ""

    # What follows from the features is computed once per schema (the fields never change):
    # requests read these, and a tuple built per request is work no answer needs.
    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        """Return the features' names, in the order the model takes them."""
        return tuple(feature.name for feature in self.features)

    @cached_property
    def numeric(self) -> tuple[NumberFeature, ...]:
        """Return the number features, in schema order."""
        return tuple(f for f in self.features if isinstance(f, NumberFeature))

    @cached_property
    def categorical(self) -> tuple[CategoryFeature, ...]:
        """Return the category features, in schema order."""
        return tuple(f for f in self.features if isinstance(f, CategoryFeature))

    @cached_property
    def single_number(self) -> NumberFeature | None:
        """Return the only feature when the model takes one number (the chart's case)."""
        only = self.features[0]
        return only if len(self.features) == 1 and isinstance(only, NumberFeature) else None

    def feature(self, name: str) -> Feature:
        """Return the feature called *name*, or raise KeyError."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def answer_fields(self) -> tuple[str, ...]:
        """Return the names of the fields every prediction answer carries."""
        if self.answer_format == HEIGHT_ANSWER:
            return ("height_inches", "height_human_readable")
        if self.answer_format == CLASS_ANSWER:
            return ("label", "probabilities")
        return (self.target.name,)

    def table_fields(self) -> tuple[str, ...]:
        """Return the answer's columns in a table (batch scoring's output).

        The answer fields, except that a classifier's probabilities are one column per
        class, ``p_<class>`` in the order of its classes, after its ``label``.
        """
        if not self.target.is_classification:
            return self.answer_fields()
        return ("label", *(PROBABILITY_COLUMN_PREFIX + name for name in self.target.classes))

    def example_row(self) -> dict[str, Any]:
        """Return a valid one-row request body: ``{"Weight": 200}``."""
        return {feature.name: feature.example for feature in self.features}

    def example_batch(self) -> dict[str, list]:
        """Return a valid batch request body, in columns: ``{"Weight": [180, 200]}``."""
        return {feature.name: list(feature.batch_example) for feature in self.features}

    def example_text(self) -> str:
        """Return how to send a request, for error messages."""
        return f"send {_compact(self.example_row())} or {_compact(self.example_batch())}"

    def to_dict(self) -> dict[str, Any]:
        """Return the schema as ``model.json`` stores it."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "features": [feature.to_dict() for feature in self.features],
            "target": self.target.to_dict(),
            "answer": {"format": self.answer_format, "digits": self.answer_digits},
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Schema:
        """Return the schema stored in *document*, or raise ``ModelError``."""
        try:
            features = tuple(_feature_from_dict(item) for item in document["features"])
            if not features:
                raise ValueError("no features")
            answer = document.get("answer") or {}
            schema = cls(
                name=str(document["name"]),
                features=features,
                target=Target.from_dict(document["target"]),
                answer_format=str(answer.get("format", VALUE_ANSWER)),
                answer_digits=int(answer.get("digits", 4)),
                title=str(document.get("title") or ""),
                description=str(document.get("description") or ""),
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model.json's schema is malformed ({exc!r}): retrain.") from None
        if schema.answer_format not in (HEIGHT_ANSWER, VALUE_ANSWER, CLASS_ANSWER):
            raise ModelError(f"model.json's answer format {schema.answer_format!r} is unknown.")
        if (schema.answer_format == CLASS_ANSWER) != schema.target.is_classification:
            raise ModelError(
                f"model.json's answer format {schema.answer_format!r} does not fit its "
                f"{schema.target.task} target: retrain."
            )
        return schema


def _feature_from_dict(document: Mapping[str, Any]) -> Feature:
    kind = document.get("kind")
    if kind == NUMBER:
        return NumberFeature.from_dict(document)
    if kind == CATEGORY:
        return CategoryFeature.from_dict(document)
    raise ModelError(f"model.json's feature {document.get('name')!r} has unknown kind {kind!r}.")


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _compact(document: Mapping[str, Any]) -> str:
    # {"Weight": 200} as people type it: integral floats without ".0".
    def tidy(value: Any) -> Any:
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        if isinstance(value, Sequence) and not isinstance(value, str):
            return [tidy(v) for v in value]
        return value

    return json.dumps({key: tidy(value) for key, value in document.items()})
