"""Print a prediction answer for a person (or as JSON), whichever model answered.

An answer in the cookbook's height format (``core.schema.HEIGHT_ANSWER``: ``height_inches``
and ``height_human_readable``) is shown as the cookbook always showed it, green when taller
than 72 inches; a classifier's as its label, its probabilities (most likely first) and its
prediction set; any other answer as its fields, ``name: value``.
"""

from __future__ import annotations

import json
import math

import click

TALL_INCHES = 72  # the height format's colour threshold: 6 foot


def echo_prediction(result: dict, as_json: bool = False) -> None:
    """Print one prediction answer, and its warning (if any) on stderr."""
    if as_json:
        click.echo(json.dumps(result))
        return
    if "height_human_readable" in result:
        # Judge the height the reader sees (whole inches), so "6 foot, 0 inches" is never green.
        shown_inches = math.floor(result["height_inches"] + 0.5)
        colour = "green" if shown_inches > TALL_INCHES else "red"
        click.secho(result["height_human_readable"], bg=colour, fg="white")
    elif "label" in result or "probabilities" in result:
        echo_classes(result)
    else:
        click.echo(", ".join(f"{k}: {_shown(v)}" for k, v in result.items() if k != "warning"))
    if "warning" in result:
        click.secho(f"Warning: {result['warning']}", fg="yellow", err=True)


def _shown(value: object) -> str:
    """Return a field of the answer for a person: an interval as "A to B (90% of cases)"."""
    if isinstance(value, dict) and {"low", "high", "coverage"} <= value.keys():
        return f"{value['low']} to {value['high']} ({value['coverage']:.0%} of cases)"
    return str(value)


def echo_classes(result: dict) -> None:
    """Print a classifier's answer: ``label: X``, one line per class, then the set."""
    if "label" in result:
        click.secho(f"label: {result['label']}", bold=True)
    probabilities = result.get("probabilities") or {}
    for name, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        click.echo(f"  {name}: {p:.4f}")
    if "set" in result:
        members = ", ".join(result["set"]) or "(empty: no class is likely enough)"
        click.echo(f"set ({result['set_coverage']:.0%} coverage): {members}")
