"""Retrain behind a quality gate, evaluate the served model, and check input drift offline.

``retrain`` registers every candidate (``registry.py``) and promotes it only when it is
not worse than the served model, beyond a tolerance, on two sets of rows: the new
data's held-out rows, and a pinned golden set. New data with broken labels fits its
own held-out rows as well as anything can, so only the golden set catches it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlib
from registry import Entry, Registry, RegistryError, code_version

GOLDEN_FILE = "golden.json"
GOLDEN_TEST_SIZE = 0.1  # the cookbook's split of htwtmlb.csv
DEFAULT_TOLERANCE = 0.05
# Kolmogorov-Smirnov critical value coefficient for a two-sample test at the 5% level.
KS_COEFFICIENT_5PCT = 1.358


class GateError(mlib.MlibError):
    """The quality gate cannot run: the golden set is missing or is not the pinned one."""


# ------------------------------------------------------------------ golden set


@dataclass(frozen=True)
class GoldenSet:
    """Labelled rows every candidate is compared on, with what identifies them."""

    name: str
    sha256: str
    frame: Any


def rows_sha256(frame: Any) -> str:
    """Return the sha256 of a frame's Weight and Height values, in order."""
    lines = [f"{mlib.FEATURE},{mlib.TARGET}"]
    lines += [
        f"{weight!r},{height!r}"
        for weight, height in zip(
            frame[mlib.FEATURE].astype(float), frame[mlib.TARGET].astype(float), strict=True
        )
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def pin_golden(registry: Registry, source: Path) -> dict[str, Any]:
    """Pin the held-out rows of *source* as the registry's golden set; return the pin."""
    frame = mlib.held_out_rows(source, test_size=GOLDEN_TEST_SIZE)
    pin = {
        "kind": "held_out",
        "source_file": source.name,
        "source_sha256": mlib.sha256_file(source),
        "test_size": GOLDEN_TEST_SIZE,
        "random_state": mlib.RANDOM_STATE,
        "rows": int(len(frame)),
        "rows_sha256": rows_sha256(frame),
        "pinned_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    registry.root.mkdir(parents=True, exist_ok=True)
    mlib.write_bytes_atomic(
        registry.root / GOLDEN_FILE, (json.dumps(pin, indent=2) + "\n").encode("utf-8")
    )
    return pin


def load_golden(
    registry: Registry, golden_file: Path | None = None, source: Path | None = None
) -> GoldenSet:
    """Return the golden set: all rows of *golden_file*, else the registry's pinned rows.

    The pin names the original data by sha256 and the split that held its rows out;
    the rows are rebuilt from the data file (``DATA_PATH`` or ``htwtmlb.csv``) and
    their own checksum is checked, so a changed file or split is an error, not a
    silently different yardstick. Without a pin, the data file's held-out rows are pinned.
    """
    if golden_file is not None:
        frame, _dropped = mlib.load_data(golden_file)
        return GoldenSet(golden_file.name, mlib.sha256_file(golden_file), frame)
    source = Path(source) if source is not None else mlib.data_path()
    pin_path = registry.root / GOLDEN_FILE
    try:
        pin = json.loads(pin_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not source.is_file():
            raise GateError(
                f"No golden set is pinned and {source} is missing: run `make data` "
                "or pass --golden FILE."
            ) from None
        pin = pin_golden(registry, source)
    except (OSError, ValueError) as exc:
        raise GateError(f"Golden set pin {pin_path} is unreadable ({exc}).") from None
    if not source.is_file() or mlib.sha256_file(source) != pin["source_sha256"]:
        raise GateError(
            f"The golden set is the held-out rows of {pin['source_file']} with sha256 "
            f"{pin['source_sha256'][:12]}, and {source} is missing or different: "
            "restore it with `make data` or pass --golden FILE."
        )
    frame = mlib.held_out_rows(source, test_size=pin["test_size"], random_state=pin["random_state"])
    if rows_sha256(frame) != pin["rows_sha256"]:
        raise GateError(
            f"The held-out rows of {source} no longer match the pinned golden set "
            "(has the split changed?): pass --golden FILE."
        )
    return GoldenSet(f"golden: held-out rows of {pin['source_file']}", pin["rows_sha256"], frame)


# ------------------------------------------------------------------- the gate


@dataclass(frozen=True)
class Comparison:
    """Candidate and served model scored on the same rows."""

    rows_name: str
    candidate: dict[str, Any]
    served: dict[str, Any] | None
    tolerance: float

    @property
    def r2_change(self) -> float | None:
        """Return candidate R² minus served R² (negative: the candidate is worse)."""
        if self.served is None or self.candidate["r2"] is None or self.served["r2"] is None:
            return None
        return self.candidate["r2"] - self.served["r2"]

    @property
    def passed(self) -> bool:
        """Return whether the candidate's R² drop, if any, is within the tolerance."""
        change = self.r2_change
        # Nothing to compare (no served model, or too few rows for R²) does not block.
        return change is None or change >= -self.tolerance - 1e-12

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON-able data."""
        return {
            "rows": self.rows_name,
            "candidate": self.candidate,
            "served": self.served,
            "r2_change": self.r2_change,
            "passed": self.passed,
        }


@dataclass
class RetrainResult:
    """What ``retrain`` did: the candidate, how it compared, and whether it is now served."""

    entry: Entry
    metrics: dict[str, Any]
    served_version: str | None
    comparisons: list[Comparison]
    promoted: bool
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Return whether the candidate passed every comparison."""
        return all(comparison.passed for comparison in self.comparisons)


def retrain(
    data_file: Path,
    served_model: Path,
    *,
    test_size: float = 0.1,
    tolerance: float = DEFAULT_TOLERANCE,
    golden_file: Path | None = None,
    force: bool = False,
) -> RetrainResult:
    """Train and register a candidate, compare it with the served model, promote if it passes.

    With nothing valid served yet (a first run, or a served pair that no longer
    loads), there is nothing to compare against: the candidate is promoted.
    """
    registry = Registry(served_model)
    notes: list[str] = []
    served = _served_predictor(served_model, notes)
    golden: GoldenSet | None = None
    try:
        golden = load_golden(registry, golden_file)
    except GateError as exc:
        if served is not None and not force:
            raise
        notes.append(f"Golden set skipped: {exc}")
    with registry.staging() as staged:
        report = mlib.train(data_file, staged / "model.joblib", test_size=test_size)
        candidate = mlib.load_predictor(report.model_file)
        held_out = mlib.held_out_rows(data_file, test_size=test_size)
        comparisons = [_compare("new data, held out", held_out, candidate, served, tolerance)]
        if golden is not None:
            comparisons.append(_compare(golden.name, golden.frame, candidate, served, tolerance))
        metadata = dict(report.metadata)
        metadata["code"] = code_version()
        if golden is not None:
            metadata["metrics"] = {
                **metadata["metrics"],
                "golden": {**comparisons[-1].candidate, "sha256": golden.sha256},
            }
        mlib.write_bytes_atomic(
            mlib.metadata_path(report.model_file),
            (json.dumps(metadata, indent=2) + "\n").encode("utf-8"),
        )
        entry = registry.register(report.model_file)
    result = RetrainResult(
        entry=entry,
        metrics=report.metrics,
        served_version=None if served is None else served.version,
        comparisons=comparisons,
        promoted=False,
        notes=notes,
    )
    if served is None or result.passed or force:
        reason = "first model" if served is None else ("forced" if not result.passed else "retrain")
        registry.promote(entry.version, reason=reason)
        result.promoted = True
    return result


def _served_predictor(served_model: Path, notes: list[str]) -> mlib.Predictor | None:
    if not served_model.exists() and not mlib.metadata_path(served_model).exists():
        notes.append("Nothing is served yet: the candidate is promoted.")
        return None
    try:
        return mlib.load_predictor(served_model)
    except mlib.ModelError as exc:
        folded = _folded_predictor(served_model)
        if folded is not None:
            # Typically a library upgrade: the pickle is off limits, but its verified
            # slope and intercept are plain numbers, so the gate still has its baseline.
            notes.append(f"The served model is compared through its folded form: {exc}")
            return folded
        notes.append(f"The served model cannot be loaded ({exc}); the candidate replaces it.")
        return None


def _folded_predictor(served_model: Path) -> mlib.Predictor | None:
    try:
        metadata = mlib.read_metadata(served_model)
        digest = mlib.sha256_file(served_model)
    except (mlib.ModelError, OSError):
        return None
    folded = metadata.get("folded")
    if digest != metadata["model_sha256"] or not folded:
        return None
    return mlib.Predictor(
        metadata, served_model, slope=float(folded["slope"]), intercept=float(folded["intercept"])
    )


def _compare(
    rows_name: str,
    frame: Any,
    candidate: mlib.Predictor,
    served: mlib.Predictor | None,
    tolerance: float,
) -> Comparison:
    return Comparison(
        rows_name,
        mlib.evaluate_predictor(candidate, frame),
        None if served is None else mlib.evaluate_predictor(served, frame),
        tolerance,
    )


# ------------------------------------------------------------------ evaluation


def evaluate(served_model: Path, data_file: Path) -> dict[str, Any]:
    """Return the served model's metrics on labelled rows, overall and by Position."""
    predictor = mlib.load_predictor(served_model)
    frame, dropped = mlib.load_data(data_file)
    weights = frame[mlib.FEATURE]
    valid = (weights > 0) & (weights <= mlib.MAX_WEIGHT_LBS)
    rejected = int(len(frame) - valid.sum())
    frame = frame[valid]
    if frame.empty:
        raise mlib.DataError(f"{data_file} has no rows with a valid weight to evaluate.")
    result: dict[str, Any] = {
        "model_version": predictor.version,
        "data": {"file": str(data_file), "sha256": mlib.sha256_file(data_file)},
        "rows_missing_values": int(dropped),
        "rows_invalid_weight": rejected,
        "overall": mlib.evaluate_predictor(predictor, frame),
        "by_position": None,
    }
    if "Position" in frame.columns:
        groups = frame.groupby(frame["Position"].astype(str).str.strip(), sort=True)
        result["by_position"] = {
            str(position): mlib.evaluate_predictor(predictor, rows) for position, rows in groups
        }
    return result


# ------------------------------------------------------------------------ drift


def load_weights(data_file: Path, column: str = mlib.FEATURE) -> tuple[Any, int]:
    """Return ``(valid weights as a numpy array, rows rejected)`` from a CSV's *column*."""
    import pandas as pd

    try:
        frame = pd.read_csv(data_file, usecols=lambda name: name == column)
    except FileNotFoundError:
        raise mlib.DataError(f"{data_file} is missing.") from None
    except IsADirectoryError:
        raise mlib.DataError(f"{data_file} is a directory, not a CSV file.") from None
    except pd.errors.EmptyDataError:
        raise mlib.DataError(f"{data_file} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise mlib.DataError(f"{data_file} is not a valid CSV file: {message}") from None
    if column not in frame.columns:
        raise mlib.DataError(f"{data_file} has no {column} column.")
    weights = pd.to_numeric(frame[column], errors="coerce")
    valid = weights.notna() & (weights > 0) & (weights <= mlib.MAX_WEIGHT_LBS)
    return weights[valid].to_numpy(dtype="float64"), int(len(weights) - valid.sum())


def ks_statistic(values: Any, counts: Any, sample: Any) -> float:
    """Return the two-sample Kolmogorov-Smirnov D between a stored ECDF and a sample."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    cumulative /= cumulative[-1]
    sample = np.sort(np.asarray(sample, dtype=np.float64))
    # Both ECDFs are right-continuous steps: the largest gap sits on a jump of one of them.
    points = np.union1d(values, sample)
    reference = cumulative[np.searchsorted(values, points, side="right")]
    observed = np.searchsorted(sample, points, side="right") / len(sample)
    return float(np.max(np.abs(reference - observed)))


def drift(served_model: Path, data_file: Path, column: str = mlib.FEATURE) -> dict[str, Any]:
    """Return PSI (with its verdict), KS and per-bin shares of *data_file*'s weights."""
    metadata = mlib.verified_metadata(served_model)
    weights, rejected = load_weights(data_file, column)
    if not len(weights):
        raise mlib.DataError(f"{data_file} has no valid weights in column {column}.")
    edges = metadata["weight_histogram"]["edges"]
    expected = metadata["weight_histogram"]["counts"]
    actual = [0] * len(expected)
    for weight_lbs in weights.tolist():  # the service's own binning, so PSIs agree
        actual[mlib.weight_bin(weight_lbs, edges)] += 1
    psi = mlib.psi_from_counts(expected, actual)
    report: dict[str, Any] = {
        "model_version": metadata["model_version"],
        "data": {"file": str(data_file), "sha256": mlib.sha256_file(data_file)},
        "rows": int(len(weights)),
        "rows_rejected": rejected,
        "psi": psi,
        "verdict": mlib.drift_verdict(psi),
        "thresholds": {"warn": mlib.PSI_WARN, "alert": mlib.PSI_ALERT},
        "ks": None,
        "ks_critical_5pct": None,
        "bins": [
            {
                "low": edges[i],
                "high": edges[i + 1],
                "expected_share": expected[i] / sum(expected),
                "actual_share": actual[i] / len(weights),
            }
            for i in range(len(expected))
        ],
    }
    ecdf = metadata.get("weight_ecdf")
    if ecdf:
        reference_rows = sum(ecdf["counts"])
        report["ks"] = ks_statistic(ecdf["values"], ecdf["counts"], weights)
        report["ks_critical_5pct"] = KS_COEFFICIENT_5PCT * math.sqrt(
            (reference_rows + len(weights)) / (reference_rows * len(weights))
        )
    return report


__all__ = [
    "Comparison",
    "GateError",
    "GoldenSet",
    "RegistryError",
    "RetrainResult",
    "drift",
    "evaluate",
    "ks_statistic",
    "load_golden",
    "retrain",
]
