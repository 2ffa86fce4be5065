"""The click parameter types the CLIs share: a number, a ``NAME=VALUE`` pair, a JSON object.

Standard library and click only: ``cli.py`` imports this on its fast path.
"""

from __future__ import annotations

import json
import math

import click


class NumberText(click.ParamType):
    """A number typed on the command line; the model's schema judges its range."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class Assignment(click.ParamType):
    """``NAME=VALUE``, as ``--set`` takes it: a (name, value text) pair."""

    name = "NAME=VALUE"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep or not name.strip():
            self.fail(f"{value!r} is not NAME=VALUE.", param, ctx)
        return name.strip(), text


class JsonObject(click.ParamType):
    """A JSON object typed on the command line, as ``--body`` takes it."""

    name = "JSON"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            document = json.loads(value, parse_constant=_refuse_constant, parse_float=_finite)
        except ValueError as exc:
            self.fail(f"is not JSON ({exc}).", param, ctx)
        if not isinstance(document, dict):
            self.fail('is not a JSON object such as {"Weight": [180, 200]}.', param, ctx)
        return document


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: JSON allows it, but it cannot be sent back as JSON
        raise ValueError(f"{text} is too large for a float")
    return number


NUMBER = NumberText()
ASSIGNMENT = Assignment()
JSON_OBJECT = JsonObject()
