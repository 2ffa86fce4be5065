"""The options several commands share, each defined once: ``--host``, ``--timeout``, ``--token``,
``--tolerance``, ``--coverage``, ``--chunk-rows``, and the request's ``--weight``/``--set``/
``--body``.

Light on import (click and the standard library): ``cli.py`` imports it on its fast path.
"""

from __future__ import annotations

import os
import re

import click

from cookbook.cli.params import ASSIGNMENT, JSON_OBJECT

DEFAULT_HOST = "http://localhost:8080/predict"
WEIGHT_FEATURE = "Weight"  # the feature --weight sets: the cookbook's own model's
# What an HTTP header value may hold: visible ASCII and spaces (RFC 9110's field-vchar).
HEADER_SAFE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


def host_option(help_text: str = "Base URL of a deployment (a .../predict URL works too)."):
    """Return the ``--host`` option every command that calls a deployment shares."""
    return click.option(
        "--host",
        default=lambda: os.environ.get("PREDICT_URL", DEFAULT_HOST),
        show_default=f"PREDICT_URL or {DEFAULT_HOST}",
        help=help_text,
    )


def timeout_option(seconds: float, help_text: str):
    """Return a ``--timeout`` option in seconds, *seconds* by default."""
    return click.option(
        "--timeout",
        type=click.FloatRange(0, min_open=True),
        default=seconds,
        show_default=True,
        help=help_text,
    )


def tolerance_option(help_text: str):
    """Return the gate's ``--tolerance`` option (0 to 1, the gate's default)."""
    from cookbook.lifecycle.gate import DEFAULT_TOLERANCE  # training code: not on cli.py's path

    return click.option(
        "--tolerance",
        type=click.FloatRange(0, 1),
        default=DEFAULT_TOLERANCE,
        show_default=True,
        help=help_text,
    )


GATE_TOLERANCE_HELP = (
    "Largest allowed drop in R² (absolute) against the served model, on either set."
)


def coverage_option():
    """Return ``--coverage``, of the interval or set (``retrain``, ``models import``)."""
    return click.option(
        "--coverage",
        type=click.FloatRange(0.5, 0.99),
        default=0.9,
        show_default=True,
        help="Coverage of the split-conformal prediction interval (a classifier's prediction "
        "set) every answer carries.",
    )


def positive_class_option():
    """Return ``--positive-class``, a binary classifier's (``retrain``, ``models import``)."""
    return click.option(
        "--positive-class",
        default=None,
        help="A binary classifier's positive class: the one whose probability its threshold "
        "applies to [default: the second of its classes, in the estimator's classes_ order "
        "(sorted)].",
    )


def check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a token that cannot travel in an HTTP header (a newline, non-ASCII)."""
    if value is not None and not HEADER_SAFE.fullmatch(value):
        raise click.BadParameter("a token is printable ASCII without surrounding spaces.")
    return value


def token_option(help_text: str = "The service's API_TOKEN, sent as a Bearer token."):
    """Return the ``--token`` option (default: ``API_TOKEN``) every protected call shares."""
    return click.option(
        "--token",
        envvar="API_TOKEN",
        show_envvar=True,
        callback=check_token,
        help=help_text,
    )


def chunk_rows_option(help_text: str):
    """Return ``--chunk-rows``, the batch commands' option (``cli.py``, ``utilscli.py score``)."""
    return click.option(
        "--chunk-rows",
        type=click.IntRange(min=1),
        default=200_000,  # batch.DEFAULT_CHUNK_ROWS, not imported: --weight must not load pandas
        show_default=True,
        help=help_text,
    )


def set_option(help_text: str):
    """Return ``--set NAME=VALUE`` (repeatable): one feature's value, for any model."""
    return click.option(
        "--set", "assignments", type=ASSIGNMENT, multiple=True, metavar="NAME=VALUE",
        help=help_text,
    )  # fmt: skip


def body_option():
    """Return ``--body JSON``: the whole request document, for any model."""
    return click.option(
        "--body",
        type=JSON_OBJECT,
        metavar="JSON",
        help="The whole request document, e.g. '{\"Weight\": [180, 200]}' (not with --weight "
        "or --set).",
    )
