"""Check request values against the model's schema, with messages that name the feature.

A request is one row, ``{"Weight": 200, "Position": "Catcher"}``, or a batch in columns,
``{"Weight": [180, 200], "Position": ["Catcher", "Shortstop"]}``. Every value is checked
before anything is predicted; the first problem found is the error, naming the feature
(and the row index in a batch).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from cookbook.core.errors import InvalidInput
from cookbook.core.schema import CategoryFeature, Feature, NumberFeature, Schema

MAX_BATCH_ROWS = 10_000


def json_type(value: Any) -> str:
    """Return how JSON would name *value*'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, numbers.Real):
        return "a number"
    return type(value).__name__


def as_float(value: numbers.Real) -> float:
    """Return the number *value* as a float: infinite for an integer too large for one."""
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        return math.inf


def validate_number(feature: NumberFeature, value: Any, name: str | None = None) -> float:
    """Return *value* as a float within *feature*'s bounds, or raise ``InvalidInput``."""
    kind = type(value)
    # Plain floats and ints are nearly every call: skip the slower ABC check for them.
    if (kind is not float and kind is not int) and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):
        raise InvalidInput(
            f"{name or feature.name} must be a number{_of_unit(feature)}, got "
            f"{json_type(value)}: send e.g. {feature.example:g}."
        )
    number = as_float(value)
    if not math.isfinite(number):
        raise InvalidInput(
            f"{name or feature.name} must be a finite number{_of_unit(feature)}, got {value!r}."
        )
    if not feature.bounds.contains(number):
        raise InvalidInput(
            f"{name or feature.name} must be {feature.bounds.describe(feature.unit)}, "
            f"got {value!r}."
        )
    return number


def _of_unit(feature: NumberFeature) -> str:
    return f" of {feature.unit_name}" if feature.unit_name else ""


def validate_category(feature: CategoryFeature, value: Any, name: str | None = None) -> str:
    """Return *value* if it is one of *feature*'s categories, or raise ``InvalidInput``."""
    name = name or feature.name
    if isinstance(value, str) and value in feature.categories:
        return value
    known = ", ".join(feature.categories)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, one of {known}; got {json_type(value)}.")
    shown = value if len(value) <= 40 else value[:40] + "..."
    raise InvalidInput(f"{name} must be one of {known}; got {shown!r}.")


def validate_value(feature: Feature, value: Any, name: str | None = None) -> float | str:
    """Return *value* checked against *feature*, of whichever kind it is."""
    if feature.kind == "number":
        return validate_number(feature, value, name)
    return validate_category(feature, value, name)


def read_request(schema: Schema, document: Any) -> tuple[list[tuple], bool]:
    """Return the validated rows of a request body (values in schema order) and whether it
    was a batch; raise ``InvalidInput`` naming the first problem."""
    if not isinstance(document, dict):
        raise InvalidInput(f"Request body must be a JSON object: {schema.example_text()}.")
    features = schema.features
    if len(features) == 1:  # the common case, without the batch bookkeeping below
        only = features[0]
        try:
            value = document[only.name]
        except KeyError:
            raise InvalidInput(f'Missing key "{only.name}": {schema.example_text()}.') from None
        if type(value) is not list:
            return [(validate_value(only, value),)], False
    values = []
    for feature in features:
        try:
            values.append(document[feature.name])
        except KeyError:
            raise InvalidInput(f'Missing key "{feature.name}": {schema.example_text()}.') from None
    lists = [isinstance(value, list) for value in values]
    if not any(lists):
        return [tuple(validate_value(f, v) for f, v in zip(features, values, strict=True))], False
    if not all(lists):
        scalar = features[lists.index(False)].name
        column = features[lists.index(True)].name
        raise InvalidInput(
            f"{column} is a list but {scalar} is not: a batch sends every feature as a list "
            f"of the same length ({schema.example_text()})."
        )
    rows = len(values[0])
    for feature, column in zip(features, values, strict=True):
        if not column:
            raise InvalidInput(f"{feature.name} is an empty list: send at least one value.")
        if len(column) > MAX_BATCH_ROWS:
            raise InvalidInput(
                f"{feature.name} has {len(column)} values; the most one request may carry is "
                f"{MAX_BATCH_ROWS}: split the batch.",
                status=413,
            )
        if len(column) != rows:
            raise InvalidInput(
                f"{feature.name} has {len(column)} values but {features[0].name} has {rows}: "
                "every feature of a batch needs one value per row."
            )
    checked = [
        [validate_value(feature, value, f"{feature.name}[{i}]") for i, value in enumerate(column)]
        for feature, column in zip(features, values, strict=True)
    ]
    return list(zip(*checked, strict=True)), True
