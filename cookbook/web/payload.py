"""Turn a JSON request body into a prediction answer, with errors a person can act on.

Shared by every adapter that takes the cookbook's JSON (the Flask views, the page, the
Lambda handler) so they validate alike and answer with the same messages and statuses,
and ``/ready`` says the same in each. No Flask here: the Lambda package ships this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cookbook.core.errors import InvalidInput
from cookbook.core.prediction import Predictor, Row

MAX_BODY_BYTES = 1 << 20
BODY_LIMIT = f"{MAX_BODY_BYTES >> 20} MiB"  # the limit as messages and the OpenAPI document say it
# The one answer to a body over the limit, whichever layer refuses it.
BODY_TOO_LARGE = f"Request body is larger than {BODY_LIMIT}: send fewer rows."
# Ground-truth items one POST /feedback may carry (cookbook.web.quality).
MAX_FEEDBACK_ITEMS = 10_000


def shorten(value: Any, most: int = 40) -> str:
    """Return *value*'s repr for a message, cut to *most* characters (a client's 400-digit
    number or megabyte string is not echoed back whole)."""
    text = repr(value)
    return text if len(text) <= most else f"{text[: most - 3]}..."


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"{name} is not a valid JSON number: numbers must be finite.")


# Python's json accepts NaN and Infinity by default; JSON does not.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode(body: bytes | str, example: str = "send a JSON object") -> Any:
    """Return the JSON value in *body*, or raise ``InvalidInput``; *example* ends messages."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(BODY_TOO_LARGE, status=413)
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise InvalidInput(f"Request body is not UTF-8 text: {example}.") from None
    if not text.strip():
        raise InvalidInput(f"Request body is empty: {example}.")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Request body is not valid JSON ({exc}): {example}.") from None
    except RecursionError:
        raise InvalidInput(f"Request body is nested too deeply: {example}.") from None
    except InvalidInput:  # NaN or Infinity, from _reject_constant
        raise
    except ValueError:  # an integer longer than Python's 4300-digit conversion limit
        raise InvalidInput(f"Request body has a number with too many digits: {example}.") from None


def predict(
    predictor: Predictor, document: Any, query: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[Row], list[Any]]:
    """Return ``(response body, rows, predicted values)`` for a decoded request body.

    A classifier's answer options come from the body, else *query*. Raise ``InvalidInput``
    (400, or 413 for a batch over the row limit).
    """
    options = predictor.read_options(document, query or {})
    rows, values, is_batch = predictor.predict_request(document)
    return predictor.response_body(rows, values, is_batch, options), rows, values


def ready_body(predictor: Predictor, probe_value: Any) -> dict[str, Any]:
    """Return ``/ready``'s body for a model whose probe predicted *probe_value*."""
    body: dict[str, Any] = {
        "status": "ready",
        "model_version": predictor.version,
        "model": predictor.schema.name,
    }
    # The cookbook's field for its height models; every model reports its probe value.
    height_model = "height_inches" in predictor.schema.answer_fields()
    body["probe_height_inches" if height_model else "probe_value"] = probe_value
    return body


def answer_body(
    predictor: Predictor, body: bytes | str, query: Mapping[str, str] | None = None
) -> tuple[dict, list[Row], list[Any]]:
    """Decode a request body and predict it: ``(response body, rows, predicted values)``."""
    return predict(predictor, decode(body, predictor.example_text), query)
