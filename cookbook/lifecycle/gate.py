"""Retrain behind a quality gate: register every candidate, promote only one that is not worse.

``retrain`` registers every candidate (``registry.py``) and promotes it only when it is
not worse than the served model, beyond a tolerance, on two sets of rows: the new
data's held-out rows, and a pinned golden set. New data with broken labels fits its
own held-out rows as well as anything can, so only the golden set catches it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cookbook.core.errors import MlibError, ModelError
from cookbook.core.files import sha256_file, write_json_atomic
from cookbook.core.layout import GOLDEN_FILE, metadata_path
from cookbook.core.loading import read_metadata
from cookbook.core.prediction import Predictor
from cookbook.core.settings import data_path
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.baselines import baseline_specs, score_baselines
from cookbook.lifecycle.conformal import DEFAULT_COVERAGE
from cookbook.lifecycle.importing import FittedModel, save_imported
from cookbook.lifecycle.model_spec import DEFAULT_SPEC, ModelSpec
from cookbook.lifecycle.registry import Entry, Registry, code_version
from cookbook.lifecycle.scoring import coverage_of, score_predictor
from cookbook.lifecycle.training import DEFAULT_TEST_SIZE, held_out_rows, load_labelled, train

DEFAULT_TOLERANCE = 0.05


class GateError(MlibError):
    """The quality gate cannot run: the golden set is missing or is not the pinned one."""


# ------------------------------------------------------------------ golden set


@dataclass(frozen=True)
class GoldenSet:
    """Labelled rows every candidate is compared on, with what identifies them."""

    name: str
    sha256: str
    frame: Any
    kind: str = "file"  # "file" (--golden FILE), or how it was pinned: GOLDEN_KINDS


def rows_sha256(frame: Any, columns: tuple[str, ...]) -> str:
    """Return the sha256 of a frame's *columns* (the features, then the target), in order."""
    lines = [",".join(columns)]
    cells = [
        frame[c].astype(float).tolist() if frame[c].dtype.kind in "iuf" else frame[c].tolist()
        for c in columns
    ]
    lines += [",".join(repr(value) if isinstance(value, float) else str(value) for value in row)
              for row in zip(*cells, strict=True)]  # fmt: skip
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


GOLDEN_FORMAT = 2  # the rows themselves, in golden.json; format 1 pinned a data file's split
GOLDEN_KINDS = {
    "held_out": "held-out rows of {source}",
    "import": "rows given at import ({source})",
}


def pin_golden(
    registry: Registry, frame: Any, spec: ModelSpec, source: Path, kind: str = "held_out"
) -> GoldenSet:
    """Pin *frame*'s rows of *spec*'s columns as the registry's golden set; return it.

    The rows themselves go into ``golden.json``, so the golden set needs no other file:
    a model's first version pins its own (*kind* ``held_out``: the rows its training held
    out; ``import``: the labelled rows given when it was imported).
    """
    columns = spec.columns
    rows = frame[list(columns)].reset_index(drop=True)
    pin = {
        "format": GOLDEN_FORMAT,
        "kind": kind,
        "source_file": source.name,
        "source_sha256": sha256_file(source),
        "columns": list(columns),
        "categorical": list(spec.categorical),
        "rows": int(len(rows)),
        "rows_sha256": rows_sha256(rows, columns),
        "pinned_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "data": {c: _plain(rows[c]) for c in columns},
    }
    write_json_atomic(registry.root / GOLDEN_FILE, pin)
    return GoldenSet(_golden_name(pin), pin["rows_sha256"], rows, kind)


def _plain(column: Any) -> list[Any]:
    return column.astype(float).tolist() if column.dtype.kind in "iuf" else column.tolist()


def _golden_name(pin: dict[str, Any]) -> str:
    template = GOLDEN_KINDS.get(pin.get("kind", "held_out"), GOLDEN_KINDS["held_out"])
    return "golden: " + template.format(source=pin["source_file"])


