"""The Open Inference Protocol's and SageMaker's operations in ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from cookbook.core.schema import CategoryFeature, Schema
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.openapi_fragments import (
    JSON_OBJECT,
    TOO_MUCH,
    error_response,
    json_response,
)


def protocol_paths(schema: Schema) -> dict[str, Any]:
    """Return the Open Inference Protocol's and SageMaker's routes."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
            "description": f"The model's name: {schema.name}."}  # fmt: skip
    version = {"name": "version", "in": "path", "required": True,
               "schema": {"type": "string"}, "description": "The model version."}  # fmt: skip
    not_found = error_response("No such model or version.", f"No model 'x': this server serves "
                       f"'{schema.name}'.")  # fmt: skip

    def get(summary: str, parameters: list, example: Any = None) -> dict:
        responses = {"200": json_response("Answer.", JSON_OBJECT, example)}
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
                "200": json_response("One output tensor per answer field.", JSON_OBJECT),
                "400": error_response("Malformed or invalid tensors.", "Missing input tensor(s)."),
                "404": not_found,
                "413": error_response("More rows than one request may carry.", "Split the batch."),
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
                          "responses": {"200": json_response("Ready.", JSON_OBJECT),
                                        "503": error_response("Not ready.",
                                                              "Model failed its probe.")}}},
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
                        "content": {"application/json": {"schema": JSON_OBJECT},
                                    "text/csv": {"schema": {"type": "string"}}}},
                "400": error_response("Invalid input.", "Weight must be a number."),
                "406": error_response("Unacceptable Accept type.", "Cannot answer in 'image/png'."),
                "413": error_response(TOO_MUCH, "Too many."),
                "415": error_response("Unsupported Content-Type.",
                                      "Content-Type is not supported."),
            },
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
