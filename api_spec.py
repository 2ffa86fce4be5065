"""The OpenAPI 3 document served at ``/openapi.json``: every route, with schemas and examples."""

from __future__ import annotations

from typing import Any

import mlib
from payload import MAX_BATCH_WEIGHTS

_WEIGHT = {
    "type": "number",
    # OpenAPI 3.0 takes JSON Schema draft 4's form: a boolean beside "minimum".
    "minimum": 0,
    "exclusiveMinimum": True,
    "maximum": mlib.MAX_WEIGHT_LBS,
    "description": "A player's weight in pounds.",
}
_PREDICTION = {
    "type": "object",
    "required": ["height_inches", "height_human_readable"],
    "properties": {
        "height_inches": {"type": "number", "description": "Predicted height, 0.1 in."},
        "height_human_readable": {"type": "string", "example": "6 foot, 2 inches"},
        "warning": {
            "type": "string",
            "description": "Present only when the weight lies outside the training range.",
        },
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong and how to fix it."}},
}


def _json_response(description: str, schema: dict[str, Any], example: Any = None) -> dict:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def _error(description: str, example: str) -> dict:
    return _json_response(description, {"$ref": "#/components/schemas/Error"}, {"error": example})


def _page_responses() -> dict:
    html = {"text/html": {}}
    return {
        "200": {
            "description": "The page, with the prediction if a weight was sent.",
            "content": html,
        },
        "400": {"description": "The page, with the API's error beside the field.", "content": html},
    }


def openapi_document(model_version: str, *, admin: bool = False) -> dict[str, Any]:
    """Return the OpenAPI document for *model_version*; *admin* adds the admin routes."""
    json_object = {"type": "object", "additionalProperties": True}
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "MLB height from weight",
            "version": model_version,
            "description": "Predicts a Major League Baseball player's height from weight.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict heights from one weight or a batch of weights",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"},
                                "examples": {
                                    "single": {"value": {"Weight": 200}},
                                    "batch": {"value": {"Weight": [180, 200, 250]}},
                                },
                            }
                        },
                    },
                    "responses": {
                        "200": _json_response(
                            "Prediction for one weight, or one per weight in order.",
                            {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/SinglePrediction"},
                                    {"$ref": "#/components/schemas/BatchPrediction"},
                                ]
                            },
                            {
                                "prediction": {
                                    "height_inches": 73.6,
                                    "height_human_readable": "6 foot, 2 inches",
                                }
                            },
                        ),
                        "400": _error("Malformed or invalid input.", 'Missing key "Weight".'),
                        "413": _error("Body over 1 MiB or batch over 10,000.", "Too many."),
                        "401": _error(
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
                            "name": "weight",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "example": "200"},
                            "description": "A weight in pounds: the page shows its prediction.",
                        }
                    ],
                    "responses": _page_responses(),
                },
                "post": {
                    "summary": "The page's form without JavaScript: the page with the answer",
                    "requestBody": {
                        "required": False,  # an empty form renders the page without an answer
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"weight": {"type": "string", "example": "200"}},
                                }
                            }
                        },
                    },
                    "responses": _page_responses(),
                },
            },
            "/health": {
                "get": {
                    "summary": "Liveness: the process answers",
                    "responses": {"200": _json_response("Alive.", json_object, {"status": "ok"})},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: the model is loaded and a probe prediction succeeds",
                    "responses": {
                        "200": _json_response("Ready.", json_object, {"status": "ready"}),
                        "503": _error("Not ready.", "Model failed its probe prediction."),
                    },
                }
            },
            "/model": {
                "get": {
                    "summary": "The served model's metadata (model.json)",
                    "responses": {"200": _json_response("Metadata.", json_object)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, summed over workers",
                    "responses": {
                        "200": {"description": "Text format", "content": {"text/plain": {}}}
                    },
                }
            },
            "/drift": {
                "get": {
                    "summary": "Input drift of the answering worker: PSI of its recent "
                    "weights against the training ones (ok < 0.1 <= warn < 0.25 <= alert)",
                    "responses": {
                        "200": _json_response(
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
                    "responses": {"200": _json_response("OpenAPI 3.", json_object)},
                }
            },
        },
        "components": {
            "schemas": {
                "Weight": _WEIGHT,
                "PredictRequest": {
                    "type": "object",
                    "required": ["Weight"],
                    "properties": {
                        "Weight": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Weight"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Weight"},
                                    "minItems": 1,
                                    "maxItems": MAX_BATCH_WEIGHTS,
                                },
                            ]
                        }
                    },
                },
                "Prediction": _PREDICTION,
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
                "Error": _ERROR,
                "Drift": _DRIFT,
            }
        },
    }
    if admin:
        document["paths"]["/admin/reload"] = _ADMIN_RELOAD
    return document


_DRIFT = {
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
    },
}
_ADMIN_RELOAD = {
    "post": {
        "summary": "Load MODEL_PATH again: verify it, probe it, then swap it in every worker",
        "description": "Exists only when ADMIN_TOKEN is set; requires "
        "Authorization: Bearer <ADMIN_TOKEN>. A refused model leaves the old one serving.",
        "responses": {
            "200": _json_response(
                "Reloaded.",
                {"type": "object", "required": ["status", "model_version"]},
                {"status": "reloaded", "model_version": "62d988d3b1d2"},
            ),
            "401": _error("Missing or wrong Bearer token.", "Send Authorization: Bearer ..."),
            "409": _error("Model refused; the previous one keeps serving.", "Model refused."),
            "503": _error("Another reload is in progress.", "Try again in a moment."),
        },
    }
}
