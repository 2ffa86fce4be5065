"""``utilscli.py models``: list, promote and roll back the registry's model versions."""

from __future__ import annotations

import json

import click

from cookbook.cli.errors import one_line_errors
from cookbook.cli.tables import fmt, render_table
from cookbook.lifecycle import registry


@click.group("models")
def models() -> None:
    """List, promote and roll back registered model versions (MODEL_PATH's models/)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def models_list(as_json: bool) -> None:
    """List every registered version, oldest first; * marks the served one."""
    store = registry.Registry()
    try:
        with one_line_errors():
            entries = store.listing()
            history = store.history()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    served = history[-1] if history else None
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "version": e.version,
                        "created_at": e.created_at,
                        "held_out": e.held_out,
                        "data_sha256": e.metadata.get("data", {}).get("sha256"),
                        "served": e.version == served,
                        "promoted_before": e.version in history[:-1],
                    }
                    for e in entries
                ]
            )
        )
        return
    if not entries:
        click.echo(f"No models registered in {store.root}: run `python utilscli.py retrain`.")
        return
    rows = []
    for entry in entries:
        marker = "*" if entry.version == served else ("earlier" if entry.version in history else "")
        rows.append(
            (
                entry.version,
                entry.created_at.replace("+00:00", "Z"),
                fmt(entry.held_out.get("r2"), 4),
                fmt(entry.held_out.get("rmse"), 3),
                str(entry.metadata.get("data", {}).get("sha256", ""))[:12],
                marker,
            )
        )
    click.echo(render_table(("version", "created", "R²", "RMSE", "data", "promoted"), rows))


@models.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Serve VERSION (or a unique prefix of it, at least 4 characters)."""
    store = registry.Registry()
    with one_line_errors():
        entry = store.promote(version)
    click.echo(f"Promoted {entry.version}: {store.served_model} now serves it.")


@models.command("rollback")
def models_rollback() -> None:
    """Serve the previously promoted version again."""
    store = registry.Registry()
    with one_line_errors():
        entry = store.rollback()
    click.echo(f"Rolled back: {store.served_model} serves {entry.version} again.")
