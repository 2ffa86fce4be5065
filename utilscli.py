#!/usr/bin/env python
"""Machine learning utility belt: retrain the model, or call any deployed endpoint.

Each group of commands lives in its own module of ``cookbook/cli/``; this script only
assembles them under one ``click`` group.
"""

from __future__ import annotations

import click

import cookbook
from cookbook.cli import (
    capture_commands,
    card_commands,
    models_commands,
    predict_commands,
    quality_commands,
    rollout_commands,
    score_commands,
    train_commands,
)

COMMANDS = (
    train_commands.retrain,
    train_commands.ct,
    predict_commands.predict,
    predict_commands.health,
    predict_commands.loadtest,
    score_commands.score,
    models_commands.models,
    quality_commands.evaluate,
    quality_commands.drift,
    capture_commands.capture,
    rollout_commands.rollout,
    card_commands.card,
)


@click.group()
@click.version_option(cookbook.__version__)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Machine Learning Utility Belt."""
    ctx.obj = capture_commands.DefaultStore(service_capture_url)


def service_capture_url(model_path: str, port: str) -> str:
    """Return the capture store the service uses by default (its rule, imported when needed)."""
    from cookbook.web.capture import default_url  # the web layer: only `capture export` pays

    return default_url(model_path, port)


for command in COMMANDS:
    cli.add_command(command)


if __name__ == "__main__":
    cli()
