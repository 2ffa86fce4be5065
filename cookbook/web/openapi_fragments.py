"""The pieces every operation of ``/openapi.json`` is built from: JSON answers and errors."""

from __future__ import annotations

from typing import Any

from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.payload import BODY_LIMIT

# What a 413 means, said from the limits themselves.
TOO_MUCH = f"Body over {BODY_LIMIT} or batch over {MAX_BATCH_ROWS:,} rows."

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong and how to fix it."}},
}


# Any JSON object: the answers documented by example rather than by schema.
JSON_OBJECT = {"type": "object", "additionalProperties": True}


def json_response(description: str, schema: dict[str, Any], example: Any = None) -> dict:
    """Return a response of *schema* in JSON, with its *example* if given."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def error_response(description: str, example: str) -> dict:
    """Return an error response: the ``Error`` schema, with *example* as its message."""
    return json_response(description, {"$ref": "#/components/schemas/Error"}, {"error": example})