def read_pin(registry: Registry) -> dict[str, Any] | None:
    """Return the registry's golden-set pin, None when nothing is pinned, or raise GateError."""
    pin_path = registry.root / GOLDEN_FILE
    try:
        pin = json.loads(pin_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise GateError(f"Golden set pin {pin_path} is unreadable ({exc}).") from None
    if not isinstance(pin, dict) or "rows_sha256" not in pin or "source_file" not in pin:
        raise GateError(f"Golden set pin {pin_path} lacks required fields.")
    return pin


def load_golden(
    registry: Registry,
    golden_file: Path | None = None,
    source: Path | None = None,
    spec: ModelSpec = DEFAULT_SPEC,
) -> GoldenSet | None:
    """Return the golden set: all rows of *golden_file*, else the registry's pinned rows.

    None when nothing is pinned yet: the caller pins the first version's own rows.
    A pin of format 2 holds the rows, checked against their sha256. A pin of format 1
    (the cookbook's ``models/golden.json``) names the original data by sha256 and the
    split that held its rows out, not its columns: the rows are rebuilt from *source*
    (``DATA_PATH`` or ``htwtmlb.csv``) with *spec*'s columns and checked, so a changed file,
    split or set of columns is an error, not a silently different yardstick. A format-2 pin
    of other columns than *spec*'s is refused.
    """
    if golden_file is not None:
        frame, _dropped = load_labelled(golden_file, spec, what="Golden set")
        return GoldenSet(golden_file.name, sha256_file(golden_file), frame)
    pin = read_pin(registry)
    if pin is None:
        return None
    pin_path = registry.root / GOLDEN_FILE
    if pin.get("format", 1) < GOLDEN_FORMAT:
        # A format-1 pin names no columns: the rows rebuilt with this model's columns must
        # match its sha256, which is what proves they are the rows pinned.
        return _rebuilt_rows(pin, Path(source) if source is not None else data_path(), spec)
    columns = tuple(pin["columns"])
    if columns != spec.columns:
        raise GateError(
            f"The golden set pinned in {pin_path} has the columns {', '.join(columns)}, "
            f"not this model's {', '.join(spec.columns)}: pass --golden FILE."
        )
    return _pinned_rows(pin, pin_path, spec)


def _pinned_rows(pin: dict[str, Any], pin_path: Path, spec: ModelSpec) -> GoldenSet:
    import pandas as pd

    try:
        frame = pd.DataFrame({c: pin["data"][c] for c in spec.columns})
        for column in spec.categorical:
            frame[column] = frame[column].astype(str)
    except (KeyError, TypeError, ValueError) as exc:
        raise GateError(f"Golden set pin {pin_path} holds malformed rows ({exc!r}).") from None
    if rows_sha256(frame, spec.columns) != pin["rows_sha256"]:
        raise GateError(
            f"The rows in {pin_path} no longer match their sha256: the golden set was "
            "edited; restore it from version control or pass --golden FILE."
        )
    return GoldenSet(_golden_name(pin), pin["rows_sha256"], frame, pin.get("kind", "held_out"))


def _rebuilt_rows(pin: dict[str, Any], source: Path, spec: ModelSpec) -> GoldenSet:
    if not source.is_file() or sha256_file(source) != pin["source_sha256"]:
        raise GateError(
            f"The golden set is the held-out rows of {pin['source_file']} with sha256 "
            f"{pin['source_sha256'][:12]}, and {source} is missing or different: "
            "restore it with `make data` or pass --golden FILE."
        )
    frame = held_out_rows(
        source,
        spec,
        test_size=pin["test_size"],
        random_state=pin["random_state"],
        what="Golden set source",
    )
    if rows_sha256(frame, spec.columns) != pin["rows_sha256"]:
        raise GateError(
            f"The held-out rows of {source} with this model's columns "
            f"({', '.join(spec.columns)}) do not match the golden set pinned in format 1 (has "
            "the split changed, or were other columns pinned?): pass --golden FILE."
        )
    return GoldenSet(_golden_name(pin), pin["rows_sha256"], frame, pin.get("kind", "held_out"))


# ------------------------------------------------------------------- the gate


# The metric the gate compares, per kind of model, and whether higher is better: R² for a
# regression; for a classifier its log loss (a proper scoring rule: it judges the
# probabilities the service answers, not only the labels), in nats.
GATE_METRICS = {"regression": ("r2", True), "classification": ("log_loss", False)}


@dataclass(frozen=True)
class Comparison:
    """Candidate and served model scored on the same rows."""

    rows_name: str
    candidate: dict[str, Any]
    served: dict[str, Any] | None
    tolerance: float

    @property
    def metric(self) -> str:
        """Return the metric the gate compares: ``r2``, or a classifier's ``log_loss``."""
        return "log_loss" if "log_loss" in self.candidate else "r2"

    @property
    def change(self) -> float | None:
        """Return how much better the candidate is on the gate's metric (negative: worse)."""
        name = self.metric
        if self.served is None or self.candidate[name] is None or self.served.get(name) is None:
            return None
        higher_is_better = name == "r2"
        difference = self.candidate[name] - self.served[name]
        return difference if higher_is_better else -difference

    @property
    def r2_change(self) -> float | None:
        """Return candidate R² minus served R² (None for a classifier)."""
        return self.change if self.metric == "r2" else None

    @property
    def passed(self) -> bool:
        """Return whether the candidate's loss on the gate's metric, if any, is within the
        tolerance (R², or nats of log loss)."""
        change = self.change
        # Nothing to compare (no served model, or too few rows for R²) does not block.
        return change is None or change >= -self.tolerance - 1e-12

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON-able data."""
        return {
            "rows": self.rows_name,
            "candidate": self.candidate,
            "served": self.served,
            "metric": self.metric,
            "change": self.change,
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
    baselines: dict[str, Any] = field(default_factory=dict)  # metrics.baselines (baselines.py)

    @property
    def passed(self) -> bool:
        """Return whether the candidate passed every comparison."""
        return all(comparison.passed for comparison in self.comparisons)


@dataclass(frozen=True)
class Candidate:
    """A candidate pair written into the registry's staging folder, and the rows it was
    scored on: what ``admit`` compares with the served model."""

    model_file: Path
    metrics: dict[str, Any]
    rows_name: str  # how the comparison table names the rows
    rows: Any  # labelled rows the candidate did not learn from
    source: Path  # the file they came from
    kind: str  # how a first version pins them as the golden set (GOLDEN_KINDS)
    baselines: dict[str, Any] = field(default_factory=dict)  # metrics.baselines (baselines.py)


def retrain(
    data_file: Path,
    served_model: Path,
    *,
    spec: ModelSpec = DEFAULT_SPEC,
    test_size: float = DEFAULT_TEST_SIZE,
    tolerance: float = DEFAULT_TOLERANCE,
    golden_file: Path | None = None,
    force: bool = False,
    coverage: float = DEFAULT_COVERAGE,
    baseline_features: Sequence[Sequence[str]] = (),
) -> RetrainResult:
    """Train and register a candidate, compare it with the served model, promote if it passes.

    The candidate is scored on the new data's held-out rows and on the golden set
    (``admit``); a first version pins its own held-out rows as the golden set. Beside it,
    the cookbook's Ridge is scored on the same split (``baselines.py``): on the candidate's
    own features unless it is that Ridge, and on each of *baseline_features*.
    """
    baselines = baseline_specs(spec, baseline_features)  # a bad set is refused before training

    def build(staged: Path) -> Candidate:
        report = train(
            data_file, staged / "model.joblib", spec=spec, test_size=test_size, coverage=coverage
        )
        # The split train fitted and scored on, not the file read and split once more.
        scores = score_baselines(baselines, report.training_rows, report.held_out)
        return Candidate(report.model_file, report.metrics, "new data, held out",
                         report.held_out, data_file, "held_out", scores)  # fmt: skip

    return admit(build, served_model, spec=spec, tolerance=tolerance,
                 golden_file=golden_file, force=force)  # fmt: skip


def import_fitted(
    fitted: FittedModel,
    served_model: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    force: bool = False,
    coverage: float = DEFAULT_COVERAGE,
) -> RetrainResult:
    """Write an imported model's pair as a candidate and admit it through the gate.

    The rows given at import are the candidate's own comparison rows and, for a first
    version, its golden set. A pair that cannot be written (a folded form that does not
    reproduce the estimator) leaves no folder behind that this call created.
    """

    def build(staged: Path) -> Candidate:
        report = save_imported(fitted, staged / "model.joblib", coverage=coverage)
        return Candidate(report.model_file, report.metrics, "data given at import",
                         fitted.frame, fitted.data_file, "import")  # fmt: skip

    with _removed_on_failure(Registry(served_model).root):
        return admit(build, served_model, spec=fitted.spec, tolerance=tolerance, force=force)


@contextlib.contextmanager
def _removed_on_failure(folder: Path) -> Iterator[None]:
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # the deepest first; stop at the first that holds anything
            try:
                path.rmdir()
            except OSError:
                break
        raise


def admit(
    build: Callable[[Path], Candidate],
    served_model: Path,
    *,
    spec: ModelSpec,
    tolerance: float = DEFAULT_TOLERANCE,
    golden_file: Path | None = None,
    force: bool = False,
) -> RetrainResult:
    """Build a candidate into the registry, compare it with the served model, promote if it passes.

    *build* writes the candidate pair into the staging folder it is given. With nothing
    valid served yet (a first run, or a served pair that no longer loads), there is
    nothing to compare against: the candidate is promoted, and when no golden set is
    pinned (or the pin is of other columns) the candidate's own rows become it. A
    served model with other features or another target is not comparable: the gate
    refuses (``force`` replaces it).

    The candidate's prediction interval is also checked on the golden set:
    ``metadata["interval"]["golden_coverage"]``.
    """
    registry = Registry(served_model)
    notes: list[str] = []
    served = _served_predictor(served_model, notes)
    if served is not None and ModelSpec.of_schema(served.schema).columns != spec.columns:
        if not force:
            raise GateError(
                f"{served_model} serves a model of {', '.join(served.schema.feature_names)} -> "
                f"{served.schema.target.name}, not of {', '.join(spec.all_features)} -> "
                f"{spec.target}: give another --model-name, or --force to replace it."
            )
        notes.append("The served model has other columns: it is replaced, not compared.")
        served = None
    golden: GoldenSet | None = None
    try:
        golden = load_golden(registry, golden_file, spec=spec)
        pin = read_pin(registry) is None
    except GateError as exc:
        if served is not None and not force:
            raise
        # Nothing comparable is served: this candidate is the first version of its model.
        pin = served is None
        notes.append(f"Golden set {'replaced' if pin else 'skipped'}: {exc}")
    with registry.staging() as staged:
        candidate = build(staged)
        if pin:
            pinned = pin_golden(registry, candidate.rows, spec, candidate.source, candidate.kind)
            notes.append(
                f"Golden set pinned: the {len(pinned.frame)} {pinned.name.removeprefix('golden: ')}"
                f" in {registry.root / GOLDEN_FILE}."
            )
            golden = golden if golden is not None else pinned
        loaded = load_predictor(candidate.model_file)
        rows = candidate.rows
        comparisons = [_compare(candidate.rows_name, rows, loaded, served, tolerance)]
        if golden is not None:
            comparisons.append(_compare(golden.name, golden.frame, loaded, served, tolerance))
        metadata = read_metadata(candidate.model_file)
        metadata["code"] = code_version()
        if candidate.baselines:
            metadata["metrics"] = {**metadata["metrics"], "baselines": candidate.baselines}
        if golden is not None:
            metadata["metrics"] = {
                **metadata["metrics"],
                "golden": {**comparisons[-1].candidate, "sha256": golden.sha256},
            }
            metadata["golden_set"] = {"rows": golden.name, "kind": golden.kind}
            if metadata.get("prediction_set"):
                metadata["prediction_set"] = {
                    **metadata["prediction_set"],
                    "golden_coverage": coverage_of(loaded, golden.frame),
                    "golden_rows": golden.name,
                    "golden_independent": golden.sha256 != rows_sha256(rows, spec.columns),
                }
            if metadata.get("interval"):
                metadata["interval"] = {
                    **metadata["interval"],
                    "golden_coverage": coverage_of(loaded, golden.frame),
                    "golden_rows": golden.name,
                    # The pinned golden set is often these very rows: then this check is
                    # no more independent than held_out_coverage.
                    "golden_independent": golden.sha256 != rows_sha256(rows, spec.columns),
                }
        write_json_atomic(metadata_path(candidate.model_file), metadata)
        entry = registry.register(candidate.model_file)
    result = RetrainResult(
        entry=entry,
        metrics=candidate.metrics,
        served_version=None if served is None else served.version,
        comparisons=comparisons,
        promoted=False,
        notes=notes,
        baselines=candidate.baselines,
    )
    if served is None or result.passed or force:
        reason = "first model" if served is None else ("forced" if not result.passed else "retrain")
        registry.promote(entry.version, reason=reason)
        result.promoted = True
    return result


def _served_predictor(served_model: Path, notes: list[str]) -> Predictor | None:
    if not served_model.exists() and not metadata_path(served_model).exists():
        notes.append("Nothing is served yet: the candidate is promoted (first version).")
        return None
    try:
        # A folded model loads whatever scikit-learn is installed (nothing is unpickled), so
        # after a library upgrade the served line is still the baseline.
        return load_predictor(served_model)
    except ModelError as exc:
        notes.append(f"The served model cannot be loaded ({exc}); the candidate replaces it.")
        return None


def _compare(
    rows_name: str,
    frame: Any,
    candidate: Predictor,
    served: Predictor | None,
    tolerance: float,
) -> Comparison:
    return Comparison(
        rows_name,
        score_predictor(candidate, frame),
        None if served is None else score_predictor(served, frame),
        tolerance,
    )
