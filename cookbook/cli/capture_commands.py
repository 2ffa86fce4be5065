"""``utilscli.py capture export``: write the predictions the service captured as a CSV."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from cookbook.cli.errors import one_line_errors
from cookbook.core.files import write_bytes_atomic
from cookbook.core.loading import schema_of, verified_metadata
from cookbook.core.settings import model_path


@dataclass(frozen=True)
class DefaultStore:
    """The service's rule naming its own capture store from MODEL_PATH and PORT.

    The rule is the web layer's (``cookbook.web.capture.default_url``), which this layer may
    not import: the entry point that assembles both layers hands it over in ``ctx.obj``.
    """

    url_for: Callable[[str, str], str]


pass_default_store = click.make_pass_decorator(DefaultStore)


@click.group("capture")
def capture() -> None:
    """Export the predictions the service captured (CAPTURE_URL's store)."""


def check_since(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Return ``--since`` as epoch seconds, refused before anything is opened."""
    from cookbook.cli.capture_export import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@capture.command("export")
@click.option(
    "--since",
    default=None,
    callback=check_since,
    help="Only rows from this time on: an ISO date-time (UTC if no zone) or an age "
    "such as 30m, 24h, 7d [default: every row].",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="CSV file to write (atomically); - for stdout.",
)
@click.option(
    "--capture-url",
    default=None,
    help="The store: sqlite:///PATH or postgresql://... [default: CAPTURE_URL, or this "
    "deployment's SQLite file as the server picks it from MODEL_PATH and PORT].",
)
@pass_default_store
def capture_export(
    default_store: DefaultStore, since: float | None, output: Path, capture_url: str | None
) -> None:
    """Write captured rows as a CSV that `drift --data` and `evaluate --data` read.

    The store is only read: a SQLite file is opened read-only and never created.
    """
    from cookbook.cli.capture_export import captured_csv
    from cookbook.lifecycle.capture_database import CaptureError
    from cookbook.lifecycle.capture_reader import open_reader

    to_stdout = str(output) == "-"
    if not to_stdout and not output.resolve().parent.is_dir():
        raise click.ClickException(f"Cannot write {output}: its folder does not exist.")
    url = capture_url or os.environ.get("CAPTURE_URL")
    port = os.environ.get("PORT", "")
    with one_line_errors():
        schema = schema_of(verified_metadata(model_path()))
        store_url = url or default_store.url_for(str(model_path()), port)
        try:
            text, count = captured_csv(open_reader(store_url), schema, since)
        except CaptureError as exc:
            if url:
                raise
            # The default file is named by MODEL_PATH and PORT: a server run with another
            # PORT (or none) captured elsewhere.
            raise CaptureError(
                f"{exc} That is the default store for this MODEL_PATH and PORT="
                f"{port or '(unset)'}: pass --capture-url, or set CAPTURE_URL or PORT as the "
                "service has them."
            ) from None
    if to_stdout:
        click.echo(text, nl=False)
        return
    try:
        write_bytes_atomic(output, text.encode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"Cannot write {output}: {exc.strerror}") from None
    click.echo(f"Wrote {count:,} captured rows to {output}", err=True)
