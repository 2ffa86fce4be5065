"""Canary routing: a share of requests is answered by a candidate model.

With ``CANARY_MODEL_PATH`` and ``CANARY_FRACTION`` (0-1), that share of requests is
answered by the canary: by a hash of ``X-Canary-Key`` when the client sends one (so the
same key always gets the same model), at random otherwise. ``X-Model-Version`` and the
capture (role ``canary``) say which model answered. The canary is verified and probed
before serving, like the champion; reloads (SIGHUP, ``/admin/reload``) load it again.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from cookbook.core.errors import MlibError
from cookbook.core.prediction import Predictor
from cookbook.core.schema import Target
from cookbook.web.reload import load_verified

CANARY = "canary"


@dataclass
class Canary:
    """The canary model and the share of traffic it answers."""

    path: str
    fraction: float
    predictor: Predictor

    @classmethod
    def load(cls, path: str, fraction: float, champion: Predictor) -> Canary:
        """Verify and probe the canary at *path*; raise ``MlibError`` if it cannot serve."""
        if not 0 <= fraction <= 1:
            raise MlibError(f"CANARY_FRACTION must be between 0 and 1, got {fraction!r}.")
        predictor = load_verified(path)
        check_comparable(predictor, champion, "Canary")
        return cls(path, fraction, predictor)

    def answers(self, key: str | None) -> bool:
        """Return whether the canary answers a request with this ``X-Canary-Key`` (or none)."""
        if key:
            digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
            return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction
        return random.random() < self.fraction

    def reload(self, champion: Predictor) -> str | None:
        """Load the canary's path again; keep the current one if refused (return why)."""
        try:
            predictor = load_verified(self.path)
            check_comparable(predictor, champion, "Canary")
        except MlibError as exc:
            return str(exc)
        self.predictor = predictor
        return None


def check_comparable(candidate: Predictor, champion: Predictor, what: str) -> None:
    """Raise ``MlibError`` unless *candidate* takes the champion's features and predicts
    what it predicts: a number, or the same classes (in the same order), so their answers,
    their figures and the feedback on them compare."""
    if candidate.schema.feature_names != champion.schema.feature_names:
        theirs = ", ".join(candidate.schema.feature_names)
        ours = ", ".join(champion.schema.feature_names)
        raise MlibError(f"{what} model takes {theirs}; the champion takes {ours}.")
    theirs, ours = candidate.schema.target, champion.schema.target
    if (theirs.task, theirs.classes) != (ours.task, ours.classes):
        raise MlibError(f"{what} model predicts {_predicts(theirs)}; the champion predicts "
                        f"{_predicts(ours)}.")  # fmt: skip


def _predicts(target: Target) -> str:
    if not target.is_classification:
        return "a number"
    return f"the {target.task} classes {', '.join(target.classes)}"
