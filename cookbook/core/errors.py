"""The errors the package raises on purpose; each message is one line a person can act on."""

from __future__ import annotations


class MlibError(Exception):
    """Base of every deliberate error; adapters turn it into a 4xx, a 503 or a CLI line."""


class InvalidInput(MlibError, ValueError):
    """A feature value the model's schema refuses: wrong type, not finite, out of bounds."""


class DataError(MlibError):
    """A data file that is missing, empty or lacks the columns the model needs."""


class ModelError(MlibError):
    """A model file that is missing, tampered with, or was made by other library versions."""


def first_line_of(exc: BaseException) -> str:
    """Return the first line of *exc*'s message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
