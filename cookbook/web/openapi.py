"""The OpenAPI 3 document served at ``/openapi.json``: every route, from the model's schema."""

from __future__ import annotations

from typing import Any

from cookbook.core.classes import LABEL, OUTPUT_FIELD, PROBABILITIES, THRESHOLD_FIELD
from cookbook.core.schema import BINARY, HEIGHT_ANSWER, CategoryFeature, Feature, Schema
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.payload import BODY_LIMIT, MAX_FEEDBACK_ITEMS

# What a 413 means, said from the limits themselves.
TOO_MUCH = f"Body over {BODY_LIMIT} or batch over {MAX_BATCH_ROWS:,} rows."

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


def document(schema: Schema, model_version: str, *, admin: bool = False) -> dict[str, Any]:
    """Return the OpenAPI document for the model; *admin* adds the admin routes."""
    json_object = {"type": "object", "additionalProperties": True}
    names = schema.feature_names
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": schema.title or schema.name,
            "version": model_version,
            "description": schema.description or f"Predicts {schema.target.name}.",
        },
        "paths": {
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
                        "200": _json_response(
                            "Prediction for one row, or one per row in order.",
                            {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/SinglePrediction"},
                                    {"$ref": "#/components/schemas/BatchPrediction"},
                                ]
                            },
                        ),
                        "400": _error("Malformed or invalid input.", f'Missing key "{names[0]}".'),
                        "413": _error(TOO_MUCH, "Too many."),
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
                            "name": feature.name.lower(),
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "example": str(feature.example)},
                            "description": f"{feature.name}: the page shows the prediction.",
                        }
                        for feature in schema.features
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
                                    "properties": {
                                        f.name.lower(): {"type": "string"} for f in schema.features
                                    },
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
                    "inputs against the training data, by feature (ok < 0.1 <= warn < 0.25)",
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
                "Error": _ERROR,
                "Drift": _DRIFT,
            }
        },
    }
    document["paths"].update(protocol_paths(schema))
    document["paths"].update(quality_paths(schema))
    document["components"]["schemas"].update(protocol_schemas(schema))
    if schema.target.is_classification:
        add_class_options(document, schema)
    if admin:
        document["paths"]["/admin/reload"] = _ADMIN_RELOAD
    return document


def add_class_options(document: dict[str, Any], schema: Schema) -> None:
    """Document a classifier's answer options: request fields and query parameters of
    ``/predict`` and ``/invocations``, the CSV answer's columns, V2's ``parameters``."""
    options = class_options(schema)
    document["components"]["schemas"]["PredictRequest"]["properties"].update(options)
    bad = _error("Malformed or invalid input, or a bad answer option.",
                 '"output" must be "label" or "probabilities", got \'logits\'.')  # fmt: skip
    for path in ("/predict", "/invocations"):
        operation = document["paths"][path]["post"]
        operation["parameters"] = class_query_parameters(schema)
        operation["responses"]["400"] = bad
    invocations = document["paths"]["/invocations"]["post"]
    invocations["description"] = (
        "With Accept: text/csv a classifier answers one label per line; with "
        "output=probabilities (the body's field, the query's parameter, or the media type's "
        "parameter, Accept: text/csv;output=probabilities) one column per class, "
        f"{', '.join(schema.target.classes)}, with no header."
    )
    if schema.target.task == BINARY:
        infer = document["components"]["schemas"]["InferRequest"]["properties"]
        infer["parameters"] = {
            "type": "object",
            "properties": {THRESHOLD_FIELD: options[THRESHOLD_FIELD]},
            "description": "A binary model's threshold for this request.",
        }


API_TOKEN_SCHEME = "apiToken"
ADMIN_TOKEN_SCHEME = "adminToken"
_UNAUTHORIZED = _error("Missing or wrong Bearer token.", "Send Authorization: Bearer ...")


def secure(document: dict[str, Any], requirements: dict[tuple[str, str], str | None]) -> None:
    """Declare the bearer schemes in *document* and apply them to its operations.

    *requirements* maps ``(path, method)`` to the scheme an operation needs
    (``API_TOKEN_SCHEME`` or ``ADMIN_TOKEN_SCHEME``), to ``"optional"`` for one that needs
    it only for some requests (the page: its shell is open, its predictions are not), or
    to None for an open one.
    """
    schemes = document["components"].setdefault("securitySchemes", {})
    for name, token in ((API_TOKEN_SCHEME, "API_TOKEN"), (ADMIN_TOKEN_SCHEME, "ADMIN_TOKEN")):
        schemes[name] = {"type": "http", "scheme": "bearer",
                         "description": f"The service's {token}."}  # fmt: skip
    for (path, method), scheme in requirements.items():
        operation = document["paths"].get(path, {}).get(method)
        if operation is None or scheme is None:
            continue
        if scheme == "optional":
            operation["security"] = [{}, {API_TOKEN_SCHEME: []}]
        else:
            operation["security"] = [{scheme: []}]
        operation["responses"].setdefault("401", _UNAUTHORIZED)


