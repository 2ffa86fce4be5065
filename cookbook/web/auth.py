"""Bearer-token checks for the protected routes, compared in constant time."""

from __future__ import annotations

import hmac

SCHEME = "bearer "


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """Return whether an ``Authorization`` header carries ``Bearer <expected>``."""
    if not authorization or authorization[: len(SCHEME)].lower() != SCHEME:
        return False
    given = authorization[len(SCHEME) :].strip()
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    return hmac.compare_digest(given.encode(), expected.encode())
