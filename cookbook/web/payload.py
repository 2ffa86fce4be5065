"""Turn a JSON request body into a prediction answer, with errors a person can act on.

Shared by every adapter that takes the cookbook's JSON (the Flask views, the page, the
Lambda handler) so they validate alike and answer with the same messages and statuses.
"""

from __future__ import annotations

import json
from typing import Any

from cookbook.core.errors import InvalidInput
from cookbook.core.prediction import Predictor, Row

MAX_BODY_BYTES = 1 << 20
# The one answer to a body over the limit, whichever layer refuses it.
BODY_TOO_LARGE = f"Request body is larger than {MAX_BODY_BYTES >> 20} MiB: send fewer rows."


class PayloadError(ValueError):
    """A request body that cannot be answered; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def shorten(value: Any, most: int = 40) -> str:
    """Return *value*'s repr for a message, cut to *most* characters (a client's 400-digit
    number or megabyte string is not echoed back whole)."""
    text = repr(value)
    return text if len(text) <= most else f"{text[: most - 3]}..."


def _reject_constant(name: str) -> float:
    raise PayloadError(f"{name} is not a valid JSON number: numbers must be finite.")


# Python's json accepts NaN and Infinity by default; JSON does not.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode(body: bytes | str, example: str = "send a JSON object") -> Any:
    """Return the JSON value in *body*, or raise ``PayloadError``; *example* ends messages."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(BODY_TOO_LARGE, 413)
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise PayloadError(f"Request body is not UTF-8 text: {example}.") from None
    if not text.strip():
        raise PayloadError(f"Request body is empty: {example}.")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"Request body is not valid JSON ({exc}): {example}.") from None
    except RecursionError:
        raise PayloadError(f"Request body is nested too deeply: {example}.") from None
    except PayloadError:  # NaN or Infinity, from _reject_constant
        raise
    except ValueError:  # an integer longer than Python's 4300-digit conversion limit
        raise PayloadError(f"Request body has a number with too many digits: {example}.") from None


def predict(predictor: Predictor, document: Any) -> tuple[dict[str, Any], list[Row], list[float]]:
    """Return ``(response body, rows, predicted values)`` for a decoded request body.

    Raise ``PayloadError`` (400, or 413 for a batch over the row limit).
    """
    try:
        rows, values, is_batch = predictor.predict_request(document)
    except InvalidInput as exc:
        raise PayloadError(str(exc), getattr(exc, "status", 400)) from None
    return predictor.response_body(rows, values, is_batch), rows, values


def answer_body(predictor: Predictor, body: bytes | str) -> tuple[dict, list[Row], list[float]]:
    """Decode a request body and predict it: ``(response body, rows, predicted values)``."""
    return predict(predictor, decode(body, predictor.example_text))
