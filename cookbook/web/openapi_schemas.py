"""The JSON schemas of what a model reads and answers: feature values, predictions, options,
and the components of ``/openapi.json`` built from them."""

from __future__ import annotations

from typing import Any

from cookbook.core.classes import LABEL, OUTPUT_FIELD, PROBABILITIES, THRESHOLD_FIELD
from cookbook.core.schema import BINARY, HEIGHT_ANSWER, CategoryFeature, Feature, Schema
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.openapi_fragments import ERROR_SCHEMA


def value_schema(feature: Feature) -> dict[str, Any]:
    """Return the JSON schema of one value of *feature*."""
    if isinstance(feature, CategoryFeature):
        return {
            "type": "string",
            "enum": list(feature.categories),
            "example": feature.example,
            "description": feature.description or f"One of the {feature.name} categories.",
        }
    value: dict[str, Any] = {"type": "number", "example": feature.example}
    bounds = feature.bounds
    # OpenAPI 3.0 takes JSON Schema draft 4's form: a boolean beside "minimum".
    if bounds.minimum is not None:
        value["minimum"] = bounds.minimum
        if bounds.exclusive_minimum:
            value["exclusiveMinimum"] = True
    if bounds.maximum is not None:
        value["maximum"] = bounds.maximum
        if bounds.exclusive_maximum:
            value["exclusiveMaximum"] = True
    low, high = feature.training_range
    unit = f" {feature.unit}" if feature.unit else ""
    value["description"] = (
        f"{feature.description or feature.name} Trained on {low:g}-{high:g}{unit}; "
        "outside that range the answer carries a warning."
    ).strip()
    return value


def class_prediction_schema(schema: Schema) -> dict[str, Any]:
    """Return the JSON schema of one classifier's answer: label, probabilities, set."""
    target = schema.target
    classes = list(target.classes)
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    if target.task == BINARY:
        rule = (
            f"{target.positive_class!r} when its probability is at least the threshold "
            f"({target.threshold:g} unless the request sends one), else the other class."
        )
    else:
        rule = "the most probable class (the first in the schema's order on a tie)."
    properties: dict[str, Any] = {
        LABEL: {
            "type": "string",
            "enum": classes,
            "description": f"Predicted {target.name}: {rule} Absent with output=probabilities.",
        },
        PROBABILITIES: {
            "type": "object",
            "description": "The probability of every class, in the schema's order, unrounded; "
            "they sum to 1. Absent with output=label.",
            "required": classes,
            "additionalProperties": False,
            "properties": {name: {**probability, "description": f"P({name})."} for name in classes},
        },
        "set": {
            "type": "array",
            "items": {"type": "string", "enum": classes},
            "uniqueItems": True,
            "description": "Split-conformal prediction set, most probable first: every class "
            "whose probability is at least 1 - q (q calibrated on held-out rows). It holds the "
            "true class for about set_coverage of rows; it may hold several classes, or none. "
            "Present with the probabilities when the model has a calibrated set.",
        },
        "set_coverage": {
            **probability,
            "description": "Share of rows the set is meant to hold the true class of.",
        },
        "warning": {
            "type": "string",
            "description": "Present only when a number lies outside its training range.",
        },
    }
    return {
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": [LABEL]}, {"required": [PROBABILITIES]}],
    }


def class_options(schema: Schema) -> dict[str, dict[str, Any]]:
    """Return the JSON schemas of a classifier's answer options (body fields or query
    parameters): ``output``, and a binary model's ``threshold``."""
    target = schema.target
    options: dict[str, dict[str, Any]] = {
        OUTPUT_FIELD: {
            "type": "string",
            "enum": [LABEL, PROBABILITIES],
            "description": "Answer only the label, or only the probabilities (with the set); "
            "both when absent.",
        }
    }
    if target.task == BINARY:
        options[THRESHOLD_FIELD] = {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "exclusiveMinimum": True,
            "exclusiveMaximum": True,
            "example": target.threshold,
            "description": f"Answer {target.positive_class!r} when its probability is at least "
            f"this (default: the model's {target.threshold:g}).",
        }
    return options


def class_query_parameters(schema: Schema) -> list[dict[str, Any]]:
    """Return a classifier's answer options as query parameters (the body's win)."""
    return [
        {"name": name, "in": "query", "required": False, "schema": option,
         "description": option["description"] + " The body's field, if sent, wins."}
        for name, option in class_options(schema).items()
    ]  # fmt: skip


