#!/usr/bin/env python
"""Machine learning utility belt: retrain the model, or call any deployed endpoint."""

from __future__ import annotations

import json
import os
import re
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
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint's JSON answer.")
def predict(weight: tuple[float, ...], host: str, timeout: float, as_json: bool) -> None:
    """Predict heights by calling a deployed endpoint."""
    body = {"Weight": weight[0] if len(weight) == 1 else list(weight)}
    answer = post_json(host, body, timeout)
    if as_json:
        click.echo(json.dumps(answer))
        return
    for result in answer.get("predictions", [answer.get("prediction")]):
        echo_prediction(result)


def post_json(url: str, body: dict, timeout: float) -> dict:
    """POST *body* to *url* and return the JSON answer, or raise a one-line ClickException."""
    import requests

    try:
        response = requests.post(url, json=body, timeout=timeout)
    except requests.exceptions.Timeout:
        raise click.ClickException(f"{url} did not answer within {timeout:g} s.") from None
    except requests.exceptions.InvalidURL:
        raise click.ClickException(f"{url!r} is not a valid URL.") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.MissingSchema) as exc:
        reason = type(exc).__name__ if not str(exc) else _reason(exc)
        raise click.ClickException(f"Cannot reach {url}: {reason}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not response.ok:
        detail = answer.get("error") if isinstance(answer, dict) else response.reason
        raise click.ClickException(f"{url} answered {response.status_code}: {detail}")
    if not isinstance(answer, dict) or not ("prediction" in answer or "predictions" in answer):
        raise click.ClickException(f"{url} did not answer with a prediction.")
    return answer


def _reason(exc: Exception) -> str:
    # requests nests the socket error several levels deep; pick out the words that name it.
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)|(Failed to resolve '[^']+')", text)
    if match:
        return (match.group(1) or match.group(2)).strip()
    return text.splitlines()[0]


if __name__ == "__main__":
    cli()
