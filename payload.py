"""Turn a JSON request body into predictions, with errors a person can act on.

Shared by every adapter that takes ``{"Weight": ...}`` (the Flask app, the Lambda
handler) so they validate alike and answer with the same error messages.
"""

from __future__ import annotations

import json
from typing import Any

import mlib

MAX_BODY_BYTES = 1 << 20
MAX_BATCH_WEIGHTS = 10_000
EXAMPLE = 'send {"Weight": 200} or {"Weight": [180, 200]}'


class PayloadError(ValueError):
    """A request body that cannot be answered; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _reject_constant(name: str) -> float:
    raise PayloadError(f"{name} is not a valid JSON number: weights must be finite numbers.")


# Python's json accepts NaN and Infinity by default; JSON does not.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode(body: bytes | str) -> Any:
    """Return the JSON value in *body*, or raise ``PayloadError``."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError("Request body is larger than 1 MiB: send fewer weights.", 413)
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise PayloadError("Request body is not UTF-8 text: " + EXAMPLE + ".") from None
    if not text.strip():
        raise PayloadError("Request body is empty: " + EXAMPLE + ".")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"Request body is not valid JSON ({exc}): {EXAMPLE}.") from None
    except RecursionError:
        raise PayloadError("Request body is nested too deeply: " + EXAMPLE + ".") from None
    except PayloadError:  # NaN or Infinity, from _reject_constant
        raise
    except ValueError:  # an integer longer than Python's 4300-digit conversion limit
        raise PayloadError(
            "Request body has a number with too many digits: " + EXAMPLE + "."
        ) from None


def predict(predictor: mlib.Predictor, document: Any) -> dict[str, Any]:
    """Return the response body for a decoded request, or raise ``PayloadError``.

    One weight answers ``{"prediction": {...}}``; a list answers
    ``{"predictions": [...]}`` with one entry per weight, in order.
    """
    if not isinstance(document, dict):
        raise PayloadError("Request body must be a JSON object: " + EXAMPLE + ".")
    if "Weight" not in document:
        raise PayloadError('Missing key "Weight": ' + EXAMPLE + ".")
    weight = document["Weight"]
    try:
        if isinstance(weight, list):
            if not weight:
                raise PayloadError("Weight is an empty list: send at least one weight.")
            if len(weight) > MAX_BATCH_WEIGHTS:
                raise PayloadError(
                    f"Weight has {len(weight)} values; the most one request may carry is "
                    f"{MAX_BATCH_WEIGHTS}: split the batch.",
                    413,
                )
            return {"predictions": predictor.predictions(weight)}
        return {"prediction": predictor.prediction(weight)}
    except mlib.InvalidWeight as exc:
        raise PayloadError(str(exc)) from None


def weights_in(response_body: dict[str, Any]) -> int:
    """Return how many heights a response body carries."""
    return len(response_body["predictions"]) if "predictions" in response_body else 1
