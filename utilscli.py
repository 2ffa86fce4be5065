#!/usr/bin/env python
"""Machine learning utility belt: retrain the model, or call any deployed endpoint."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

import cookbook
from cli import NUMBER, chunk_rows_option, echo_prediction
from cookbook.cli import ct_report
from cookbook.cli.errors import one_line_errors
from cookbook.cli.gate_report import comparison_cells
from cookbook.cli.http_client import (
    Retryable,
    ServiceError,
    call_json,
    check_token,
    send,
    token_option,
)
from cookbook.cli.tables import fmt as _fmt
from cookbook.cli.tables import render_table
from cookbook.core.files import write_bytes_atomic
from cookbook.core.loading import schema_of, verified_metadata
from cookbook.core.psi import PSI_ALERT, PSI_WARN
from cookbook.core.settings import data_path, model_path
from cookbook.lifecycle import continuous, evaluation, gate, modelcard, registry
from cookbook.lifecycle import drift as offline_drift
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.column_info import DEFAULT_MODEL
from cookbook.lifecycle.training import parse_columns, spec_for

DEFAULT_HOST = "http://localhost:8080/predict"


def host_option(help_text: str):
    """Return the ``--host`` option every command that calls a deployment shares."""
    return click.option(
        "--host",
        default=lambda: os.environ.get("PREDICT_URL", DEFAULT_HOST),
        show_default=f"PREDICT_URL or {DEFAULT_HOST}",
        help=help_text,
    )


def tolerance_option(help_text: str):
    """Return the gate's ``--tolerance`` option (0 to 1, the gate's default)."""
    return click.option(
        "--tolerance",
        type=click.FloatRange(0, 1),
        default=gate.DEFAULT_TOLERANCE,
        show_default=True,
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


@click.group()
@click.version_option(cookbook.__version__)
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
    default=lambda: str(model_path()),
    show_default="MODEL_PATH or model.joblib beside this script",
    help="Where to write the model; model.json is written beside it.",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: str(data_path()),
    show_default="DATA_PATH or htwtmlb.csv beside this script",
    help="Training CSV with the target and feature columns.",
)
@click.option(
    "--target",
    default=DEFAULT_MODEL["target"],
    show_default=True,
    help="Column to predict (numeric).",
)
@click.option(
    "--features",
    default=",".join(DEFAULT_MODEL["features"]),
    show_default=True,
    help="Comma-separated numeric feature columns.",
)
@click.option(
    "--categorical",
    default="",
    help="Comma-separated categorical feature columns (one-hot encoded).",
)
@click.option("--name", "model_name_text", default=None, help="The model's name in its schema.")
@click.option(
    "--golden",
    "golden_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labelled CSV to use as the golden set [default: the pinned held-out rows of "
    "the original htwtmlb.csv].",
)
@tolerance_option("Largest allowed drop in R² (absolute) against the served model, on either set.")
@click.option("--force", is_flag=True, help="Promote the candidate even if it is worse.")
@click.option(
    "--coverage",
    type=click.FloatRange(0.5, 0.99),
    default=0.9,
    show_default=True,
    help="Coverage of the split-conformal prediction interval every answer carries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def retrain(
    ctx: click.Context,
    tsize: float,
    model_name: Path,
    data_file: Path,
    target: str,
    features: str,
    categorical: str,
    model_name_text: str | None,
    golden_file: Path | None,
    tolerance: float,
    force: bool,
    coverage: float,
    as_json: bool,
) -> None:
    """Retrain, compare with the served model, and promote the new model if it is not worse."""
    spec = spec_for(target, parse_columns(features), parse_columns(categorical), model_name_text)
    with one_line_errors():
        result = gate.retrain(
            data_file,
            model_name.resolve(),
            spec=spec,
            test_size=tsize,
            tolerance=tolerance,
            golden_file=golden_file,
            force=force,
            coverage=coverage,
        )
    metrics = result.metrics
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model_version": result.entry.version,
                    "model": str(model_name),
                    **metrics,
                    "promoted": result.promoted,
                    "served_version": result.served_version,
                    "comparisons": [c.as_dict() for c in result.comparisons],
                    "notes": result.notes,
                }
            )
        )
        if not result.promoted:
            ctx.exit(1)
        return
    click.echo(f"Model version: {result.entry.version}")
    click.echo(f"Model file:    {model_name}")
    click.echo(f"Held-out rows: {metrics['rows']}")
    click.echo(f"R²:            {metrics['r2']:.4f}")
    unit = " in" if spec.target == DEFAULT_MODEL["target"] else ""
    click.echo(f"RMSE:          {metrics['rmse']:.3f}{unit}")
    click.echo(f"MAE:           {metrics['mae']:.3f}{unit}")
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.served_version is not None:
        click.echo("")
        click.echo(
            f"Candidate {result.entry.version} against served {result.served_version} "
            f"(R² may drop by at most {tolerance:g}):"
        )
        click.echo(comparison_table(result.comparisons))
    if result.promoted and result.served_version == result.entry.version:
        click.echo(f"Unchanged: {model_name} already serves this model ({result.entry.version}).")
        return
    if result.promoted:
        forced = " (forced)" if not result.passed else ""
        click.echo(f"Promoted{forced}: {model_name} now serves {result.entry.version}.")
        return
    raise click.ClickException(
        f"Candidate {result.entry.version} is worse than the served model beyond the tolerance "
        "and was not promoted (it stays in the registry): use --force to promote it anyway."
    )


def comparison_table(comparisons: list[gate.Comparison]) -> str:
    """Return the candidate-versus-served comparison as an aligned text table."""
    return render_table(*comparison_cells(comparisons))


@cli.command("ct")
@click.option("--data-url", required=True, help="The new training CSV: https:// or file://.")
@click.option(
    "--force",
    is_flag=True,
    help="Retrain even if the data is unchanged; promote even if the gate refuses.",
)
@click.option(
    "--pr-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(Path(__file__).resolve().parent / ".ct" / "pull-request.md"),
    show_default=".ct/pull-request.md beside this script",
    help="Where a promotion writes the pull request: the title, a blank line, the body.",
)
@tolerance_option("Largest allowed drop in R² (absolute) against the served model, on either set.")
@click.pass_context
def ct(ctx: click.Context, data_url: str, force: bool, pr_file: Path, tolerance: float) -> None:
    """Continuous training: fetch new data, check its drift, retrain through the gate.

    Exit codes: 0 promoted (the pull request is in --pr-file), 3 nothing to do (the
    data is unchanged), 4 refused by the quality gate (the served model is untouched),
    1 the run failed (one line on stderr).
    """
    served = model_path()
    with one_line_errors():
        run = continuous.run(data_url, served, force=force, tolerance=tolerance)
    click.echo(f"Data: {data_url}")
    click.echo(f"sha256: {run.data_sha256}")
    report = run.drift
    if report is not None:
        click.echo(
            f"Drift against {report['model_version']}: {report['verdict']} "
            f"(worst feature {report['worst_feature']}, PSI {report['psi']:.4f})"
        )
    if run.retrain is not None:
        click.echo(comparison_table(run.retrain.comparisons))
        for note in run.retrain.notes:
            click.echo(f"Note: {note}")
    click.echo(ct_report.verdict_line(run))
    if run.outcome is continuous.Outcome.PROMOTED:
        text = ct_report.pull_request_text(run, Path(__file__).resolve().parent)
        try:
            pr_file.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(pr_file, text.encode("utf-8"))
        except OSError as exc:
            raise click.ClickException(f"Cannot write {pr_file}: {exc.strerror}") from None
        click.echo(f"Pull request: {pr_file}")
    else:
        pr_file.unlink(missing_ok=True)  # a stale one must not be opened for this run
    ctx.exit(run.outcome.exit_code)


@cli.command("predict")
@click.option(
    "--weight",
    type=NUMBER,
    multiple=True,
    required=True,
    help="Weight in pounds; repeat it to send a batch.",
)
@host_option("Full URL of a deployed /predict endpoint.")
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
def predict(
    weight: tuple[float, ...], host: str, timeout: float, retries: int, backoff: float,
    token: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Predict heights by calling a deployed endpoint."""
    body = {"Weight": weight[0] if len(weight) == 1 else list(weight)}
    # A prediction changes nothing on the server, so sending it again is safe.
    for attempt in range(retries + 1):
        try:
            answer = call_json("POST", host, timeout=timeout, token=token, body=body)
            break
        except Retryable as exc:
            if attempt == retries:
                raise
            # An overloaded service says when to come back; never sooner than the backoff.
            time.sleep(max(backoff * 2**attempt, exc.retry_after_seconds))
    results = answer.get("predictions", [answer.get("prediction")])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ServiceError(f"{host} did not answer with a prediction.")
    if as_json:
        click.echo(json.dumps(answer))
        return
    for result in results:
        echo_prediction(result)