def protocol_paths(schema: Schema) -> dict[str, Any]:
    """Return the Open Inference Protocol's and SageMaker's routes."""
    json_object = {"type": "object", "additionalProperties": True}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
            "description": f"The model's name: {schema.name}."}  # fmt: skip
    version = {"name": "version", "in": "path", "required": True,
               "schema": {"type": "string"}, "description": "The model version."}  # fmt: skip
    not_found = _error("No such model or version.", f"No model 'x': this server serves "
                       f"'{schema.name}'.")  # fmt: skip

    def get(summary: str, parameters: list, example: Any = None) -> dict:
        responses = {"200": _json_response("Answer.", json_object, example)}
        if parameters:
            responses["404"] = not_found
        return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}

    def infer(parameters: list) -> dict:
        return {"post": {
            "summary": "Open Inference Protocol inference: one input tensor per feature",
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/InferRequest"}}}},
            "responses": {
                "200": _json_response("One output tensor per answer field.", json_object),
                "400": _error("Malformed or invalid tensors.", "Missing input tensor(s)."),
                "404": not_found,
                "413": _error("More rows than one request may carry.", "Split the batch."),
            },
        }}  # fmt: skip

    return {
        "/v2": get("Server metadata (Open Inference Protocol)", [], {"extensions": []}),
        "/v2/health/live": get("Liveness (Open Inference Protocol)", [], {"live": True}),
        "/v2/health/ready": get("Readiness (Open Inference Protocol)", [], {"ready": True}),
        "/v2/models/{name}": get("Model metadata: inputs and outputs", [name]),
        "/v2/models/{name}/versions/{version}": get("Model metadata", [name, version]),
        "/v2/models/{name}/ready": get("Model readiness", [name]),
        "/v2/models/{name}/versions/{version}/ready": get("Model readiness", [name, version]),
        "/v2/models/{name}/infer": infer([name]),
        "/v2/models/{name}/versions/{version}/infer": infer([name, version]),
        "/ping": {"get": {"summary": "SageMaker health check: 200 when the model is ready",
                          "responses": {"200": _json_response("Ready.", json_object),
                                        "503": _error("Not ready.", "Model failed its probe.")}}},
        "/invocations": {"post": {
            "summary": "SageMaker inference: the /predict JSON body, or CSV rows of "
                       f"{', '.join(schema.feature_names)} (no header)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                "text/csv": {"schema": {"type": "string"},
                             "example": ",".join(str(f.example) for f in schema.features)},
            }},
            "responses": {
                "200": {"description": "The /predict answer, or one value per line (text/csv).",
                        "content": {"application/json": {"schema": json_object},
                                    "text/csv": {"schema": {"type": "string"}}}},
                "400": _error("Invalid input.", "Weight must be a number."),
                "406": _error("Unacceptable Accept type.", "Cannot answer in 'image/png'."),
                "413": _error(TOO_MUCH, "Too many."),
                "415": _error("Unsupported Content-Type.", "Content-Type is not supported."),
            },
        }},
    }  # fmt: skip


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
    json_object = {"type": "object", "additionalProperties": True}
    return {
        "/feedback": {"post": {
            "summary": "Join true values with captured predictions (behind API_TOKEN when set)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [item, {"type": "array", "items": item, "minItems": 1,
                                 "maxItems": MAX_FEEDBACK_ITEMS}]}}}},
            "responses": {
                "200": _json_response("Joined.", json_object, {"joined": ["3f2a..."]}),
                "400": _error("A bad value.", '"actual" must be a number.'),
                "401": _error("API_TOKEN is set and the token is missing or wrong.", "..."),
                "404": _error("Unknown or expired request id.", "Unknown request id(s)."),
                "409": _error("Feedback was already given.", "The first value stands."),
                "413": _error("Too many items.", "Split the feedback."),
            },
        }},
        "/rollout": {"get": {
            "summary": "The champion and the shadow model: how far apart they answer on the "
                       "same rows, and both models' MAE (a classifier's label agreement, log "
                       "loss and accuracy) where feedback arrived",
            "responses": {"200": _json_response("Rollout report.", json_object)},
        }},
        "/quality": {"get": {
            "summary": "Online quality per model version from feedback: labelled rows, MAE, "
                       "RMSE, bias and interval coverage (a classifier's log loss, Brier "
                       "score, accuracy, ROC AUC, ECE and set coverage)",
            "parameters": [{"name": "window_seconds", "in": "query", "required": False,
                            "schema": {"type": "number", "exclusiveMinimum": True,
                                       "minimum": 0, "maximum": 1e9},
                            "description": "The window, in seconds (default 86400)."}],
            "responses": {"200": _json_response("Quality by version.", json_object),
                          "400": _error("A bad window.", "window_seconds must be positive.")},
        }},
    }  # fmt: skip


def protocol_schemas(schema: Schema) -> dict[str, Any]:
    """Return the component schemas of the Open Inference Protocol's request."""
    tensor = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string", "enum": list(schema.feature_names)},
            "datatype": {"type": "string", "enum": ["FP32", "FP64", "INT32", "INT64", "BYTES"]},
            "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 1,
                      "maxItems": 2},
            "data": {"type": "array", "maxItems": MAX_BATCH_ROWS},
            "parameters": {"type": "object"},
        },
    }  # fmt: skip
    return {
        "InferTensor": tensor,
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/InferTensor"},
                           "minItems": 1},
                "outputs": {"type": "array", "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string",
                                            "enum": list(schema.answer_fields())}}}},
            },
            "example": {"inputs": [
                {"name": f.name, "datatype": "BYTES" if isinstance(f, CategoryFeature)
                 else "FP64", "shape": [1], "data": [f.example]} for f in schema.features]},
        },
    }  # fmt: skip


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
