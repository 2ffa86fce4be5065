"""``utilscli.py card``: write the served model's Markdown model card."""

from __future__ import annotations

from pathlib import Path

import click

from cookbook.cli.errors import one_line_errors
from cookbook.core.loading import verified_metadata
from cookbook.core.settings import model_path
from cookbook.lifecycle import modelcard


@click.command("card")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Where to write the card (a classifier's SVG pictures go beside it); - for the "
    "Markdown alone on stdout [default: MODEL_CARD.md beside the model].",
)
def card(output: Path | None) -> None:
    """Write a Markdown model card for the served model."""
    served = model_path()
    with one_line_errors():
        if output is not None and str(output) == "-":
            click.echo(modelcard.render_card(verified_metadata(served)), nl=False)
            return
        card_file, *pictures = modelcard.write_card(served, output)
    drawn = f" and its pictures {', '.join(str(p) for p in pictures)}" if pictures else ""
    click.echo(f"Wrote the model card to {card_file}{drawn}")
