"""Bearer-token checks for the protected routes, compared in constant time."""

from __future__ import annotations

import hmac

SCHEME = "bearer "


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """Return whether an ``Authorization`` header carries ``Bearer <expected>``."""
    if not authorization or authorization[: len(SCHEME)].lower() != SCHEME:
        return False
    return token_matches(authorization[len(SCHEME) :], expected)


def token_matches(given: str | None, expected: str) -> bool:
    """Return whether *given* (surrounding spaces ignored) is the token *expected*."""
    if given is None:
        return False
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    return hmac.compare_digest(given.strip().encode(), expected.encode())
