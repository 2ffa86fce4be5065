"""``utilscli.py rollout``: watch a candidate on live traffic; promote it if feedback backs it."""

from __future__ import annotations

import json

import click

from cookbook.cli.errors import one_line_errors
from cookbook.cli.http_client import ServiceError, call_json, service_root
from cookbook.cli.options import (
    check_token,
    host_option,
    timeout_option,
    token_option,
    tolerance_option,
)
from cookbook.core.loading import verified_metadata
from cookbook.lifecycle import registry


@click.group("rollout")
def rollout() -> None:
    """Watch a candidate model on live traffic before it is promoted."""


@rollout.command("status")
@host_option()
@timeout_option(10.0, "Seconds to wait for the answer.")
@token_option()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rollout_status(host: str, timeout: float, token: str | None, as_json: bool) -> None:
    """Print the champion and the shadow with their figures (GET /rollout)."""
    from cookbook.cli.rollout import status_lines, unreadable_report

    url = service_root(host) + "/rollout"
    report = call_json("GET", url, timeout=timeout, token=token)
    if as_json:
        click.echo(json.dumps(report))
        return
    with unreadable_report(url):
        lines = status_lines(report)
    click.echo("\n".join(lines))


@rollout.command("shadow")
@click.argument("version")
def rollout_shadow(version: str) -> None:
    """Print the SHADOW_MODEL_PATH that makes registered VERSION the shadow (verified first)."""
    store = registry.Registry()
    with one_line_errors():
        entry = store.entry(version)
        verified_metadata(entry.model_file)
    click.echo(f"SHADOW_MODEL_PATH={entry.model_file}")
    click.echo(
        "Set it in the service's environment and restart it to score this version.", err=True
    )


@rollout.command("promote")
@host_option("Base URL of the deployment whose candidate to promote.")
@timeout_option(10.0, "Seconds to wait for each answer.")
@click.option(
    "--min-labels",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Labelled rows the candidate needs before it can be promoted.",
)
@tolerance_option(
    "Largest allowed increase of the MAE (a classifier's log loss) over the champion's, "
    "relative (0.05: 5%)."
)
@token_option("The service's API_TOKEN, sent as a Bearer token to read GET /rollout.")
@click.option(
    "--admin-token",
    envvar="ADMIN_TOKEN",
    show_envvar=True,
    callback=check_token,
    help="The service's ADMIN_TOKEN, sent as a Bearer token to POST /admin/reload.",
)
def rollout_promote(host: str, timeout: float, min_labels: int, tolerance: float,
                    token: str | None, admin_token: str | None) -> None:  # fmt: skip
    """Promote the canary (or shadow) in the registry and reload, if live feedback backs it."""
    from cookbook.cli.rollout import candidate_of, unreadable_report

    root = service_root(host)
    report = call_json("GET", f"{root}/rollout", timeout=timeout, token=token)
    with unreadable_report(f"{root}/rollout"):
        version, why = candidate_of(report, min_labels, tolerance)
    if version is None:
        raise click.ClickException(f"Not promoted: {why}")
    store = registry.Registry()
    with one_line_errors():
        if version != store.served_version():
            store.entry(version)  # an unknown version fails before the lock creates models/
        entry = store.promote(version, reason="rollout")
    click.echo(f"Promoted {entry.version}: {why}")
    if not admin_token:
        click.echo("Reload the service to serve it: SIGHUP, or POST /admin/reload.", err=True)
        return
    try:
        answer = call_json("POST", f"{root}/admin/reload", timeout=timeout, token=admin_token,
                           token_hint="check --admin-token or ADMIN_TOKEN")  # fmt: skip
    except ServiceError as exc:
        raise click.ClickException(f"{entry.version} is promoted in the registry but the service "
                                   f"did not reload: {exc.message}") from None  # fmt: skip
    click.echo(f"Reloaded: {root} serves {answer.get('model_version', 'an unnamed version')}.")
