"""What a continuous-training run says: its one-line verdict, and the pull request it asks for.

The pull-request file is the title on the first line, a blank line, then the Markdown body:
the data (URL, sha256, rows), its drift against the served model, the quality gate's
comparison table, the new prediction interval (a classifier's set), and the files the
promotion changed.
"""

from __future__ import annotations

from pathlib import Path

from cookbook.cli.gate_report import comparison_cells
from cookbook.cli.tables import fmt, render_markdown_table
from cookbook.core.importance import entries_by_concern
from cookbook.core.loading import schema_of
from cookbook.lifecycle.continuous import Outcome, TrainingRun


def verdict_line(run: TrainingRun) -> str:
    """Return the run's outcome and why, in one line."""
    return f"{run.outcome.label.capitalize()}: {run.reason}."


def pull_request_text(run: TrainingRun, root: Path) -> str:
    """Return the title, a blank line and the body of the pull request for a promotion.

    Paths are written relative to *root* (the project), as the pull request shows them.
    """
    result = run.retrain
    if run.outcome is not Outcome.PROMOTED or result is None:
        raise ValueError("Only a promotion asks for a pull request.")
    metadata = result.entry.metadata
    data = metadata["data"]
    target = schema_of(metadata).target
    was = f"was {run.served_version}" if run.served_version else "the first model"
    forced = " (forced)" if run.forced else ""
    lines = [
        f"Retrain: serve model {result.entry.version} ({was}){forced}",
        "",
        f"Continuous training: {run.reason}.",
        "",
        "## Data",
        "",
        f"- URL: {run.data_url}",
        f"- sha256: `{run.data_sha256}`",
        f"- rows: {data['rows']:,} ({data['rows_dropped']:,} dropped); trained on "
        f"{data['rows_train']:,}, held out {data['rows_test']:,}",
        "",
        *_drift_lines(run),
        f"## Quality gate ({'log loss may rise' if target.is_classification else 'R² may drop'}"
        f" by at most {result.comparisons[0].tolerance:g})",
        "",
        render_markdown_table(*comparison_cells(result.comparisons)),
        "",
        *[f"- {note}" for note in result.notes],
        *([""] if result.notes else []),
        *_calibration_lines(metadata, target.unit),
        "## Files",
        "",
        *[f"- `{_relative(path, root)}`" for path in run.changed_files],
        "",
        "Made by `python utilscli.py ct --data-url URL`, which "
        "`.github/workflows/retrain.yml` runs.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _drift_lines(run: TrainingRun) -> list[str]:
    report = run.drift
    if report is None:
        return []
    # By concern: the drifting features that the served model relies on most come first.
    rows = [(f["feature"], f"{f['rows']:,}", f"{f['psi']:.4f}", f["verdict"], fmt(f["ks"], 4),
             fmt(f["ks_critical_5pct"], 4), fmt(f["importance"], 4))
            for f in entries_by_concern(report)]  # fmt: skip
    unit = report["importance_unit"]
    header = ("feature", "rows", "PSI", "verdict", "KS", "KS 5% critical",
              f"importance ({unit})" if unit else "importance")  # fmt: skip
    return [
        f"## Drift against the served model {report['model_version']}",
        "",
        render_markdown_table(header, rows),
        "",
        f"Verdict: **{report['verdict']}** (PSI warns at {report['thresholds']['warn']:g}, "
        f"alerts at {report['thresholds']['alert']:g}).",
        "",
    ]  # fmt: skip


def _calibration_lines(metadata: dict, unit: str | None) -> list[str]:
    """Return the new model's interval (a classifier's prediction set) and its coverage."""
    interval, classes = metadata.get("interval"), metadata.get("prediction_set")
    calibration = interval or classes
    if not calibration:
        return []
    golden = calibration.get("golden_coverage")
    if interval:
        heading = "Prediction interval"
        what = f"± {interval['half_width']:.2f}{'' if unit is None else ' ' + unit}"
    else:
        heading = "Prediction set"
        what = (f"The classes of probability at least {1 - classes['quantile']:.4f} (mean set "
                f"size {classes['mean_set_size']:.2f})")  # fmt: skip
    return [
        f"## {heading}",
        "",
        f"{what} for {calibration['coverage']:.0%} coverage; "
        f"held-out coverage {calibration['held_out_coverage']:.1%}"
        + ("" if golden is None else f", golden-set coverage {golden:.1%}") + ".",
        "",
    ]  # fmt: skip


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