def service_root(url: str) -> str:
    """Return the service's base URL from a base URL or a ``.../predict`` URL."""
    url = url.rstrip("/")
    return url[: -len("/predict")] if url.endswith("/predict") else url


@cli.command("health")
@host_option("Base URL of a deployment (a .../predict URL works too).")
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


@cli.command("loadtest")
@host_option("Full URL of the /predict endpoint to load.")
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
@click.option("--weight", type=NUMBER, default=200.0, show_default=True, help="Weight sent.")
@token_option()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def loadtest(host: str, seconds: float, concurrency: int, weight: float, token: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Load an endpoint for a bounded time; print requests, failures, req/s and latency."""
    from cookbook.cli import loadgen

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
        raise click.ClickException(loadgen.failure_line(result, host, token_sent=bool(token)))


@cli.command("score")
@click.option(
    "--input",
    "pattern",
    required=True,
    metavar="PATTERN",
    help="CSV or Parquet files to score: a folder, or a glob (quote it); columns: the features.",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) folder for the part files; rejected rows go to DIR/rejects.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="Format of the scored and the rejected rows' files.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="An existing Dask cluster's scheduler, e.g. tcp://10.0.0.5:8786 "
    "[default: start a local cluster].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes of the local cluster [default: the number of cores].",
)
@chunk_rows_option("Rows a worker reads and scores at a time (its memory grows with it).")
@click.pass_context
def score(ctx: click.Context, pattern: str, output_dir: Path, output_format: str,
          scheduler: str | None, workers: int | None, chunk_rows: int) -> None:  # fmt: skip
    """Score CSV or Parquet files on a Dask cluster into part files; exit 3 if rows were rejected.

    The model is MODEL_PATH's (or model.joblib beside this script); an existing cluster's
    workers must be able to import this project and read the files and the model.
    """
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers is for the local cluster, not with --scheduler.", ctx)
    # dask, pyarrow and pandas: only this command pays for them.
    from cookbook.lifecycle import distributed_scoring
    from cookbook.lifecycle.batch import EXIT_SOME_REJECTED, BatchError

    # A stopped run (kill, a scheduler's timeout) still removes its staging folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with one_line_errors():
            report = distributed_scoring.score(
                load_predictor(model_path()), pattern, output_dir, scheduler=scheduler,
                workers=workers, output_format=output_format, chunk_rows=chunk_rows,
            )  # fmt: skip
    except BatchError as exc:
        raise click.ClickException(str(exc)) from None
    kinds = f" ({report.kinds()})" if report.rejected else ""
    click.echo(f"{report.counts()}{kinds}; output in {output_dir}.", err=True)
    ctx.exit(EXIT_SOME_REJECTED if report.rejected else 0)


# ------------------------------------------------------------------ lifecycle


@cli.group("models")
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
                _fmt(entry.held_out.get("r2"), 4),
                _fmt(entry.held_out.get("rmse"), 3),
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


LABELLED_CSV = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.command("evaluate")
@click.option(
    "--data",
    "data_file",
    type=LABELLED_CSV,
    required=True,
    help="Labelled CSV with the model's feature and target columns (and optionally Position).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(data_file: Path, as_json: bool) -> None:
    """Print the served model's R², RMSE and MAE on labelled data, overall and by Position."""
    with one_line_errors():
        report = evaluation.evaluate(model_path(), data_file)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"Model {report['model_version']} on {data_file}")
    skipped = report["rows_missing_values"] + report["rows_invalid"]
    if skipped:
        click.echo(f"Skipped {skipped} row(s): missing values or values the model refuses.")
    groups = [("all", report["overall"])] + sorted((report["by_group"] or {}).items())
    rows = [
        (name, str(m["rows"]), _fmt(m["r2"], 4), _fmt(m["rmse"], 3), _fmt(m["mae"], 3))
        for name, m in groups
    ]
    click.echo(
        render_table(
            (report["group_by"] or "rows", "n", "R²", "RMSE", "MAE"),
            rows,
        )
    )


