"""``utilscli.py rollout promote``: promote the candidate only when live feedback backs it.

The candidate is the canary when there is one, else the shadow. It must have at least
``min_labels`` labelled rows, and its MAE may be worse than the champion's by at most
``tolerance`` (relative: 0.05 allows 5% more error), measured on live traffic: for a
canary, each model on the rows it answered; for a shadow, both on the same rows.
"""

from __future__ import annotations

from typing import Any


def candidate_of(
    report: dict[str, Any], min_labels: int, tolerance: float
) -> tuple[str | None, str]:
    """Return (the version to promote, why) or (None, why not) for a ``/rollout`` report."""
    champion = report["champion"]
    if report.get("canary"):
        canary = report["canary"]
        version, theirs, ours = canary["version"], canary.get("quality"), champion.get("quality")
        labelled = (theirs or {}).get("labelled", 0)
        candidate_mae = (theirs or {}).get("mae")
        champion_mae = (ours or {}).get("mae")
        kind = "canary"
    elif report.get("shadow"):
        shadow = report["shadow"]
        version, labelled = shadow["version"], shadow["labelled"]
        candidate_mae, champion_mae = shadow["shadow_mae"], shadow["champion_mae"]
        kind = "shadow"
    else:
        return None, "there is no canary or shadow model to promote."
    if labelled < min_labels:
        return None, (
            f"the {kind} {version} has {labelled} labelled rows; at least "
            f"{min_labels} are needed (send feedback, or lower --min-labels)."
        )
    if champion_mae is None:
        return None, f"the champion {champion['version']} has no labelled rows to compare with."
    limit = champion_mae * (1 + tolerance)
    if candidate_mae > limit:
        return None, (
            f"the {kind} {version}'s MAE {candidate_mae:.3f} is worse than the "
            f"champion's {champion_mae:.3f} beyond the tolerance ({limit:.3f})."
        )
    return version, (
        f"the {kind} {version}'s MAE {candidate_mae:.3f} on {labelled} labelled "
        f"rows against the champion's {champion_mae:.3f}."
    )
