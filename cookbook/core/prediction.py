"""Predict from validated rows and write the answers, in plain Python.

A folded model (``cookbook.core.linear.LinearForm``, plain numbers in ``model.json``) is
evaluated here without scikit-learn, numpy or pandas. A model that cannot be folded is
served by its verified, unpickled ``predict``
(``cookbook.lifecycle.artifacts.EstimatorPredictor``, which overrides ``predict_rows``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.answers import answer_writer
from cookbook.core.errors import InvalidInput, ModelError
from cookbook.core.intervals import Interval, interval_writer
from cookbook.core.linear import LinearForm
from cookbook.core.schema import NumberFeature, Schema
from cookbook.core.validation import read_request

Row = tuple  # validated values in schema order: floats for numbers, strings for categories


class Predictor:
    """A verified model: checks requests against its schema, predicts, writes answers."""

    def __init__(
        self,
        metadata: Mapping[str, Any],
        path: Path,
        schema: Schema,
        linear: LinearForm | None = None,
    ) -> None:
        self.metadata = metadata
        self.path = Path(path)
        self.schema = schema
        self.linear = linear
        self.write_answer = answer_writer(schema)
        # The split-conformal band, when model.json has one (older models answer without it).
        self.interval = Interval.of_metadata(metadata)
        self.write_interval = (
            None if self.interval is None else interval_writer(schema, self.interval)
        )
        self.example_text = schema.example_text()  # for error messages, made once
        self.version: str = metadata["model_version"]
        # (index, feature) for every number feature, to spot extrapolation.
        self._numbers = [
            (i, f) for i, f in enumerate(schema.features) if isinstance(f, NumberFeature)
        ]
        self._evaluate = None if linear is None else linear.row_evaluator(schema.feature_names)

    @property
    def is_folded(self) -> bool:
        """Return whether predictions come from the folded linear form."""
        return self.linear is not None

    # ----------------------------------------------------------------- predicting

    def predict_row(self, row: Row) -> float:
        """Return the predicted value for one validated row."""
        if self._evaluate is None:
            return self.predict_rows([row])[0]
        return self._evaluate(row)

    def predict_rows(self, rows: Sequence[Row]) -> list[float]:
        """Return the predicted values for validated rows, in order."""
        return [self.predict_row(row) for row in rows]

    # -------------------------------------------------------------------- answers

    def answer(self, document: Any) -> dict[str, Any]:
        """Return the response body for a request body: one row or a batch in columns.

        One row answers ``{"prediction": {...}}``; a batch ``{"predictions": [...]}``,
        one per row in order. Raise ``InvalidInput`` naming the first bad value.
        """
        rows, values, is_batch = self.predict_request(document)
        return self.response_body(rows, values, is_batch)

    def predict_request(self, document: Any) -> tuple[list[Row], list[float], bool]:
        """Validate a request body and predict it: ``(rows, values, is_batch)``."""
        rows, is_batch = read_request(self.schema, document)
        if not is_batch:
            return rows, [self.predict_row(rows[0])], False
        return rows, self.predict_rows(rows), True

    def response_body(self, rows: list[Row], values: list[float], is_batch: bool) -> dict:
        """Return the response body for predicted rows."""
        if not is_batch:
            return {"prediction": self.answer_row(rows[0], values[0])}
        return {
            "predictions": [
                self.answer_row(row, value) for row, value in zip(rows, values, strict=True)
            ]
        }

    def prediction(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Validate one row given as a mapping of feature values and return its answer."""
        body = self.answer(dict(row))
        if "prediction" not in body:
            raise InvalidInput("Give one value per feature here, not lists.")
        return body["prediction"]

    def answer_row(self, row: Row, value: float) -> dict[str, Any]:
        """Return the answer for a validated *row* predicted as *value*."""
        answer = self.write_answer(value)
        if self.write_interval is not None:
            answer["interval"] = self.write_interval(value)
        warning = self.extrapolation_warning(row)
        if warning:
            answer["warning"] = warning
        return answer

    def extrapolation_warning(self, row: Row) -> str | None:
        """Return a warning naming every number outside its training range, else None."""
        outside = None
        for index, feature in self._numbers:
            value = row[index]
            if feature.outside_training(value):
                low, high = feature.training_range
                unit = f" {feature.unit}" if feature.unit else ""
                text = (
                    f"{feature.name} {value:g}{unit} is outside the training range "
                    f"({low:g}-{high:g}{unit})"
                )
                outside = text if outside is None else f"{outside}; {text}"
        return None if outside is None else outside + ": this prediction is an extrapolation."

    def probe_row(self) -> Row:
        """Return a typical row: training means and the most frequent categories."""
        return tuple(
            f.mean if isinstance(f, NumberFeature) else f.example for f in self.schema.features
        )

    def probe(self) -> float:
        """Predict for the typical row and return it; raise ``ModelError`` if not finite."""
        value = float(self.predict_row(self.probe_row()))
        if not math.isfinite(value):
            raise ModelError(f"Model {self.version} failed its probe prediction ({value!r}).")
        return value
