#!/usr/bin/env python
"""Machine learning utility belt: retrain the model, or call any deployed endpoint."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import click

import mlib
from cli import WEIGHT, echo_prediction

DEFAULT_HOST = "http://localhost:8080/predict"


@click.group()
@click.version_option(mlib.__version__)
def cli() -> None:
    """Machine Learning Utility Belt."""


@cli.command("retrain")
@click.option(
    "--tsize",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of rows held out to score the model.",
)
@click.option(
    "--model-name",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(mlib.model_path()),
    show_default="MODEL_PATH or model.joblib beside this script",
    help="Where to write the model; model.json is written beside it.",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: str(mlib.data_path()),
    show_default="DATA_PATH or htwtmlb.csv beside this script",
    help="Training CSV with Weight and Height columns.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def retrain(tsize: float, model_name: Path, data_file: Path, as_json: bool) -> None:
    """Retrain the model and print its held-out R², RMSE and MAE."""
    try:
        report = mlib.train(data_file, model_name.resolve(), test_size=tsize)
    except mlib.MlibError as exc:
        raise click.ClickException(str(exc)) from None
    metrics = report.metrics
    if as_json:
        click.echo(
            json.dumps({"model_version": report.version, "model": str(model_name), **metrics})
        )
        return
    click.echo(f"Model version: {report.version}")
    click.echo(f"Model file:    {model_name}")
    click.echo(f"Held-out rows: {metrics['rows']}")
    click.echo(f"R²:            {metrics['r2']:.4f}")
    click.echo(f"RMSE:          {metrics['rmse']:.3f} in")
    click.echo(f"MAE:           {metrics['mae']:.3f} in")


@cli.command("predict")
@click.option(
    "--weight",
    type=WEIGHT,
    multiple=True,
    required=True,
    help="Weight in pounds; repeat it to send a batch.",
)
@click.option(
    "--host",
    default=lambda: os.environ.get("PREDICT_URL", DEFAULT_HOST),
    show_default=f"PREDICT_URL or {DEFAULT_HOST}",
    help="Full URL of a deployed /predict endpoint.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the endpoint.",
)
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
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint's JSON answer.")
def predict(
    weight: tuple[float, ...], host: str, timeout: float, retries: int, backoff: float,
    as_json: bool,
) -> None:  # fmt: skip
    """Predict heights by calling a deployed endpoint."""
    body = {"Weight": weight[0] if len(weight) == 1 else list(weight)}
    # A prediction changes nothing on the server, so sending it again is safe.
    for attempt in range(retries + 1):
        try:
            answer = post_json(host, body, timeout)
            break
        except Retryable as exc:
            if attempt == retries:
                raise click.ClickException(str(exc)) from None
            time.sleep(backoff * 2**attempt)
    if as_json:
        click.echo(json.dumps(answer))
        return
    for result in answer.get("predictions", [answer.get("prediction")]):
        echo_prediction(result)


RETRY_STATUSES = frozenset({502, 503, 504})


class Retryable(click.ClickException):
    """A failure worth trying again: no connection, or a gateway or overload answer."""


def post_json(url: str, body: dict, timeout: float) -> dict:
    """POST *body* to *url* and return the JSON answer, or raise a one-line ClickException.

    Connection failures and 502/503/504 answers raise ``Retryable``.
    """
    import requests

    try:
        response = requests.post(url, json=body, timeout=timeout)
    except requests.exceptions.Timeout:
        raise click.ClickException(f"{url} did not answer within {timeout:g} s.") from None
    except requests.exceptions.InvalidURL:
        raise click.ClickException(f"{url!r} is not a valid URL.") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.MissingSchema) as exc:
        reason = type(exc).__name__ if not str(exc) else _reason(exc)
        raise Retryable(f"Cannot reach {url}: {reason}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not response.ok:
        detail = answer.get("error") if isinstance(answer, dict) else response.reason
        kind = Retryable if response.status_code in RETRY_STATUSES else click.ClickException
        raise kind(f"{url} answered {response.status_code}: {detail}")
    if not isinstance(answer, dict) or not ("prediction" in answer or "predictions" in answer):
        raise click.ClickException(f"{url} did not answer with a prediction.")
    return answer


def service_root(url: str) -> str:
    """Return the service's base URL from a base URL or a ``.../predict`` URL."""
    url = url.rstrip("/")
    return url[: -len("/predict")] if url.endswith("/predict") else url


@cli.command("health")
@click.option(
    "--host",
    default=lambda: os.environ.get("PREDICT_URL", DEFAULT_HOST),
    show_default=f"PREDICT_URL or {DEFAULT_HOST}",
    help="Base URL of a deployment (a .../predict URL works too).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def health(host: str, timeout: float, as_json: bool) -> None:
    """Check a deployment's liveness, readiness and model version; exit 0 only when ready."""
    import requests

    root = service_root(host)
    findings: dict = {"url": root}
    for check, path in (("live", "/health"), ("ready", "/ready")):
        try:
            response = requests.get(root + path, timeout=timeout)
        except requests.exceptions.RequestException as exc:
            findings[check] = False
            findings[f"{check}_detail"] = _reason(exc) if str(exc) else type(exc).__name__
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


@cli.command("loadtest")
@click.option(
    "--host",
    default=lambda: os.environ.get("PREDICT_URL", DEFAULT_HOST),
    show_default=f"PREDICT_URL or {DEFAULT_HOST}",
    help="Full URL of the /predict endpoint to load.",
)
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
@click.option("--weight", type=WEIGHT, default=200.0, show_default=True, help="Weight sent.")
@click.option("--token", envvar="API_TOKEN", help="Bearer token for /predict (or API_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def loadtest(host: str, seconds: float, concurrency: int, weight: float, token: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Load an endpoint for a bounded time; print requests, failures, req/s and latency."""
    import loadgen

    body = json.dumps({"Weight": weight}).encode()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        result = loadgen.run(host, seconds, concurrency, body=body, headers=headers)
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
        raise SystemExit(1)


def _reason(exc: Exception) -> str:
    # requests nests the socket error several levels deep; pick out the words that name it.
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)|(Failed to resolve '[^']+')", text)
    if match:
        return (match.group(1) or match.group(2)).strip()
    return text.splitlines()[0]


if __name__ == "__main__":
    cli()
