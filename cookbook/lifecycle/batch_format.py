"""Turn a chunk's valid rows into output lines: the inputs as read, the answer, the flag.

``TableFormatter`` serves every model. ``ChunkFormatter`` is a faster path for models of
one bounded number feature answering heights (the committed model): 10,000,000 rows in
about 4 s instead of 6. Both call the API's own answer writer, so a line says what
``POST /predict`` would answer for its row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cookbook.core.answers import feet_and_inches, half_up
from cookbook.core.prediction import Predictor
from cookbook.core.schema import HEIGHT_ANSWER, NumberFeature, Schema
from cookbook.lifecycle.csv_lines import answer_text, csv_lines, number_text
from cookbook.lifecycle.vectorized import answer_columns, predict_frame


def formatter_for(predictor: Predictor) -> TableFormatter | ChunkFormatter:
    """Return the fastest formatter that can write *predictor*'s answers."""
    if ChunkFormatter.applies(predictor.schema):
        return ChunkFormatter(predictor)
    return TableFormatter(predictor)


class TableFormatter:
    """Any model's lines: predicted by column, each distinct value formatted once."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.schema = predictor.schema

    def format(self, values: Mapping[str, np.ndarray]) -> bytes:
        """Return the CSV lines for valid *values* (one array per feature), in order."""
        answers, outside = answer_columns(self.predictor, values)
        columns = [
            (values[f.name], number_text if isinstance(f, NumberFeature) else str)
            for f in self.schema.features
        ]
        columns += [(column, answer_text) for column in answers.values()]
        columns.append((outside, answer_text))
        return csv_lines(columns, len(outside))


class ChunkFormatter:
    """Turn valid weights into CSV lines fast, with lookup tables instead of per-row formatting.

    For models of one bounded number feature that answer heights (the committed model).

    Everything after the weight depends only on the height rounded to a tenth, the height
    rounded to an inch and the extrapolation flag: a few thousand distinct tails, each
    formatted once by the same code the API uses. Weights with at most two decimals
    (nearly all real data) come from a table too; others are written with ``repr``.
    """

    # The weights' text table covers 0 .. this many hundredths.
    MAX_TABLE_VALUE = 100_000

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.feature = feature = predictor.schema.single_number
        self.table_limit = int(feature.bounds.maximum)
        self.tails: dict[int, bytes] = {}
        self._hundredths_texts: np.ndarray | None = None  # built on first use

    @classmethod
    def applies(cls, schema: Schema) -> bool:
        """Return whether *schema*'s model can take this fast path."""
        feature = schema.single_number
        return (
            feature is not None
            and schema.answer_format == HEIGHT_ANSWER
            and feature.bounds.minimum is not None
            and feature.bounds.minimum >= 0
            and feature.bounds.maximum is not None
            and feature.bounds.maximum <= cls.MAX_TABLE_VALUE
        )

    def format(self, values: Mapping[str, np.ndarray]) -> bytes:
        """Return the CSV lines for the valid weights in *values*, in order, as UTF-8 bytes."""
        weights = values[self.feature.name]
        # A DataFrame, not the mapping: predict_frame sizes its output with len(frame).
        heights = predict_frame(self.predictor, pd.DataFrame({self.feature.name: weights}))
        keys = self._tail_keys(weights, heights)
        # A dense table over this chunk's few distinct keys: cheaper than np.unique's sort.
        low = int(keys.min())
        offsets = keys - low
        present = np.flatnonzero(np.bincount(offsets))
        table = np.empty(int(offsets.max()) + 1, dtype=object)
        table[present] = [self._tail(low + int(offset)) for offset in present.tolist()]
        # Interleave weight and tail, then join once: no per-row string concatenation.
        pieces = np.empty(2 * len(weights), dtype=object)
        pieces[0::2] = self.weight_texts(weights)
        pieces[1::2] = table[offsets]
        return b"".join(pieces.tolist())

    def _tail_keys(self, weights: np.ndarray, heights: np.ndarray) -> np.ndarray:
        tenths = half_up(heights, 10)  # the answer writer's rounding (round_tenth)
        inches = half_up(heights)  # and its whole inch (height_human)
        # The whole inch is within one of the tenth's own inch, so it fits in 2 bits.
        inch_offset = inches - half_up(tenths / 10) + 1
        outside = self.feature.outside_training(weights)
        return (tenths.astype(np.int64) * 4 + inch_offset.astype(np.int64)) * 2 + outside

    def _tail(self, key: int) -> bytes:
        tail = self.tails.get(key)
        if tail is None:
            rest, outside = divmod(key, 2)
            tenths, inch_offset = divmod(rest, 4)
            inches = int(half_up(tenths / 10)) + inch_offset - 1
            human = feet_and_inches(inches)
            flag = "true" if outside else "false"
            tail = self.tails[key] = f',{tenths / 10!r},"{human}",{flag}\n'.encode()
        return tail

    def weight_texts(self, weights: np.ndarray) -> np.ndarray:
        """Return each weight's shortest exact text, as bytes (``180``, ``180.5``, ``repr``)."""
        # A weight equal to the double nearest k/100 prints as k/100 with trailing zeros
        # dropped: that is repr's shortest round-trip form (without repr's ".0").
        hundredths = np.rint(weights * 100)
        exact = hundredths / 100 == weights
        table = self.hundredths_texts()
        if exact.all():
            return table[hundredths.astype(np.int64)]
        texts = np.empty(len(weights), dtype=object)
        texts[exact] = table[hundredths[exact].astype(np.int64)]
        texts[~exact] = [repr(w).encode() for w in weights[~exact].tolist()]
        return texts

    def hundredths_texts(self) -> np.ndarray:
        """Return the text of every weight k/100, k = 0 .. 100 × the feature's maximum, as bytes."""
        if self._hundredths_texts is None:
            limit = self.table_limit * 100
            texts = [
                f"{pounds}.{cents:02d}".rstrip("0").rstrip(".").encode()
                for pounds in range(self.table_limit + 1)
                for cents in range(100)
            ]
            self._hundredths_texts = np.array(texts[: limit + 1], dtype=object)
        return self._hundredths_texts
