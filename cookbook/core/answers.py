"""How a predicted value is written in an answer, as the model's schema says: one writer a format.

The MLB models answer ``{"height_inches": 73.6, "height_human_readable": "6 foot, 2 inches"}``
(the cookbook's contract); any other model answers ``{"<target>": value}``. Each format has
one writer, for one value (the API) and a whole column (batch scoring) alike: the rounding
is written with ``//``, which floors a float and a numpy array alike, so one rule serves
both without numpy in the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cookbook.core.schema import HEIGHT_ANSWER, Schema


def half_up(value: Any, scale: float = 1) -> Any:
    """Return how many ``1/scale`` steps *value* is, to the nearest, halves up.

    *value* is a number or a numpy array; the result is a float (or floats) with no
    fraction. ``half_up(71.5)`` is 72.0 and ``half_up(73.65, 10)`` is 737.0.
    """
    return (value * scale + 0.5) // 1


def round_half_up(value: Any, digits: int) -> Any:
    """Return *value* (a number or a numpy array) to *digits* decimals, halves up."""
    scale = 10**digits
    return half_up(value, scale) / scale


def round_tenth(value: Any) -> Any:
    """Return *value* (a number or a numpy array) to a tenth, halves up."""
    return round_half_up(value, 1)


def feet_and_inches(whole_inches: int) -> str:
    """Return a whole number of inches as "6 foot, 2 inches"."""
    text = _HUMAN_HEIGHTS.get(whole_inches)
    if text is None:
        feet, inches = divmod(whole_inches, 12)
        text = _HUMAN_HEIGHTS[whole_inches] = f"{feet} foot, {inches} inches"
    return text


# Whole-inch heights seen so far: a handful of strings, formatted once each.
_HUMAN_HEIGHTS: dict[int, str] = {}


def height_human(float_inches: float) -> str:
    """Return a height in inches as "6 foot, 2 inches", rounding once to the nearest inch."""
    return feet_and_inches(int(half_up(float_inches)))  # 71.5 is 72, i.e. 6 foot, 0 inches


def heights_human(float_inches: Any) -> list[str]:
    """Return ``height_human`` of each height in a numpy array, in order."""
    whole = half_up(float_inches).astype("int64").tolist()
    texts = {inches: feet_and_inches(inches) for inches in set(whole)}  # a few dozen heights
    return [texts[inches] for inches in whole]


def height_answer(height_inches: Any) -> dict[str, Any]:
    """Return the cookbook's answer for a height in inches, or its columns for an array."""
    human = heights_human if getattr(height_inches, "ndim", 0) else height_human
    return {
        # A tenth of an inch: the model's error is about two inches, more digits are noise.
        "height_inches": round_tenth(height_inches),
        "height_human_readable": human(height_inches),
    }


def answer_writer(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    """Return the function that turns a predicted value into *schema*'s answer fields.

    It takes one value (the API's answer) or a numpy array of them (batch scoring's
    columns), and rounds both alike.
    """
    if schema.answer_format == HEIGHT_ANSWER:
        return height_answer
    name, digits = schema.target.name, schema.answer_digits

    def value_answer(value: Any) -> dict[str, Any]:
        return {name: round_half_up(value, digits)}

    return value_answer
