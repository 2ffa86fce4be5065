"""Train, verify, load and predict with the MLB height-from-weight model.

This is the only module that knows scikit-learn and joblib. The serving path
(``load_predictor`` and ``Predictor``) imports neither: at training time the
fitted linear pipeline is folded into one slope and intercept stored in
``model.json``, so a prediction is ``slope * weight + intercept`` in plain
Python. An estimator that cannot be folded is served through its verified,
unpickled ``predict`` instead.

The cookbook's public functions (``load_model``, ``data``, ``retrain``,
``format_input``, ``scale_input``, ``scale_target``, ``height_human``,
``human_readable_payload``, ``predict``) keep their names and signatures.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import json
import math
import numbers
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = HERE / "model.joblib"
DEFAULT_DATA_PATH = HERE / "htwtmlb.csv"

FEATURE = "Weight"
TARGET = "Height"
MAX_WEIGHT_LBS = 1000.0
RANDOM_STATE = 3  # the cookbook's split, so held-out scores stay comparable
METADATA_FORMAT = 1
# The folded slope and intercept must reproduce the estimator to this relative error.
FOLD_TOLERANCE = 1e-9
WEIGHT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
# The training weights' empirical CDF is stored exactly up to this many distinct values
# (MLB weights are whole pounds: about 100), else as this many quantiles.
ECDF_MAX_POINTS = 1000
# The model registry lives in this folder beside the served model (see registry.py).
REGISTRY_DIRNAME = "models"
CHART_BIN_WIDTH_LBS = 10


class MlibError(Exception):
    """Base of every error this module raises on purpose; its message is one line for a person."""


class InvalidWeight(MlibError, ValueError):
    """A weight that is not a finite number of pounds in (0, MAX_WEIGHT_LBS]."""


class DataError(MlibError):
    """A training CSV that is missing, empty or does not have the expected columns."""


class ModelError(MlibError):
    """A model file that is missing, tampered with, or was made by other library versions."""


# --------------------------------------------------------------------------- paths


def model_path() -> Path:
    """Return the served model's path: ``MODEL_PATH`` if set, else ``model.joblib`` here."""
    return Path(os.environ.get("MODEL_PATH") or DEFAULT_MODEL_PATH)


def data_path() -> Path:
    """Return the training data's path: ``DATA_PATH`` if set, else ``htwtmlb.csv`` here."""
    return Path(os.environ.get("DATA_PATH") or DEFAULT_DATA_PATH)


def metadata_path(model_file: Path | str) -> Path:
    """Return the metadata file that belongs to *model_file*: same stem, ``.json``."""
    return Path(model_file).with_suffix(".json")


def _project_path(name: Path | str) -> Path:
    # Library callers (the cookbook's ``retrain(model_name="model.joblib")``) mean the
    # project's files, whatever the working directory is.
    path = Path(name)
    return path if path.is_absolute() else HERE / path


def sha256_file(path: Path | str) -> str:
    """Return the hex sha256 of the file at *path*."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------- validation


def validate_weight(value: Any, *, name: str = "Weight") -> float:
    """Return *value* as a float of pounds, or raise ``InvalidWeight`` saying what is wrong."""
    kind = type(value)
    # Plain floats and ints are nearly every call: skip the slower ABC check for them.
    if (kind is not float and kind is not int) and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):
        raise InvalidWeight(
            f"{name} must be a number of pounds, got {_json_type(value)}: send e.g. 200."
        )
    try:
        weight_lbs = float(value)
    except OverflowError:
        weight_lbs = math.inf
    if not 0 < weight_lbs <= MAX_WEIGHT_LBS:
        if not math.isfinite(weight_lbs):
            raise InvalidWeight(f"{name} must be a finite number of pounds, got {value!r}.")
        raise InvalidWeight(
            f"{name} must be greater than 0 and at most {MAX_WEIGHT_LBS:g} lb, got {value!r}."
        )
    return weight_lbs


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


# ------------------------------------------------------------------ human output


def height_human(float_inches: float) -> str:
    """Return a height in inches as "6 foot, 2 inches", rounding once to the nearest inch."""
    total_inches = math.floor(float_inches + 0.5)  # half up: 71.5 is 72, i.e. 6 foot, 0 inches
    text = _HUMAN_HEIGHTS.get(total_inches)
    if text is None:
        feet, inches = divmod(total_inches, 12)
        text = _HUMAN_HEIGHTS[total_inches] = f"{feet} foot, {inches} inches"
    return text


# Whole-inch heights seen so far: a handful of strings, formatted once each.
_HUMAN_HEIGHTS: dict[int, str] = {}


def round_tenth(height_inches: float) -> float:
    """Return *height_inches* to a tenth of an inch, halves up (and faster than ``round``)."""
    return math.floor(height_inches * 10 + 0.5) / 10


def human_readable_payload(predict_value: Any) -> dict[str, Any]:
    """Return the cookbook's prediction dict for a height in inches."""
    height_inches = float(_first_scalar(predict_value))
    return {
        # A tenth of an inch: the model's error is about two inches, more digits are noise.
        "height_inches": round_tenth(height_inches),
        "height_human_readable": height_human(height_inches),
    }


