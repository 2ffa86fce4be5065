"""Continuous training: fetch new data, measure its drift, retrain through the gate, conclude.

``utilscli.py ct`` and the weekly workflow (``.github/workflows/retrain.yml``) run this
one function, so a laptop and CI do the same thing. Three outcomes, each with its own
exit code:

- **promoted**: the candidate passed the quality gate (or ``force``) and is now the served
  pair, with its registry entry and a refreshed model card: open a pull request;
- **nothing to do**: the data is the very file the served model was trained on, or
  retraining on it gives the served model again;
- **refused**: the gate found the candidate worse on the new data's held-out rows or on
  the golden set; the served pair is untouched (the candidate stays in the registry). A
  served model this project cannot retrain (one imported, fitted elsewhere) is refused too,
  before anything is trained.

The candidate is of the served model's family (``ModelSpec.of_metadata``): a gradient-boosted
model is retrained as one, not as the cookbook's Ridge pipeline.

The new data is fetched into a temporary folder, never over ``htwtmlb.csv``: the cookbook's
golden set pin of format 1 is rebuilt from that original file, and it must stay the yardstick.
"""

from __future__ import annotations

import enum
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cookbook.core.errors import DataError, ModelError
from cookbook.core.layout import metadata_path, present_side_files
from cookbook.core.loading import verified_metadata
from cookbook.lifecycle import gate, modelcard
from cookbook.lifecycle.baselines import recorded_feature_sets
from cookbook.lifecycle.conformal import DEFAULT_COVERAGE
from cookbook.lifecycle.drift import drift
from cookbook.lifecycle.fetching import fetch
from cookbook.lifecycle.model_spec import DEFAULT_SPEC, ModelSpec
from cookbook.lifecycle.registry import Registry


class Outcome(enum.Enum):
    """What a continuous-training run concluded, with its exit code."""

    PROMOTED = ("promoted", 0)
    NOTHING_TO_DO = ("nothing to do", 3)
    REFUSED = ("refused", 4)

    def __init__(self, label: str, exit_code: int) -> None:
        self.label = label
        self.exit_code = exit_code


@dataclass
class TrainingRun:
    """One run: the data it fetched, its drift, the gate's verdict, and the outcome."""

    outcome: Outcome
    reason: str
    data_url: str
    data_sha256: str
    served_version: str | None  # what was served before the run
    drift: dict[str, Any] | None = None
    retrain: gate.RetrainResult | None = None
    forced: bool = False
    changed_files: list[Path] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        """Return the candidate's version, if the run trained one."""
        return None if self.retrain is None else self.retrain.entry.version


def run(data_url: str, served_model: Path, *, force: bool = False,
        tolerance: float = gate.DEFAULT_TOLERANCE,
        golden_file: Path | None = None) -> TrainingRun:  # fmt: skip
    """Fetch *data_url*, compare it with what *served_model* learnt, retrain through the gate.

    The golden set is *golden_file*'s rows if given, else the one pinned in the registry
    (a first version pins its own held-out rows).

    *force* retrains even when the data is unchanged and promotes even when the gate
    refuses: an operator's deliberate choice, which the pull request then says.
    Raise ``MlibError`` (one line) when the data cannot be fetched or read, or the
    served model cannot be verified.
    """
    served = _served_metadata(served_model)
    with tempfile.TemporaryDirectory(prefix="cookbook-ct-") as folder:
        data_file = Path(folder) / (Path(urlsplit(data_url).path).name or "data.csv")
        sha256 = fetch(data_url, data_file)
        served_version = None if served is None else served["model_version"]
        common = {"data_url": data_url, "data_sha256": sha256, "served_version": served_version}
        try:
            spec = DEFAULT_SPEC if served is None else ModelSpec.of_metadata(served)
        except ModelError as exc:  # nothing this project can retrain: say so, train nothing
            why = str(exc).rstrip(".")  # the verdict line adds its own full stop
            return TrainingRun(Outcome.REFUSED, f"ct cannot retrain the served model: {why}",
                               **common)  # fmt: skip
        if served is not None and served["data"]["sha256"] == sha256 and not force:
            return TrainingRun(
                Outcome.NOTHING_TO_DO,
                f"the data is unchanged: sha256 {sha256[:12]} is the file the served model "
                f"{served_version} was trained on",
                **common,
            )  # fmt: skip
        try:
            report = None if served is None else drift(served_model, data_file)
            coverage = served_coverage(served)
            # The served model's baselines are scored again, on the new data's split.
            result = gate.retrain(data_file, served_model, spec=spec, tolerance=tolerance,
                                  force=force, coverage=coverage, golden_file=golden_file,
                                  baseline_features=recorded_feature_sets(served))  # fmt: skip
        except DataError as exc:
            # The fetched copy is deleted with the run: name the data as the operator did.
            raise DataError(str(exc).replace(str(data_file), data_url)) from None
    common.update(drift=report, retrain=result, forced=force and not result.passed)
    if result.promoted and result.entry.version == served_version:
        return TrainingRun(Outcome.NOTHING_TO_DO,
                           f"retraining on this data gives the served model {served_version} "
                           "again", **common)  # fmt: skip
    if not result.promoted:
        failed = [c for c in result.comparisons if not c.passed]
        worst = min(failed, key=lambda c: c.change)
        what = "R²" if worst.metric == "r2" else "log loss"
        moved = "fell" if worst.metric == "r2" else "rose"
        return TrainingRun(
            Outcome.REFUSED,
            f"the quality gate refused candidate {result.entry.version}: {what} on "
            f"{worst.rows_name} {moved} by {-worst.change:.4f}, more than the tolerance "
            f"{tolerance:g}; {served_model.name} still serves {served_version}",
            **common,
        )  # fmt: skip
    changed = _promoted_files(served_model, modelcard.write_card(served_model))
    how = "forced past the quality gate" if common["forced"] else "passed the quality gate"
    return TrainingRun(Outcome.PROMOTED,
                       f"candidate {result.entry.version} {how} and is now served",
                       changed_files=changed, **common)  # fmt: skip


def served_coverage(served: dict[str, Any] | None) -> float:
    """Return the coverage the served model was calibrated for (a regression's interval, a
    classifier's prediction set), so its successor keeps it; the default for none."""
    calibration = (served or {}).get("interval") or (served or {}).get("prediction_set") or {}
    return float(calibration.get("coverage", DEFAULT_COVERAGE))


def _served_metadata(served_model: Path) -> dict[str, Any] | None:
    if not served_model.exists():
        return None  # a first run: the gate promotes the first model
    try:
        return verified_metadata(served_model)
    except ModelError:
        return None  # unusable: the gate replaces it, and says so in its notes


def _promoted_files(served_model: Path, card_files: list[Path]) -> list[Path]:
    """Return what a promotion changes: the served pair (and its side files), the registry (the
    new entry and the promotion record) and the card's files (a classifier's pictures too)."""
    return [served_model, metadata_path(served_model), *present_side_files(served_model),
            Registry(served_model).root, *card_files]  # fmt: skip
