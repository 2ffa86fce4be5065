"""The prediction request a command sends, from ``--weight``, ``--set`` or ``--body``.

``--set NAME=VALUE`` names any feature of any model; ``--weight`` is the cookbook's
shortcut for ``--set Weight=...``; ``--body`` is the whole document. A name given more
than once is a batch: its values become a column (``{"Weight": [180, 200]}``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import click

from cookbook.cli.options import WEIGHT_FEATURE

JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def json_value(text: str) -> int | float | str:
    """Return *text* as a JSON number when it is one (``180``, ``-1.5e2``), else as the string."""
    stripped = text.strip()
    if JSON_NUMBER.fullmatch(stripped):
        number = json.loads(stripped)
        if math.isfinite(number):  # 1e999 reads as inf, which JSON cannot carry
            return number
    return text


def request_body(
    ctx: click.Context,
    weights: Sequence[float],
    assignments: Sequence[tuple[str, str]],
    body: dict | None,
) -> dict | None:
    """Return the request document the options describe, or None when none was given.

    Raise ``click.UsageError`` (exit 2) for a mix that means nothing: ``--body`` with
    ``--weight`` or ``--set``, or ``--weight`` with ``--set Weight=...``.
    """
    if body is not None:
        if weights or assignments:
            raise click.UsageError("Give either --body or --weight/--set, not both.", ctx)
        return body
    columns: dict[str, list] = {}
    for name, text in assignments:
        columns.setdefault(name, []).append(json_value(text))
    if weights:
        if WEIGHT_FEATURE in columns:
            raise click.UsageError(
                f"--weight sets {WEIGHT_FEATURE}: give it or --set {WEIGHT_FEATURE}=..., not both.",
                ctx,
            )
        columns[WEIGHT_FEATURE] = list(weights)
    if not columns:
        return None
    return {name: values[0] if len(values) == 1 else values for name, values in columns.items()}
