"""Turn the package's errors into click's: one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from cookbook.core.errors import MlibError


@contextlib.contextmanager
def one_line_errors(exception: type[click.ClickException] = click.ClickException) -> Iterator[None]:
    """Raise *exception* with the message of any ``MlibError`` raised inside the block."""
    try:
        yield
    except MlibError as exc:
        raise exception(str(exc)) from None
