"""The service's own operations in ``/openapi.json``: prediction, the page, the probes, the
model, metrics and drift, feedback and quality, and the admin reload."""

from __future__ import annotations

from typing import Any

from cookbook.core.schema import Schema
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.openapi_fragments import (
    JSON_OBJECT,
    TOO_MUCH,
    error_response,
    json_response,
)
from cookbook.web.payload import MAX_FEEDBACK_ITEMS


def page_responses() -> dict:
    """Return the page's answers: HTML, with the prediction or the error."""
    html = {"text/html": {}}
    return {
        "200": {
            "description": "The page, with the prediction if a weight was sent.",
            "content": html,
        },
        "400": {"description": "The page, with the API's error beside the field.", "content": html},
    }


def service_paths(schema: Schema) -> dict[str, Any]:
    """Return the service's own routes: ``/predict``, the page, the probes, ``/model``,
    ``/metrics``, ``/drift`` and this document."""
    names = schema.feature_names
    return {
        "/predict": {
            "post": {
                "summary": "Predict for one row, or a batch of rows in columns",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/PredictRequest"},
                            "examples": {
                                "single": {"value": schema.example_row()},
                                "batch": {"value": schema.example_batch()},
                            },
                        }
                    },
                },
                "responses": {
                    "200": json_response(
                        "Prediction for one row, or one per row in order.",
                        {
                            "oneOf": [
                                {"$ref": "#/components/schemas/SinglePrediction"},
                                {"$ref": "#/components/schemas/BatchPrediction"},
                            ]
                        },
                    ),
                    "400": error_response(
                        "Malformed or invalid input.", f'Missing key "{names[0]}".'
                    ),
                    "413": error_response(TOO_MUCH, "Too many."),
                    "401": error_response(
                        "API_TOKEN is set and the Bearer token is missing or wrong.",
                        "Send Authorization: Bearer <API_TOKEN> to call /predict.",
                    ),
                },
            }
        },
        "/": {
            "get": {
                "summary": "A page to try the model: a form, a chart and how to call the API",
                "parameters": [
                    {
                        "name": feature.name.lower(),
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "example": str(feature.example)},
                        "description": f"{feature.name}: the page shows the prediction.",
                    }
                    for feature in schema.features
                ],
                "responses": page_responses(),
            },
            "post": {
                "summary": "The page's form without JavaScript: the page with the answer",
                "requestBody": {
                    "required": False,  # an empty form renders the page without an answer
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    f.name.lower(): {"type": "string"} for f in schema.features
                                },
                            }
                        }
                    },
                },
                "responses": page_responses(),
            },
        },
        "/health": {
            "get": {
                "summary": "Liveness: the process answers",
                "responses": {"200": json_response("Alive.", JSON_OBJECT, {"status": "ok"})},
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness: the model is loaded and a probe prediction succeeds",
                "responses": {
                    "200": json_response("Ready.", JSON_OBJECT, {"status": "ready"}),
                    "503": error_response("Not ready.", "Model failed its probe prediction."),
                },
            }
        },
        "/model": {
            "get": {
                "summary": "The served model's metadata (model.json)",
                "responses": {
                    "200": json_response(
                        "Metadata.", {"$ref": "#/components/schemas/ModelMetadata"}
                    )
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics, summed over workers",
                "responses": {"200": {"description": "Text format", "content": {"text/plain": {}}}},
            }
        },
        "/drift": {
            "get": {
                "summary": "Input drift of the answering worker: PSI of its recent "
                "inputs against the training data, by feature (ok < 0.1 <= warn < 0.25)",
                "responses": {
                    "200": json_response(
                        "Drift report.",
                        {"$ref": "#/components/schemas/Drift"},
                        {"psi": 0.012, "verdict": "ok", "window_size": 1000},
                    )
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": json_response("OpenAPI 3.", JSON_OBJECT)},
            }
        },
    }


def quality_paths(schema: Schema) -> dict[str, Any]:
    """Return the ground-truth feedback and online quality routes."""
    target = schema.target
    if target.is_classification:
        actual = {"type": "string", "enum": list(target.classes),
                  "description": f"The true {target.name}, one of its classes."}  # fmt: skip
    else:
        low, high = target.plausible_range()
        actual = {"type": "number", "minimum": low, "maximum": high,
                  "description": f"The true {target.name}, within its training range "
                  "widened by its width on each side."}  # fmt: skip
    item = {
        "type": "object",
        "required": ["request_id", "actual"],
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": 128,
                           "pattern": "^[A-Za-z0-9._:/+=@-]+$",
                           "description": "The X-Request-ID of the answer."},
            "actual": actual,
            "index": {"type": "integer", "minimum": 0, "maximum": MAX_BATCH_ROWS - 1,
                      "description": "The row of a batch answer (default 0)."},
        },
    }  # fmt: skip
    return {
        "/feedback": {"post": {
            "summary": "Join true values with captured predictions (behind API_TOKEN when set)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [item, {"type": "array", "items": item, "minItems": 1,
                                 "maxItems": MAX_FEEDBACK_ITEMS}]}}}},
            "responses": {
                "200": json_response("Joined.", JSON_OBJECT, {"joined": ["3f2a..."]}),
                "400": error_response("A bad value.", '"actual" must be a number.'),
                "401": error_response("API_TOKEN is set and the token is missing or wrong.", "..."),
                "404": error_response("Unknown or expired request id.", "Unknown request id(s)."),
                "409": error_response("Feedback was already given.", "The first value stands."),
                "413": error_response("Too many items.", "Split the feedback."),
            },
        }},
        "/rollout": {"get": {
            "summary": "The champion and the shadow model: how far apart they answer on the "
                       "same rows, and both models' MAE (a classifier's label agreement, log "
                       "loss and accuracy) where feedback arrived",
            "responses": {"200": json_response("Rollout report.", JSON_OBJECT)},
        }},
        "/quality": {"get": {
            "summary": "Online quality per model version from feedback: labelled rows, MAE, "
                       "RMSE, bias and interval coverage (a classifier's log loss, Brier "
                       "score, accuracy, ROC AUC, ECE and set coverage)",
            "parameters": [{"name": "window_seconds", "in": "query", "required": False,
                            "schema": {"type": "number", "exclusiveMinimum": True,
                                       "minimum": 0, "maximum": 1e9},
                            "description": "The window, in seconds (default 86400)."}],
            "responses": {"200": json_response("Quality by version.", JSON_OBJECT),
                          "400": error_response("A bad window.",
                                                "window_seconds must be positive.")},
        }},
    }  # fmt: skip


ADMIN_RELOAD = {
    "post": {
        "summary": "Load MODEL_PATH again: verify it, probe it, then swap it in every worker",
        "description": "Exists only when ADMIN_TOKEN is set; requires "
        "Authorization: Bearer <ADMIN_TOKEN>. A refused model leaves the old one serving.",
        "responses": {
            "200": json_response(
                "Reloaded.",
                {"type": "object", "required": ["status", "model_version"]},
                {"status": "reloaded", "model_version": "62d988d3b1d2"},
            ),
            "401": error_response(
                "Missing or wrong Bearer token.", "Send Authorization: Bearer ..."
            ),
            "409": error_response(
                "Model refused; the previous one keeps serving.", "Model refused."
            ),
            "503": error_response("Another reload is in progress.", "Try again in a moment."),
        },
    }
}
