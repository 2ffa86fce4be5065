"""``utilscli.py predict``, ``health`` and ``loadtest``: call a deployed service over HTTP.

``predict`` and ``loadtest`` send any model's features (``--set``, ``--body``; ``--weight``
is the cookbook's shortcut); ``--host`` is the service's base URL or its ``/predict`` URL.
"""

from __future__ import annotations

import json

import click

from cookbook.cli import loadgen
from cookbook.cli.http_client import (
    ServiceError,
    call_json_retrying,
    predict_url,
    send,
    service_root,
)
from cookbook.cli.options import (
    WEIGHT_FEATURE,
    body_option,
    host_option,
    set_option,
    timeout_option,
    token_option,
)
from cookbook.cli.params import NUMBER
from cookbook.cli.prediction_output import echo_prediction
from cookbook.cli.request_body import request_body

SET_HELP = (
    "A feature's value (a JSON number when it reads as one, else a string), for any model; "
    "repeat it for each feature"
)


@click.command("predict")
@click.option(
    "--weight",
    type=NUMBER,
    multiple=True,
    help=f"Shortcut for --set {WEIGHT_FEATURE}=...; repeat it to send a batch.",
)
@set_option(SET_HELP + ", and a name to send a batch.")
@body_option()
@host_option()
@timeout_option(10.0, "Seconds to wait for the endpoint.")
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    help="Retries after a connection failure or a 502/503/504 (never after a 4xx).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0),
    default=0.25,
    show_default=True,
    help="Seconds before the first retry; each retry waits twice as long as the last.",
)
@token_option()
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint's JSON answer.")
@click.pass_context
def predict(
    ctx: click.Context, weight: tuple[float, ...], assignments: tuple[tuple[str, str], ...],
    body: dict | None, host: str, timeout: float, retries: int, backoff: float,
    token: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Predict by calling a deployed endpoint with --weight, --set or --body."""
    document = request_body(ctx, weight, assignments, body)
    if document is None:
        raise click.UsageError("Give the features: --weight, --set NAME=VALUE or --body.", ctx)
    url = predict_url(host)
    # A prediction changes nothing on the server, so sending it again is safe.
    answer = call_json_retrying("POST", url, retries=retries, backoff_seconds=backoff,
                                timeout=timeout, token=token, body=document)  # fmt: skip
    results = answer.get("predictions", [answer.get("prediction")])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ServiceError(f"{url} did not answer with a prediction.")
    if as_json:
        click.echo(json.dumps(answer))
        return
    for result in results:
        echo_prediction(result)


@click.command("health")
@host_option()
@timeout_option(5.0, "Seconds to wait for each answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def health(host: str, timeout: float, as_json: bool) -> None:
    """Check a deployment's liveness, readiness and model version; exit 0 only when ready."""
    root = service_root(host)
    findings: dict = {"url": root}
    for check, path in (("live", "/health"), ("ready", "/ready")):
        try:
            response = send("GET", root + path, timeout=timeout)
        except ServiceError as exc:  # a finding of the report, not the command's failure
            findings[check] = False
            findings[f"{check}_detail"] = exc.reason
            continue
        findings[check] = response.status_code == 200
        findings[f"{check}_detail"] = f"HTTP {response.status_code}"
        if check == "ready":
            findings["model_version"] = response.headers.get("X-Model-Version")
    if as_json:
        click.echo(json.dumps(findings))
    else:
        for check in ("live", "ready"):
            state = "yes" if findings[check] else "no"
            click.echo(f"{check.capitalize() + ':':7}{state} ({findings[check + '_detail']})")
        click.echo(f"Model: {findings.get('model_version') or 'unknown'}")
    if not findings["ready"]:
        raise SystemExit(1)


@click.command("loadtest")
@host_option()
@click.option(
    "--seconds",
    type=click.FloatRange(0, 300, min_open=True),
    default=10.0,
    show_default=True,
    help="How long to send requests; at most 300 (5 minutes).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Connections sending requests at once (one thread each), at most 256.",
)
@click.option(
    "--weight",
    type=NUMBER,
    help=f"Shortcut for --set {WEIGHT_FEATURE}=... [default: --body "
    f"'{loadgen.DEFAULT_BODY.decode()}', the cookbook's example, when no --set or --body "
    "is given].",
)
@set_option(SET_HELP + ".")
@body_option()
@token_option()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def loadtest(ctx: click.Context, host: str, seconds: float, concurrency: int,
             weight: float | None, assignments: tuple[tuple[str, str], ...], body: dict | None,
             token: str | None, as_json: bool) -> None:  # fmt: skip
    """Load an endpoint for a bounded time; print requests, failures, req/s and latency."""
    weights = () if weight is None else (weight,)
    document = request_body(ctx, weights, assignments, body)
    sent = loadgen.DEFAULT_BODY if document is None else json.dumps(document).encode()
    url = predict_url(host)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        result = loadgen.run(url, seconds, concurrency, body=sent, headers=headers)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.summary()))
    else:
        s = result.summary()
        click.echo(
            f"Requests:  {s['requests']} in {s['seconds']} s ({s['requests_per_second']} req/s)"
        )
        failures = ", ".join(f"{k}: {v}" for k, v in s["failures"].items()) or "none"
        click.echo(f"Failures:  {s['failed']} (by status: {failures})")
        click.echo(f"Latency:   p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms")
    if result.failed or not result.latencies_s:
        raise ServiceError(loadgen.failure_line(result, url, token_sent=bool(token)))
