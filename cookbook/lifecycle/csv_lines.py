"""Write scored rows as CSV lines fast: each distinct value is formatted once, then indexed.

Batch output repeats few distinct texts per column (weights, categories, heights rounded
to a tenth, the extrapolation flag), so formatting row by row, as ``DataFrame.to_csv``
does, spends most of its time re-formatting the same values. Here each column is
factorized (hashing, no sort), its distinct values are formatted by Python once, and the
lines are one join of those texts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Merge two pieces when their distinct pairs are at most 1 in this many rows: more pairs
# would cost more to format than the join saves.
MERGE_RATIO = 8


def csv_line(fields: Sequence[str]) -> bytes:
    """Return one CSV line (quoted where needed) as UTF-8 bytes."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().encode("utf-8")


def number_text(value: float) -> str:
    """Return a number as written by hand: ``180`` for 180.0, else its shortest exact text."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def answer_text(value: Any) -> str:
    """Return an answer field as the API's JSON writes it (``75.0``, ``true``, text as is)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def field_table(column: Any, text_of: Callable[[Any], str], end: bytes) -> tuple[Any, list]:
    """Return each cell's code and, per code, the CSV field (quoted where needed) plus *end*."""
    codes, distinct = pd.factorize(np.asarray(column), use_na_sentinel=False)
    if getattr(distinct, "dtype", None) is not None and distinct.dtype.kind in "biuf":
        # A number's text never needs quoting: skip the csv module (a probability column
        # has as many distinct values as rows).
        return codes, [text_of(value).encode() + end for value in distinct.tolist()]
    return codes, [csv_line([text_of(value)])[:-1] + end for value in distinct]


def csv_lines(columns: Sequence[tuple[Any, Callable[[Any], str]]], rows: int) -> bytes:
    """Return *rows* CSV lines, one field per column given as (values, text function).

    Adjacent columns whose value pairs repeat (a height and its text, a weight and the
    height it predicts) are merged into one piece per row, formatted once per pair:
    the final join, the costliest step, then handles fewer pieces.
    """
    if rows == 0:
        return b""
    pieces: list[tuple[Any, list]] = []
    for index, (values, text_of) in enumerate(columns):
        codes, table = field_table(values, text_of, b"\n" if index == len(columns) - 1 else b",")
        if pieces:
            merged = merge(*pieces[-1], codes, table, rows)
            if merged is not None:
                pieces[-1] = merged
                continue
        pieces.append((codes, table))
    fields = np.empty((rows, len(pieces)), dtype=object)
    for index, (codes, table) in enumerate(pieces):
        fields[:, index] = np.array(table, dtype=object)[codes]
    return b"".join(fields.ravel().tolist())


def merge(codes: Any, table: list, more_codes: Any, more_table: list, rows: int):
    """Return the codes and table of two adjacent pieces as one, or None if too many pairs."""
    pairs, distinct = pd.factorize(codes.astype(np.int64) * len(more_table) + more_codes)
    if len(distinct) > rows // MERGE_RATIO:
        return None
    first, second = np.divmod(distinct, len(more_table))
    return pairs, [
        table[a] + more_table[b] for a, b in zip(first.tolist(), second.tolist(), strict=True)
    ]
