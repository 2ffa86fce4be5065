"""``utilscli.py rollout``: read a ``/rollout`` report; promote only when live feedback backs it.

The candidate is the canary when there is one, else the shadow. It must have at least
``min_labels`` labelled rows, and its error may be worse than the champion's by at most
``tolerance`` (relative: 0.05 allows 5% more error), measured on live traffic: for a
canary, each model on the rows it answered; for a shadow, both on the same rows. The
error is the MAE of a regression, the log loss of a classifier (it judges the
probabilities, not only the labels; the accuracies are shown beside it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from cookbook.cli.http_client import one_line
from cookbook.cli.tables import fmt

# The error a promotion compares, by the key a report carries it under, and its name.
ERRORS = (("mae", "MAE"), ("log_loss", "log loss"))


def candidate_of(
    report: dict[str, Any], min_labels: int, tolerance: float
) -> tuple[str | None, str]:
    """Return (the version to promote, why) or (None, why not) for a ``/rollout`` report."""
    champion = report["champion"]
    if report.get("canary"):
        canary = report["canary"]
        version, theirs = canary["version"], canary.get("quality") or {}
        ours = champion.get("quality") or {}
        labelled = theirs.get("labelled", 0)
        key, name = _error_of(theirs)
        candidate_error, champion_error = theirs.get(key), ours.get(key)
        kind = "canary"
    elif report.get("shadow"):
        shadow = report["shadow"]
        version, labelled = shadow["version"], shadow["labelled"]
        key, name = _error_of(shadow, prefix="shadow_")
        candidate_error, champion_error = shadow[f"shadow_{key}"], shadow[f"champion_{key}"]
        kind = "shadow"
    else:
        return None, "there is no canary or shadow model to promote."
    if labelled < min_labels:
        return None, (
            f"the {kind} {version} has {labelled} labelled rows; at least "
            f"{min_labels} are needed (send feedback, or lower --min-labels)."
        )
    if champion_error is None:
        return None, f"the champion {champion['version']} has no labelled rows to compare with."
    limit = champion_error * (1 + tolerance)
    if candidate_error > limit:
        return None, (
            f"the {kind} {version}'s {name} {candidate_error:.3f} is worse than the "
            f"champion's {champion_error:.3f} beyond the tolerance ({limit:.3f})."
        )
    return version, (
        f"the {kind} {version}'s {name} {candidate_error:.3f} on {labelled} labelled "
        f"rows against the champion's {champion_error:.3f}."
    )


def _error_of(figures: dict[str, Any], prefix: str = "") -> tuple[str, str]:
    """Return the key and name of the error *figures* carry (a classifier's: log loss)."""
    return next(((key, name) for key, name in ERRORS if f"{prefix}{key}" in figures), ERRORS[0])


@contextlib.contextmanager
def unreadable_report(url: str) -> Iterator[None]:
    """Turn a ``/rollout`` answer that lacks what the block reads into one line.

    The answer is JSON from a service, perhaps another version or not this service at all:
    a missing key or a value of the wrong type is its fault, never a traceback.
    """
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise click.ClickException(
            f"{url} did not answer with a rollout report this CLI can read "
            f"({type(exc).__name__}: {one_line(exc)})."
        ) from None


def status_lines(report: dict[str, Any]) -> list[str]:
    """Return ``rollout status``'s lines: the champion, the canary and the shadow."""

    def quality(stats: dict | None) -> str:
        if not stats:
            return "no labelled rows yet"
        if "log_loss" in stats:
            return (f"{stats['labelled']} labelled, log loss {fmt(stats['log_loss'], 3)}, "
                    f"accuracy {fmt(stats['accuracy'], 3)}")  # fmt: skip
        return f"{stats['labelled']} labelled, MAE {fmt(stats['mae'], 3)}"

    champion = report["champion"]
    lines = [f"Champion: {champion['version']} ({quality(champion.get('quality'))})"]
    canary = report.get("canary")
    if canary:
        lines.append(f"Canary:   {canary['version']} answers {canary['fraction']:.0%} "
                     f"({quality(canary.get('quality'))})")  # fmt: skip
    shadow = report.get("shadow")
    if shadow is None:
        refused = report.get("shadow_refused")
        lines.append(f"Shadow:   none{f' ({refused})' if refused else ''}")
        return lines
    lines.append(
        f"Shadow:   {shadow['version']}: {shadow['n']} rows scored, mean |difference| "
        f"{fmt(shadow['mean_abs_difference'], 3)}, p95 {fmt(shadow['p95_abs_difference'], 3)}, "
        f"beyond {shadow['tolerance']:g}: {fmt(shadow['share_beyond_tolerance'], 3)}"
    )
    if "label_agreement" in shadow:
        lines.append(f"          same label: {fmt(shadow['label_agreement'], 3)}")
        lines.append(
            f"          labelled {shadow['labelled']}: log loss champion "
            f"{fmt(shadow['champion_log_loss'], 3)}, shadow {fmt(shadow['shadow_log_loss'], 3)}; "
            f"accuracy champion {fmt(shadow['champion_accuracy'], 3)}, shadow "
            f"{fmt(shadow['shadow_accuracy'], 3)}"
        )
        return lines
    lines.append(
        f"          labelled {shadow['labelled']}: MAE champion "
        f"{fmt(shadow['champion_mae'], 3)}, shadow {fmt(shadow['shadow_mae'], 3)}"
    )
    return lines
