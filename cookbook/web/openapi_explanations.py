"""How ``/openapi.json`` documents explanations, for a model that can give them: the
``explain`` option of ``/predict`` and ``/invocations`` (body field and query parameter),
the ``explanation`` of each answer, and V2's ``explain`` parameter and its two outputs."""

from __future__ import annotations

from typing import Any

from cookbook.core.answer_options import EXPLAIN_FIELD, MAX_EXPLAINED_ROWS
from cookbook.core.explained import BASE, CONTRIBUTIONS, EXPLAINED_VALUE, EXPLANATION_FIELD
from cookbook.core.schema import Schema
from cookbook.web.openapi_fragments import TOO_MUCH, error_response

WHAT_IS_EXPLAINED = (
    "the unrounded prediction (a classifier's: the logit of the class it answered, its "
    "log-odds for a binary model)"
)


def explanation_schema(schema: Schema) -> dict[str, Any]:
    """Return the JSON schema of one answer's ``explanation``."""
    number = {"type": "number"}
    return {
        "type": "object",
        "description": f"Present when the request asked for it (explain): {WHAT_IS_EXPLAINED} "
        "split into one contribution per feature; base + the sum of the contributions equals "
        "prediction to float rounding.",
        "required": [BASE, CONTRIBUTIONS, EXPLAINED_VALUE],
        "properties": {
            BASE: {**number, "description": "The model's value at the training means."},
            CONTRIBUTIONS: {
                "type": "object",
                "description": "What each feature moves the value away from the base, in the "
                "schema's feature order.",
                "required": list(schema.feature_names),
                "additionalProperties": False,
                "properties": {name: number for name in schema.feature_names},
            },
            EXPLAINED_VALUE: {
                **number,
                "description": f"The value explained: {WHAT_IS_EXPLAINED}.",
            },
        },
    }


def add_explain_option(document: dict[str, Any], schema: Schema) -> None:
    """Document ``explain`` on ``/predict``, ``/invocations`` and V2 infer, and the
    ``explanation`` in every answer, in *document* (built by ``openapi.document``)."""
    schemas = document["components"]["schemas"]
    option = {
        "type": "boolean",
        "description": f"Add each row's explanation to its answer (at most "
        f"{MAX_EXPLAINED_ROWS:,} rows per request; a tree model whose explanations are "
        "costly, fewer: as many as fit EXPLAIN_BUDGET_SECONDS).",
    }
    schemas["PredictRequest"]["properties"][EXPLAIN_FIELD] = option
    schemas["Prediction"]["properties"][EXPLANATION_FIELD] = explanation_schema(schema)
    query = {
        "name": EXPLAIN_FIELD, "in": "query", "required": False,
        "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
        "description": option["description"] + " The body's field, if sent, wins.",
    }  # fmt: skip
    too_many = error_response(f"{TOO_MUCH[:-1]}, or over {MAX_EXPLAINED_ROWS:,} explained rows.",
                              "Too many.")  # fmt: skip
    for path in ("/predict", "/invocations"):
        operation = document["paths"][path]["post"]
        operation["parameters"] = [*operation.get("parameters", []), query]
        operation["responses"]["413"] = too_many
    infer = schemas["InferRequest"]["properties"]
    parameters = infer["parameters"]
    parameters.setdefault("properties", {})[EXPLAIN_FIELD] = {
        "type": "boolean",
        "description": f"Add the outputs {CONTRIBUTIONS} (FP64, [n, "
        f"{len(schema.feature_names)}]: each row's contribution of "
        f"{', '.join(schema.feature_names)}, row-major) and {BASE} (FP64, [n]); naming "
        "either in outputs implies it.",
    }
    infer["outputs"]["items"]["properties"]["name"]["enum"] += [CONTRIBUTIONS, BASE]
