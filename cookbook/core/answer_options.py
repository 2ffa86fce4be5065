"""What one request asks of its answer: options in the JSON body, else the query string.

- ``explain`` (any folded model): ``true`` adds each row's ``explanation``
  (``cookbook.core.explanations``); at most ``MAX_EXPLAINED_ROWS`` rows, else 413.
- ``output`` and ``threshold`` (classifiers, ``cookbook.core.classes``).

A regression ignores ``output`` and ``threshold``, as it ignores any field that is not a
feature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cookbook.core.classes import OUTPUT_FIELD, THRESHOLD_FIELD, read_output, read_threshold
from cookbook.core.errors import InvalidInput
from cookbook.core.schema import Schema
from cookbook.core.validation import json_type

EXPLAIN_FIELD = "explain"
# Explanations are answered for at most this many rows of one request: each one is a
# mapping per row, and a tree model's costs a thousand times a prediction.
MAX_EXPLAINED_ROWS = 1000
# How a query string says yes or no (a body says true or false).
QUERY_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class AnswerOptions:
    """What one request asks of its answer."""

    output: str | None = None  # LABEL or PROBABILITIES; None: everything (classifiers)
    threshold: float | None = None  # a binary model's threshold for this request
    explain: bool = False  # add each row's explanation


NO_OPTIONS = AnswerOptions()


def read_options(schema: Schema, document: Any, query: Mapping[str, str]) -> AnswerOptions:
    """Return a request's answer options (body fields, else query parameters).

    Raise ``InvalidInput`` naming a bad value: an ``explain`` that is not a boolean, an
    ``output`` that is not ``label`` or ``probabilities``, or a threshold that is not a
    number strictly between 0 and 1 (or is sent to a model that is not binary).
    """
    body = document if isinstance(document, dict) else {}
    explain = _option(EXPLAIN_FIELD, body, query, read_explain)
    output = threshold = None
    if schema.target.is_classification:
        output = _option(OUTPUT_FIELD, body, query, lambda value, _from_query: read_output(value))
        threshold = _option(
            THRESHOLD_FIELD, body, query,
            lambda value, from_query: read_threshold(schema.target, value, from_query),
        )  # fmt: skip
    if explain is None and output is None and threshold is None:
        return NO_OPTIONS
    return AnswerOptions(output=output, threshold=threshold, explain=bool(explain))


def _option(name: str, body: Mapping[str, Any], query: Mapping[str, str],
            read: Callable[[Any, bool], Any]) -> Any:  # fmt: skip
    """Return option *name* read by ``read(value, from_query)``: the body's value when the
    body has the field (even ``null``, which *read* refuses), else the query's; None when
    neither has it. A query value is checked even when the body's wins: a bad parameter is
    never ignored. The body's values are JSON's own types; the query's are text."""
    value = None
    if name in query:
        value = read(query[name], True)
    if name in body:
        value = read(body[name], False)
    return value


def read_explain(value: Any, from_query: bool = False) -> bool:
    """Return ``explain`` as a boolean: JSON's true or false, or *from_query* the text true,
    false, 1 or 0; raise ``InvalidInput`` for anything else."""
    if isinstance(value, bool):
        return value
    if from_query and isinstance(value, str) and value.lower() in QUERY_BOOLEANS:
        return QUERY_BOOLEANS[value.lower()]
    shown = repr(value[:40]) if isinstance(value, str) else json_type(value)
    raise InvalidInput(f'"{EXPLAIN_FIELD}" must be true or false, got {shown}.')


def check_explained_rows(rows: int, options: AnswerOptions,
                         limit: int = MAX_EXPLAINED_ROWS) -> None:  # fmt: skip
    """Raise ``InvalidInput`` (413) when a request asks to explain more rows than *limit*
    (the model's own, at most ``MAX_EXPLAINED_ROWS``)."""
    if options.explain and rows > limit:
        raise InvalidInput(
            f"Explanations are answered for at most {limit} rows per request"
            f"{'' if limit == MAX_EXPLAINED_ROWS else ' by this model'}; this one has {rows}: "
            f"split the batch, or leave out {EXPLAIN_FIELD}.",
            status=413,
        )
