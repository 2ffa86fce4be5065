"""Predict from validated rows and write the answers, in plain Python.

A folded model (``cookbook.core.linear.LinearForm``, plain numbers in ``model.json``, or a
classifier's ``ClassifierForm``) is evaluated here without scikit-learn, numpy or pandas.
A model that cannot be folded is served from its ONNX file or its verified, unpickled
estimator (``cookbook.lifecycle``'s predictors override ``predict_rows``).

A regression's predicted value is a float; a classifier's is the tuple of its classes'
probabilities (``cookbook.core.classes``), in the order ``model.json`` lists the classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.answer_options import (
    NO_OPTIONS,
    AnswerOptions,
    check_explained_rows,
    read_options,
)
from cookbook.core.answers import answer_writer
from cookbook.core.classes import PredictionSet, class_answer_writer, label_index
from cookbook.core.errors import InvalidInput, ModelError
from cookbook.core.explanations import Explainer, FoldedExplainer
from cookbook.core.importance import importance_of
from cookbook.core.intervals import Interval, interval_writer
from cookbook.core.linear import ClassifierForm, LinearForm
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
        linear: LinearForm | ClassifierForm | None = None,
    ) -> None:
        self.metadata = metadata
        self.path = Path(path)
        self.schema = schema
        self.linear = linear
        self.is_classifier = schema.target.is_classification
        # Exact explanations of a folded form; a tree model's predictor sets its own
        # (``cookbook.lifecycle.tree_explainer``), or says why there is none.
        self.explainer: Explainer | None = (
            None if linear is None else FoldedExplainer.of(linear, schema)
        )
        self.why_unexplained = (
            "explanations are computed for folded (linear) models and tree ensembles; this "
            f"one is served from {'its ONNX file' if metadata.get('onnx') else 'its joblib file'}"
        )
        # What each feature weighs on held-out rows, when model.json records it (a malformed
        # record refuses the model, as a malformed interval does).
        self.importance = importance_of(metadata, schema)
        if self.is_classifier:
            self.prediction_set = PredictionSet.of_metadata(metadata)
            self.write_class_answer = class_answer_writer(schema, self.prediction_set)
            self.interval, self.write_interval = None, None
        else:
            self.write_answer = answer_writer(schema)
            # The split-conformal band, when model.json has one (older models answer without).
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

    def predict_row(self, row: Row) -> Any:
        """Return the predicted value (a classifier: its probabilities) for one validated row."""
        if self._evaluate is None:
            return self.predict_rows([row])[0]
        return self._evaluate(row)

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        """Return the predicted values (or probabilities) for validated rows, in order."""
        return [self.predict_row(row) for row in rows]

    # -------------------------------------------------------------------- answers

    def answer(self, document: Any, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Return the response body for a request body: one row or a batch in columns.

        One row answers ``{"prediction": {...}}``; a batch ``{"predictions": [...]}``,
        one per row in order. A classifier reads its answer options from the body, else
        from *query* (``cookbook.core.classes``). Raise ``InvalidInput`` naming the first
        bad value.
        """
        options = self.read_options(document, query or {})
        rows, values, is_batch = self.predict_request(document)
        return self.response_body(rows, values, is_batch, options)

    def read_options(self, document: Any, query: Mapping[str, str]) -> AnswerOptions:
        """Return what a request asks of its answer; raise ``InvalidInput`` for a bad option,
        or an explanation asked of a model that cannot give one."""
        options = read_options(self.schema, document, query)
        if options.explain and self.explainer is None:
            raise InvalidInput(
                f"Model {self.version} cannot explain its answers: {self.why_unexplained}."
            )
        return options

    def predict_request(self, document: Any) -> tuple[list[Row], list[Any], bool]:
        """Validate a request body and predict it: ``(rows, values, is_batch)``."""
        rows, is_batch = read_request(self.schema, document)
        if not is_batch:
            return rows, [self.predict_row(rows[0])], False
        return rows, self.predict_rows(rows), True

    def response_body(
        self,
        rows: list[Row],
        values: list[Any],
        is_batch: bool,
        options: AnswerOptions = NO_OPTIONS,
    ) -> dict:
        """Return the response body for predicted rows; raise ``InvalidInput`` (413) for more
        rows than may be explained at once."""
        if options.explain:  # the whole batch in one call (one TreeSHAP call for trees)
            check_explained_rows(len(rows), options, self.explainer.row_limit())
            explained = zip(rows, values, self.explain_rows(rows, values, options), strict=True)
            answers = [self.answer_row(row, value, options, why) for row, value, why in explained]
            return {"predictions": answers} if is_batch else {"prediction": answers[0]}
        if not is_batch:
            return {"prediction": self.answer_row(rows[0], values[0], options)}
        return {
            "predictions": [
                self.answer_row(row, value, options)
                for row, value in zip(rows, values, strict=True)
            ]
        }

    def prediction(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Validate one row given as a mapping of feature values and return its answer."""
        body = self.answer(dict(row))
        if "prediction" not in body:
            raise InvalidInput("Give one value per feature here, not lists.")
        return body["prediction"]

    def explain_rows(
        self, rows: Sequence[Row], values: Sequence[Any], options: AnswerOptions = NO_OPTIONS
    ) -> list[dict]:
        """Return the explanation of each predicted row: a classifier's, of the class it
        answered at the request's threshold."""
        if self.is_classifier:
            target, threshold = self.schema.target, options.threshold
            answered = [label_index(target, value, threshold) for value in values]
        else:
            answered = [0] * len(rows)
        return self.explainer.explain_rows(rows, answered)

    def answer_row(
        self,
        row: Row,
        value: Any,
        options: AnswerOptions = NO_OPTIONS,
        explanation: dict | None = None,
    ) -> dict:
        """Return the answer for a validated *row* predicted as *value*, with its
        *explanation* when the request asks for one (computed here when not given)."""
        if self.is_classifier:
            answer = self.write_class_answer(value, options)
        else:
            answer = self.write_answer(value)
            if self.write_interval is not None:
                answer["interval"] = self.write_interval(value)
        if options.explain:
            if explanation is None:
                (explanation,) = self.explain_rows([row], [value], options)
            answer["explanation"] = explanation
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

    def probe(self) -> Any:
        """Predict for the typical row and return it (a classifier: its probabilities by
        class); raise ``ModelError`` if it is not finite, or probabilities that do not sum
        to 1."""
        value = self.predict_row(self.probe_row())
        if self.is_classifier:
            probabilities = [float(p) for p in value]
            if not (all(0 <= p <= 1 for p in probabilities) and abs(sum(probabilities) - 1) < 1e-6):
                raise ModelError(
                    f"Model {self.version} failed its probe prediction: probabilities "
                    f"{probabilities!r} are not a distribution."
                )
            return dict(zip(self.schema.target.classes, probabilities, strict=True))
        value = float(value)
        if not math.isfinite(value):
            raise ModelError(f"Model {self.version} failed its probe prediction ({value!r}).")
        return value
