"""The OpenAPI 3 document served at ``/openapi.json``: every route, from the model's schema.

Assembled here from its parts: the schemas of what the model reads and answers
(``openapi_schemas``), the service's operations (``openapi_paths``), the Open Inference
Protocol's and SageMaker's (``openapi_protocols``), the explanations' (``openapi_explanations``);
``openapi_security`` applies the tokens.
"""

from __future__ import annotations

from typing import Any

from cookbook.core.classes import THRESHOLD_FIELD
from cookbook.core.schema import BINARY, Schema
from cookbook.web.openapi_explanations import add_explain_option
from cookbook.web.openapi_fragments import error_response
from cookbook.web.openapi_paths import ADMIN_RELOAD, quality_paths, service_paths
from cookbook.web.openapi_protocols import protocol_paths, protocol_schemas
from cookbook.web.openapi_schemas import class_options, class_query_parameters, component_schemas


def document(schema: Schema, model_version: str, *, admin: bool = False,
             explains: bool = False) -> dict[str, Any]:  # fmt: skip
    """Return the OpenAPI document for the model; *admin* adds the admin routes, *explains*
    (a model that can explain its answers) the ``explain`` option."""
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": schema.title or schema.name,
            "version": model_version,
            "description": schema.description or f"Predicts {schema.target.name}.",
        },
        "paths": service_paths(schema),
        "components": {"schemas": component_schemas(schema)},
    }
    document["paths"].update(protocol_paths(schema))
    document["paths"].update(quality_paths(schema))
    document["components"]["schemas"].update(protocol_schemas(schema))
    if schema.target.is_classification:
        add_class_options(document, schema)
    if explains:
        add_explain_option(document, schema)
    if admin:
        document["paths"]["/admin/reload"] = ADMIN_RELOAD
    return document


def add_class_options(document: dict[str, Any], schema: Schema) -> None:
    """Document a classifier's answer options: request fields and query parameters of
    ``/predict`` and ``/invocations``, the CSV answer's columns, V2's ``parameters``."""
    options = class_options(schema)
    document["components"]["schemas"]["PredictRequest"]["properties"].update(options)
    bad = error_response("Malformed or invalid input, or a bad answer option.",
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
