"""How a predicted value is written in an answer, as the model's schema says.

The MLB models answer ``{"height_inches": 73.6, "height_human_readable": "6 foot, 2 inches"}``
(the cookbook's contract); any other model answers ``{"<target>": value}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cookbook.core.schema import HEIGHT_ANSWER, Schema


def height_human(float_inches: float) -> str:
    """Return a height in inches as "6 foot, 2 inches", rounding once to the nearest inch."""
    total_inches = math.floor(float_inches + 0.5)  # half up: 71.5 is 72, i.e. 6 foot, 0 inches
    text = _HUMAN_HEIGHTS.get(total_inches)
    if text is None:
        feet, inches = divmod(total_inches, 12)
        text = _HUMAN_HEIGHTS[total_inches] = f"{feet} foot, {inches} inches"
    return text


# Whole-inch heights seen so far: a handful of strings, formatted once each.
_HUMAN_HEIGHTS: dict[int, str] = {}


def round_tenth(value: float) -> float:
    """Return *value* to a tenth, halves up (and faster than ``round``)."""
    return math.floor(value * 10 + 0.5) / 10


def height_answer(height_inches: float) -> dict[str, Any]:
    """Return the cookbook's answer for a height in inches."""
    return {
        # A tenth of an inch: the model's error is about two inches, more digits are noise.
        "height_inches": round_tenth(height_inches),
        "height_human_readable": height_human(height_inches),
    }


def answer_writer(schema: Schema) -> Callable[[float], dict[str, Any]]:
    """Return the function that turns a predicted value into *schema*'s answer fields."""
    if schema.answer_format == HEIGHT_ANSWER:
        return height_answer
    name, digits = schema.target.name, schema.answer_digits

    def value_answer(value: float) -> dict[str, Any]:
        return {name: round(value, digits)}

    return value_answer