def prediction_schema(schema: Schema) -> dict[str, Any]:
    """Return the JSON schema of one prediction answer."""
    target = schema.target
    if target.is_classification:
        return class_prediction_schema(schema)
    if schema.answer_format == HEIGHT_ANSWER:
        unit = f" {target.unit}" if target.unit else ""
        properties: dict[str, Any] = {
            "height_inches": {
                "type": "number",
                "description": f"Predicted {target.name}, to 0.1{unit}.",
            },
            "height_human_readable": {"type": "string", "example": "6 foot, 2 inches"},
        }
    else:
        unit = f" ({target.unit})" if target.unit else ""
        properties = {
            target.name: {"type": "number", "description": f"Predicted {target.name}{unit}."}
        }
    bound = {"type": "number"}
    interval: dict[str, Any] = {
        "low": {**bound, "description": "Lower end, rounded like the answer."},
        "high": {**bound, "description": "Upper end, rounded like the answer."},
        "coverage": {**bound, "description": "Share of cases the interval is meant to hold."},
    }
    if schema.answer_format == HEIGHT_ANSWER:
        interval["low_human_readable"] = {"type": "string", "example": "5 foot, 11 inches"}
        interval["high_human_readable"] = {"type": "string", "example": "6 foot, 5 inches"}
    properties["interval"] = {
        "type": "object",
        "description": "Split-conformal prediction interval; present when the model has one.",
        "required": ["low", "high", "coverage"],
        "properties": interval,
    }
    properties["warning"] = {
        "type": "string",
        "description": "Present only when a number lies outside its training range.",
    }
    return {"type": "object", "required": list(schema.answer_fields()), "properties": properties}


def component_schemas(schema: Schema) -> dict[str, Any]:
    """Return the component schemas of ``/predict``'s request and answers, errors and drift."""
    names = schema.feature_names
    return {
        "PredictRequest": {
            "type": "object",
            "required": list(names),
            "properties": {
                f.name: {
                    "oneOf": [
                        value_schema(f),
                        {
                            "type": "array",
                            "items": value_schema(f),
                            "minItems": 1,
                            "maxItems": MAX_BATCH_ROWS,
                        },
                    ]
                }
                for f in schema.features
            },
        },
        "Prediction": prediction_schema(schema),
        "SinglePrediction": {
            "type": "object",
            "required": ["prediction"],
            "properties": {"prediction": {"$ref": "#/components/schemas/Prediction"}},
        },
        "BatchPrediction": {
            "type": "object",
            "required": ["predictions"],
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Prediction"},
                }
            },
        },
        "Error": ERROR_SCHEMA,
        "Drift": DRIFT_SCHEMA,
        "ModelMetadata": MODEL_METADATA_SCHEMA,
    }


DRIFT_SCHEMA = {
    "type": "object",
    "required": ["psi", "verdict", "window_size", "window_capacity"],
    "properties": {
        "psi": {"type": "number", "minimum": 0},
        "verdict": {"type": "string", "enum": ["ok", "warn", "alert"]},
        "window_size": {"type": "integer", "minimum": 0},
        "window_capacity": {"type": "integer", "minimum": 1},
        "enough_data": {"type": "boolean"},
        "model_version": {"type": "string"},
        "worker_pid": {"type": "integer"},
        "features": {
            "type": "array",
            "description": "Each feature's drift, with its importance beside it.",
            "items": {
                "type": "object",
                "required": ["feature", "psi", "verdict"],
                "properties": {
                    "feature": {"type": "string"},
                    "psi": {"type": "number", "minimum": 0},
                    "verdict": {"type": "string", "enum": ["ok", "warn", "alert"]},
                    "bins": {"type": "object"},
                    "importance": {"type": "number", "minimum": 0, "nullable": True},
                    "importance_rank": {"type": "integer", "minimum": 1, "nullable": True},
                },
            },
        },
        "features_by_concern": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Drifting features first, the most important first; then the rest.",
        },
        "importance_unit": {"type": "string", "nullable": True},
    },
}
# What /model adds to model.json's free-form fields when the model records its importance.
MODEL_METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "importance": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0},
            "description": "Each feature's mean absolute contribution on held-out rows; "
            "absent when the model records none.",
        },
        "importance_rows": {"type": "integer", "minimum": 1},
    },
}