class DriftCheckFailed(click.ClickException):
    """A drift check that could not run: exit 3, apart from the verdicts' 0, 1 and 2."""

    exit_code = 3


DRIFT_EXIT_CODES = {"ok": 0, "warn": 1, "alert": 2}


@cli.command("drift")
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV whose inputs to compare with the training data (columns: the features).",
)
@click.option(
    "--column",
    default=None,
    help="Column holding the feature, for a model of one feature [default: its name].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def drift(ctx: click.Context, data_file: Path, column: str | None, as_json: bool) -> None:
    """Compare a file's inputs with the training data, feature by feature: PSI and KS.

    The worst feature's PSI sets the exit code: 0 ok (PSI < 0.1), 1 warn (PSI < 0.25),
    2 alert, 3 the check could not run.
    """
    with one_line_errors(DriftCheckFailed):
        served = model_path()
        columns = None
        if column is not None:
            names = verified_metadata(served)["schema"]["features"]
            if len(names) != 1:
                raise DriftCheckFailed("--column is for a model of one feature.")
            columns = {names[0]["name"]: column}
        report = offline_drift.drift(served, data_file, columns)
    if as_json:
        click.echo(json.dumps(report))
        ctx.exit(DRIFT_EXIT_CODES[report["verdict"]])
    click.echo(f"Model {report['model_version']}: {data_file}")
    for feature in report["features"]:
        rejected = f", {feature['rows_rejected']} rejected" if feature["rows_rejected"] else ""
        click.echo(f"\n{feature['feature']} ({feature['rows']} values{rejected})")
        rows = [
            (
                str(b["category"]) if "category" in b else f"{b['low']:g}-{b['high']:g}",
                f"{b['expected_share']:.1%}",
                f"{b['actual_share']:.1%}",
            )
            for b in feature["bins"]
        ]
        click.echo(render_table(("bin", "training", "this file"), rows))
        click.echo(f"PSI: {feature['psi']:.4f} ({feature['verdict']})")
        if feature["ks"] is not None:
            click.echo(
                f"KS:  {feature['ks']:.4f} (5% critical value {feature['ks_critical_5pct']:.4f})"
            )
    click.echo(
        f"\nVerdict: {report['verdict']} (worst feature {report['worst_feature']}, PSI "
        f"{report['psi']:.4f}; warn at {PSI_WARN:g}, alert at {PSI_ALERT:g})"
    )
    ctx.exit(DRIFT_EXIT_CODES[report["verdict"]])


@cli.group("capture")
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
def capture_export(since: float | None, output: Path, capture_url: str | None) -> None:
    """Write captured rows as a CSV that `drift --data` and `evaluate --data` read.

    The store is only read: a SQLite file is opened read-only and never created.
    """
    from cookbook.cli.capture_export import captured_csv
    from cookbook.lifecycle.capture_reader import open_reader
    from cookbook.lifecycle.capture_store import CaptureError
    from cookbook.web.capture import default_url

    to_stdout = str(output) == "-"
    if not to_stdout and not output.resolve().parent.is_dir():
        raise click.ClickException(f"Cannot write {output}: its folder does not exist.")
    url = capture_url or os.environ.get("CAPTURE_URL")
    port = os.environ.get("PORT", "")
    with one_line_errors():
        schema = schema_of(verified_metadata(model_path()))
        try:
            text, count = captured_csv(open_reader(url or default_url(str(model_path()), port)),
                                       schema, since)  # fmt: skip
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


@cli.group("rollout")
def rollout() -> None:
    """Watch a candidate model on live traffic before it is promoted."""


@rollout.command("status")
@host_option("Base URL of a deployment (a .../predict URL works too).")
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
@tolerance_option("Largest allowed MAE increase over the champion's, relative (0.05: 5%).")
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


@cli.command("card")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Where to write the card; - for stdout [default: MODEL_CARD.md beside the model].",
)
def card(output: Path | None) -> None:
    """Write a Markdown model card for the served model."""
    served = model_path()
    with one_line_errors():
        if output is not None and str(output) == "-":
            click.echo(modelcard.render_card(verified_metadata(served)), nl=False)
            return
        target = modelcard.write_card(served, output)
    click.echo(f"Wrote the model card to {target}")


if __name__ == "__main__":
    cli()