def _first_scalar(value: Any) -> Any:
    # The cookbook passes numpy arrays of shape (1,) or (1, 1) here.
    while hasattr(value, "__len__") and not isinstance(value, str):
        value = value[0]
    return value


# ------------------------------------------------------------------------- drift

# Population Stability Index thresholds: the industry's usual reading of PSI.
PSI_WARN = 0.1
PSI_ALERT = 0.25
# An empty bin would make PSI infinite; treat it as this small share instead.
PSI_FLOOR = 1e-4


def weight_bin(weight_lbs: float, edges: Sequence[float]) -> int:
    """Return the histogram bin of *weight_lbs*; the outer bins take everything beyond them."""
    index = bisect.bisect_right(edges, weight_lbs) - 1
    return min(max(index, 0), len(edges) - 2)


def psi_from_counts(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Return the Population Stability Index of *actual* bin counts against *expected*."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return 0.0
    psi = 0.0
    for want, got in zip(expected, actual, strict=True):
        p = max(want / expected_total, PSI_FLOOR)
        q = max(got / actual_total, PSI_FLOOR)
        psi += (q - p) * math.log(q / p)
    return psi


def drift_verdict(psi: float) -> str:
    """Return "ok", "warn" or "alert" for a PSI value (thresholds 0.1 and 0.25)."""
    if psi < PSI_WARN:
        return "ok"
    return "warn" if psi < PSI_ALERT else "alert"


# ----------------------------------------------------------------------- serving


@dataclass(frozen=True)
class Predictor:
    """A verified model, ready to predict heights in inches from weights in pounds."""

    metadata: Mapping[str, Any]
    path: Path
    slope: float | None = None
    intercept: float | None = None
    estimator: Any = field(default=None, repr=False)

    @property
    def version(self) -> str:
        """Return the model version recorded in ``model.json``."""
        return self.metadata["model_version"]

    @property
    def weight_range_lbs(self) -> tuple[float, float]:
        """Return the smallest and largest training weight."""
        low, high = self.metadata["training_range_lbs"]
        return float(low), float(high)

    @property
    def is_folded(self) -> bool:
        """Return whether predictions come from the folded slope and intercept."""
        return self.slope is not None

    def predict_height(self, weight_lbs: float) -> float:
        """Return the predicted height in inches for one validated weight."""
        if self.slope is not None:
            return self.slope * weight_lbs + self.intercept
        return float(self.predict_heights([weight_lbs])[0])

    def predict_heights(self, weights_lbs: Iterable[float]):
        """Return predicted heights (numpy array) for many weights at once, vectorised."""
        import numpy as np

        weights = np.asarray(weights_lbs, dtype=np.float64).reshape(-1)
        if self.slope is not None:
            heights = weights * self.slope
            heights += self.intercept
            return heights
        return np.asarray(self.estimator.predict(_weights_frame(weights)), dtype=np.float64)

    def prediction(self, weight: Any, *, name: str = "Weight") -> dict[str, Any]:
        """Validate one weight and return the cookbook's prediction dict for it."""
        weight_lbs = validate_weight(weight, name=name)
        return self._payload(weight_lbs, self.predict_height(weight_lbs))

    def _payload(self, weight_lbs: float, height: float) -> dict[str, Any]:
        payload = {
            "height_inches": round_tenth(height),
            "height_human_readable": height_human(height),
        }
        low, high = self.metadata["training_range_lbs"]
        if not low <= weight_lbs <= high:
            payload["warning"] = self.extrapolation_warning(weight_lbs)
        return payload

    def predictions(self, weights: Sequence[Any]) -> list[dict[str, Any]]:
        """Validate every weight first, then return one prediction dict per weight, in order."""
        weights_lbs = [validate_weight(w, name=f"Weight[{i}]") for i, w in enumerate(weights)]
        if self.slope is None:
            heights = self.predict_heights(weights_lbs).tolist()
        else:
            heights = [self.slope * w + self.intercept for w in weights_lbs]
        payloads = []
        for weight_lbs, height in zip(weights_lbs, heights, strict=False):
            payload = human_readable_payload(height)
            warning = self.extrapolation_warning(weight_lbs)
            if warning:
                payload["warning"] = warning
            payloads.append(payload)
        return payloads

    def extrapolation_warning(self, weight_lbs: float) -> str | None:
        """Return a warning when *weight_lbs* lies outside the training weights, else None."""
        low, high = self.weight_range_lbs
        if low <= weight_lbs <= high:
            return None
        return (
            f"{weight_lbs:g} lb is outside the training range ({low:g}-{high:g} lb): "
            "this prediction is an extrapolation."
        )

    def probe(self) -> float:
        """Predict at the training mean and return it; raise ``ModelError`` if not finite."""
        height = self.predict_height(float(self.metadata["weight_stats"]["mean"]))
        if not math.isfinite(height):
            raise ModelError(f"Model {self.version} failed its probe prediction ({height!r}).")
        return height


def read_metadata(model_file: Path | str) -> dict[str, Any]:
    """Return the parsed ``model.json`` beside *model_file*, or raise ``ModelError``."""
    meta_file = metadata_path(model_file)
    try:
        metadata = json.loads(Path(meta_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"Model metadata {meta_file} is missing: retrain with `python utilscli.py retrain`."
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"Model metadata {meta_file} is unreadable ({exc}): retrain.") from None
    required = ("model_version", "model_sha256", "libraries", "training_range_lbs", "weight_stats")
    if not isinstance(metadata, dict) or any(key not in metadata for key in required):
        raise ModelError(f"Model metadata {meta_file} lacks required fields: retrain.")
    return metadata


def verify_model_file(model_file: Path | str, metadata: Mapping[str, Any]) -> None:
    """Raise ``ModelError`` unless *model_file*'s sha256 is the one ``model.json`` records."""
    try:
        digest = sha256_file(model_file)
    except FileNotFoundError:
        raise ModelError(f"Model file {model_file} is missing: retrain.") from None
    except IsADirectoryError:
        raise ModelError(f"Model file {model_file} is a directory, not a model file.") from None
    except OSError as exc:
        raise ModelError(f"Model file {model_file} is unreadable ({exc.strerror}).") from None
    if digest != metadata["model_sha256"]:
        raise ModelError(
            f"Model file {model_file} does not match its metadata (sha256 {digest[:12]}, "
            f"expected {str(metadata['model_sha256'])[:12]}): refusing to load it; "
            "restore both files together or retrain."
        )
    _check_sklearn_version(metadata)


def verified_metadata(model_file: Path | str) -> dict[str, Any]:
    """Return the metadata that belongs to *model_file*'s bytes, verified, or raise ModelError.

    Promoting a model replaces ``model.joblib`` and then ``model.json``: two renames,
    so a crash between them leaves the new joblib beside the old json. The model
    registry (``models/<version>/`` beside the served file) keeps every version's
    metadata, so a mismatch is recovered from the entry whose sha256 is the joblib's
    own; anything else that does not match (a tampered file) is still refused.
    """
    path = Path(model_file)
    metadata = read_metadata(path)
    try:
        verify_model_file(path, metadata)
    except ModelError as mismatch:
        recovered = _registry_metadata(path, metadata)
        if recovered is None:
            raise mismatch from None
        verify_model_file(path, recovered)
        return recovered
    return metadata


def _registry_metadata(path: Path, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        digest = sha256_file(path)
    except OSError:
        return None
    if digest == metadata["model_sha256"]:
        return None  # the pair matches: the refusal is about something else (library versions)
    entry = path.parent / REGISTRY_DIRNAME / digest[:12] / "model.joblib"
    try:
        metadata = read_metadata(entry)
    except ModelError:
        return None
    return metadata if metadata.get("model_sha256") == digest else None


def _check_sklearn_version(metadata: Mapping[str, Any]) -> None:
    trained_with = str(metadata["libraries"].get("scikit-learn", ""))
    installed = installed_version("scikit-learn")
    if installed is None:
        return  # nothing here could unpickle it differently; the folded form is plain numbers
    if _minor(trained_with) != _minor(installed):
        raise ModelError(
            f"Model was trained with scikit-learn {trained_with} but {installed} is installed: "
            "retrain with `python utilscli.py retrain`."
        )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def installed_version(distribution: str) -> str | None:
    """Return the installed version of *distribution*, or None when it is not installed.

    Reads the ``<name>-<version>.dist-info`` folder name on ``sys.path`` (the wheel
    standard) because ``importlib.metadata`` costs about 60 ms to import, most of the
    CLI's start-up budget.
    """
    prefix = distribution.replace("-", "_").lower() + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(prefix):
                return name[len(prefix) : -len(".dist-info")]
    return None


def load_predictor(model_file: Path | str | None = None) -> Predictor:
    """Verify the model pair at *model_file* (default ``model_path()``) and return a Predictor.

    The joblib file's sha256 is checked against ``model.json`` before anything is
    unpickled. A model with a folded form predicts from it without unpickling.
    """
    path = Path(model_file) if model_file is not None else model_path()
    metadata = verified_metadata(path)
    folded = metadata.get("folded")
    if folded:
        return Predictor(
            metadata, path, slope=float(folded["slope"]), intercept=float(folded["intercept"])
        )
    return Predictor(metadata, path, estimator=_unpickle_verified(path))


def _unpickle_verified(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # a verified file that still fails to load: say so in one line
        raise ModelError(f"Model file {path} could not be loaded ({exc}): retrain.") from None


_default_predictors: dict[Path, Predictor] = {}


def default_predictor() -> Predictor:
    """Return the Predictor for ``model_path()``, loaded once and reused."""
    path = model_path()
    predictor = _default_predictors.get(path)
    if predictor is None:
        predictor = _default_predictors[path] = load_predictor(path)
    return predictor


def forget_loaded_models() -> None:
    """Drop the cached default Predictor so the next call loads the model again."""
    _default_predictors.clear()


# -------------------------------------------------------- the cookbook's functions


def load_model(model: Path | str | None = None) -> Any:
    """Return the fitted estimator at *model* (default ``model_path()``), verified first."""
    path = Path(model) if model is not None else model_path()
    verified_metadata(path)
    return _unpickle_verified(path)


def data(path: Path | str | None = None):
    """Return the validated training data as a DataFrame (rows with missing values dropped)."""
    frame, _dropped = load_data(path)
    return frame


def load_data(path: Path | str | None = None):
    """Return ``(frame, rows_dropped)`` for the training CSV, or raise ``DataError``."""
    import pandas as pd

    csv_path = Path(path) if path is not None else data_path()
    try:
        frame = pd.read_csv(csv_path)
    except FileNotFoundError:
        raise DataError(f"Training data {csv_path} is missing: run `make data`.") from None
    except IsADirectoryError:
        raise DataError(f"Training data {csv_path} is a directory, not a CSV file.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"Training data {csv_path} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"Training data {csv_path} is not a valid CSV file: {message}") from None
    missing = [column for column in (FEATURE, TARGET) if column not in frame.columns]
    if missing:
        raise DataError(
            f"Training data {csv_path} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns)) or 'none'}."
        )
    for column in (FEATURE, TARGET):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            converted = pd.to_numeric(frame[column], errors="coerce")
            bad = frame[column][converted.isna() & frame[column].notna()]
            if len(bad):
                raise DataError(
                    f"Training data {csv_path}: column {column} must be numeric, "
                    f"found {bad.iloc[0]!r} at row {bad.index[0] + 1}."
                )
            frame[column] = converted
    rows_before = len(frame)
    frame = frame.dropna(subset=[FEATURE, TARGET]).reset_index(drop=True)
    if frame.empty:
        raise DataError(f"Training data {csv_path} has no rows with both {FEATURE} and {TARGET}.")
    return frame, rows_before - len(frame)


def format_input(x: Any):
    """Return *x* as a numpy column of shape (n, 1), as the cookbook does."""
    import numpy as np

    return np.asarray(x, dtype=np.float64).reshape(-1, 1)


def scale_input(val: Any):
    """Return weights standardised with the served model's own fitted weight scaler."""
    scaler = _fitted_steps(load_model())[0]
    return scaler.transform(_weights_frame(format_input(val).reshape(-1)))


def scale_target(target: Any):
    """Return standardised heights turned back into inches with the model's height scaler."""
    import numpy as np

    model = load_model()
    return model.transformer_.inverse_transform(np.asarray(target).reshape(-1, 1))


def retrain(tsize: float = 0.1, model_name: Path | str = "model.joblib") -> tuple[float, str]:
    """Retrain, register and promote behind the quality gate; return ``(r2, model_name)``.

    Raises ``ModelError`` when the new model is worse than the served one and so was
    registered but not promoted (``utilscli.py retrain --force`` overrides the gate).
    """
    import lifecycle  # builds on this module, so it is imported here, not at the top

    result = lifecycle.retrain(data_path(), _project_path(model_name), test_size=tsize)
    if not result.promoted:
        raise ModelError(
            f"Model {result.entry.version} was registered but not promoted: it is worse than "
            "the served model (see `python utilscli.py retrain`)."
        )
    return result.metrics["r2"], str(model_name)


def predict(weight: Any) -> dict[str, Any]:
    """Return the cookbook's prediction dict for one weight, using the model loaded once."""
    return default_predictor().prediction(weight)


def predict_batch(weights: Sequence[Any]) -> list[dict[str, Any]]:
    """Return one prediction dict per weight, in order; every weight is validated first."""
    return default_predictor().predictions(weights)


def predict_heights(weights_lbs: Iterable[float]):
    """Return predicted heights in inches (numpy array) for many weights, vectorised."""
    return default_predictor().predict_heights(weights_lbs)


# ---------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainingReport:
    """What ``train`` did: held-out metrics, where the model went, and its metadata."""

    metrics: dict[str, float]
    model_file: Path
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        """Return the new model's version."""
        return self.metadata["model_version"]


def build_estimator(alpha: float = 1.0):
    """Return the unfitted estimator: weight scaling, Ridge, and height scaling in one object."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), Ridge(alpha=alpha)),
        transformer=StandardScaler(),
    )


def train(
    data_file: Path | str | None = None,
    model_file: Path | str | None = None,
    *,
    test_size: float = 0.1,
    random_state: int = RANDOM_STATE,
    alpha: float = 1.0,
) -> TrainingReport:
    """Split, fit, evaluate and save a model with its metadata; return a TrainingReport.

    Both files are written to temporary names and renamed into place, so a failed
    or interrupted run leaves the previous model untouched.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise DataError(f"Test size must be between 0 and 1 (exclusive), got {test_size!r}.")
    csv_path = Path(data_file) if data_file is not None else data_path()
    destination = Path(model_file) if model_file is not None else model_path()
    frame, rows_dropped = load_data(csv_path)
    if len(frame) < 10:
        raise DataError(f"Training data {csv_path} has only {len(frame)} usable rows; need 10.")
    features, target = frame[[FEATURE]], frame[TARGET]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=test_size, random_state=random_state
    )
    estimator = build_estimator(alpha).fit(x_train, y_train)
    metrics = evaluate(estimator, x_test, y_test)
    metadata = _describe(
        estimator,
        frame=frame,
        train_weights=x_train[FEATURE],
        csv_path=csv_path,
        rows_dropped=rows_dropped,
        hyperparameters={"alpha": alpha, "test_size": test_size, "random_state": random_state},
        split_rows={"train": len(x_train), "test": len(x_test)},
        metrics=metrics,
    )
    metadata = save_model(estimator, metadata, destination)
    return TrainingReport(metrics, destination, metadata)


def evaluate(estimator: Any, features: Any, heights: Any) -> dict[str, float]:
    """Return r2, rmse and mae (inches) of *estimator* on labelled rows."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    predicted = estimator.predict(features)
    return {
        "r2": float(r2_score(heights, predicted)),
        "rmse": float(math.sqrt(mean_squared_error(heights, predicted))),
        "mae": float(mean_absolute_error(heights, predicted)),
        "rows": int(len(heights)),
    }


def fold_linear(estimator: Any, low: float = 1.0, high: float = MAX_WEIGHT_LBS):
    """Return ``(slope, intercept, max_relative_error)`` if *estimator* is linear, else None.

    The line through two predictions must reproduce ``estimator.predict`` within
    ``FOLD_TOLERANCE`` over the whole valid weight range, or nothing is folded.
    """
    import numpy as np

    grid = np.linspace(low, high, 2001)
    predicted = np.asarray(estimator.predict(_weights_frame(grid)), dtype=np.float64).reshape(-1)
    slope = (predicted[-1] - predicted[0]) / (grid[-1] - grid[0])
    intercept = predicted[0] - slope * grid[0]
    folded = slope * grid + intercept
    error = float(np.max(np.abs(folded - predicted) / np.maximum(np.abs(predicted), 1e-300)))
    if not np.isfinite(error) or error > FOLD_TOLERANCE:
        return None
    return float(slope), float(intercept), error


def _describe(
    estimator: Any,
    *,
    frame: Any,
    train_weights: Any,
    csv_path: Path,
    rows_dropped: int,
    hyperparameters: dict[str, Any],
    split_rows: dict[str, int],
    metrics: dict[str, float],
) -> dict[str, Any]:
    import joblib
    import numpy as np
    import sklearn

    weights = train_weights.to_numpy(dtype=np.float64)
    counts, edges = np.histogram(weights, bins=HISTOGRAM_BINS)
    folded = fold_linear(estimator)
    return {
        "format": METADATA_FORMAT,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "feature": FEATURE,
        "target": TARGET,
        "units": {FEATURE: "lb", TARGET: "in"},
        "estimator": _estimator_summary(estimator),
        "hyperparameters": hyperparameters,
        "data": {
            "file": csv_path.name,
            "sha256": sha256_file(csv_path),
            "rows": int(len(frame)),
            "rows_dropped": int(rows_dropped),
            "rows_train": split_rows["train"],
            "rows_test": split_rows["test"],
        },
        "libraries": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
        },
        "training_range_lbs": [float(weights.min()), float(weights.max())],
        "weight_stats": {
            "mean": float(weights.mean()),
            "std": float(weights.std(ddof=1)),
            "min": float(weights.min()),
            "max": float(weights.max()),
            "quantiles": {
                f"p{round(q * 100):02d}": float(np.quantile(weights, q)) for q in WEIGHT_QUANTILES
            },
        },
        "weight_histogram": {"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
        "weight_ecdf": _weight_ecdf(weights),
        "height_by_weight": _binned_means(frame),
        "metrics": {"held_out": metrics},
        "folded": (
            None
            if folded is None
            else {"slope": folded[0], "intercept": folded[1], "max_relative_error": folded[2]}
        ),
    }


def _weight_ecdf(weights: Any) -> dict[str, Any]:
    # What the offline drift check's Kolmogorov-Smirnov statistic compares against.
    import numpy as np

    values, counts = np.unique(weights, return_counts=True)
    if len(values) <= ECDF_MAX_POINTS:
        return {"values": values.tolist(), "counts": counts.astype(int).tolist(), "exact": True}
    probabilities = np.linspace(0, 1, ECDF_MAX_POINTS + 1)
    quantiles = np.quantile(weights, probabilities)
    share = len(weights) / len(quantiles)
    return {"values": quantiles.tolist(), "counts": [share] * len(quantiles), "exact": False}


def _binned_means(frame: Any) -> list[dict[str, float]]:
    # The page's chart plots these; storing them keeps the CSV out of serving.
    bins = (frame[FEATURE] // CHART_BIN_WIDTH_LBS) * CHART_BIN_WIDTH_LBS
    grouped = frame.groupby(bins)[TARGET].agg(["mean", "count"])
    return [
        {
            "weight_lbs": float(low + CHART_BIN_WIDTH_LBS / 2),
            "mean_height_inches": round(float(row["mean"]), 3),
            "players": int(row["count"]),
        }
        for low, row in grouped.iterrows()
    ]


def _estimator_summary(estimator: Any) -> str:
    regressor = estimator.regressor_ if hasattr(estimator, "regressor_") else estimator
    steps = getattr(regressor, "steps", None)
    inner = " -> ".join(type(step).__name__ for _, step in steps) if steps else type(regressor)
    return f"{type(estimator).__name__}({inner})"


def save_model(estimator: Any, metadata: dict[str, Any], model_file: Path | str) -> dict:
    """Write *estimator* and its metadata beside it, each atomically; return the metadata.

    The model's version and sha256 are filled in from the bytes written. The joblib
    file is renamed into place first and ``model.json`` last, so readers that verify
    the pair see either the old pair or the new one, or refuse a mismatch.
    """
    import joblib

    destination = Path(model_file)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged_model = _temporary_beside(destination)
    staged_meta = _temporary_beside(metadata_path(destination))
    try:
        joblib.dump(estimator, staged_model)
        digest = sha256_file(staged_model)
        metadata = {
            "model_version": digest[:12],
            "model_file": destination.name,
            "model_sha256": digest,
            **metadata,
        }
        text = json.dumps(metadata, indent=2, sort_keys=False) + "\n"
        _write_synced(staged_meta, text.encode("utf-8"))
        _fsync_file(staged_model)
        install_pair(staged_model, staged_meta, destination)
    finally:
        staged_model.unlink(missing_ok=True)
        staged_meta.unlink(missing_ok=True)
    return metadata


def install_pair(staged_model: Path, staged_meta: Path, model_file: Path) -> None:
    """Rename a synced, staged joblib file and its metadata into place as *model_file*'s pair.

    The joblib file goes first and ``model.json`` last: a crash in between leaves the
    new joblib beside the old metadata, which readers refuse (or recover from the
    registry), never a half-written file. The staged files must lie beside *model_file*.
    """
    os.replace(staged_model, model_file)
    os.replace(staged_meta, metadata_path(model_file))
    _fsync_dir(Path(model_file).parent)
    forget_loaded_models()


def _temporary_beside(path: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(name, 0o644)  # mkstemp makes 0600; a server under another user must read it
    return Path(name)


def _write_synced(path: Path, content: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _weights_frame(weights: Any):
    import pandas as pd

    return pd.DataFrame({FEATURE: weights})


def _fitted_steps(estimator: Any) -> list[Any]:
    return [step for _, step in estimator.regressor_.steps]


# ------------------------------------------------------ evaluation for the lifecycle


def held_out_rows(
    data_file: Path | str,
    *,
    test_size: float = 0.1,
    random_state: int = RANDOM_STATE,
):
    """Return the rows ``train`` holds out of *data_file* with the same split parameters."""
    from sklearn.model_selection import train_test_split

    frame, _dropped = load_data(data_file)
    # Splitting the whole frame draws the same permutation as train's split of X and y.
    _train, test = train_test_split(frame, test_size=test_size, random_state=random_state)
    return test


def score_heights(actual: Any, predicted: Any) -> dict[str, float | None]:
    """Return r2, rmse and mae (inches) of *predicted* heights; r2 is None below two rows."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rows = int(len(actual))
    if rows == 0:
        return {"r2": None, "rmse": None, "mae": None, "rows": 0}
    return {
        # R² needs a variance to explain: undefined (and warned about) for one row.
        "r2": float(r2_score(actual, predicted)) if rows > 1 else None,
        "rmse": float(math.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "rows": rows,
    }


def evaluate_predictor(predictor: Predictor, frame: Any) -> dict[str, float | None]:
    """Return r2, rmse and mae of *predictor* on a frame with Weight and Height columns."""
    predicted = predictor.predict_heights(frame[FEATURE].to_numpy(dtype="float64"))
    return score_heights(frame[TARGET].to_numpy(dtype="float64"), predicted)


def write_bytes_atomic(path: Path | str, content: bytes) -> None:
    """Write *content* to *path* through a synced temporary file and one rename."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = _temporary_beside(destination)
    try:
        _write_synced(staged, content)
        os.replace(staged, destination)
    finally:
        staged.unlink(missing_ok=True)
    _fsync_dir(destination.parent)
