"""The errors the package raises on purpose; each message is one line a person can act on."""

from __future__ import annotations


class MlibError(Exception):
    """Base of every deliberate error; adapters turn it into a 4xx, a 503 or a CLI line."""


class InvalidInput(MlibError, ValueError):
    """Input that cannot be answered: a value the schema refuses, a body that is not JSON.

    ``status`` is the HTTP status every adapter answers it with: 400, or 413 for too much.
    The one error type for a client's mistake, whichever layer finds it.
    """

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class DataError(MlibError):
    """A data file that is missing, empty or lacks the columns the model needs."""


class ModelError(MlibError):
    """A model file that is missing, tampered with, or was made by other library versions."""


def first_line_of(exc: BaseException) -> str:
    """Return the first line of *exc*'s message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
