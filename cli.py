#!/usr/bin/env python
"""Predict an MLB player's height from weight on this machine: ``python cli.py --weight 180``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

import mlib


class WeightType(click.ParamType):
    """A weight in pounds, validated exactly as the HTTP API validates it."""

    name = "pounds"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of pounds.", param, ctx)
        try:
            return mlib.validate_weight(number, name="weight")
        except mlib.InvalidWeight as exc:
            self.fail(str(exc), param, ctx)


WEIGHT = WeightType()
TALL_INCHES = 72


def echo_prediction(result: dict, as_json: bool = False) -> None:
    """Print one prediction: green when taller than 72 inches, red otherwise, as the cookbook."""
    if as_json:
        click.echo(json.dumps(result))
        return
    # Judge the height the reader sees (whole inches), so "6 foot, 0 inches" is never green.
    shown_inches = math.floor(result["height_inches"] + 0.5)
    colour = "green" if shown_inches > TALL_INCHES else "red"
    click.secho(result["height_human_readable"], bg=colour, fg="white")
    if "warning" in result:
        click.secho(f"Warning: {result['warning']}", fg="yellow", err=True)


@click.command()
@click.option("--weight", type=WEIGHT, help="Weight of an MLB player in pounds (asked if missing).")
@click.option("--json", "as_json", is_flag=True, help="Print the prediction as JSON.")
@click.option(
    "--model",
    "model_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to use (default: MODEL_PATH, or model.joblib beside this script).",
)
@click.version_option(mlib.__version__)
def predictcli(weight: float | None, as_json: bool, model_file: Path | None) -> None:
    """Predict the height of an MLB player from weight."""
    try:
        predictor = mlib.load_predictor(model_file)
    except mlib.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    if weight is None:
        weight = click.prompt("MLB Player Weight", type=WEIGHT)
    echo_prediction(predictor.prediction(weight), as_json)


if __name__ == "__main__":
    predictcli()
