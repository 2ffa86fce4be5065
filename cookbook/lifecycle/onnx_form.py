"""Convert an unfoldable estimator to ONNX, prove it equal to the estimator, and serve it.

scikit-learn's persistence guide recommends ONNX where serving must not run pickled code.
At save time an estimator that has no folded form is converted (skl2onnx; LightGBM through
onnxmltools' converter) and its predictions are compared with the estimator's on the
held-out rows and on rows drawn across every feature's training range and every category.
It is kept only when the largest difference is within ``PARITY_FACTOR`` times the target's
standard deviation; otherwise the model is served from its verified joblib file and
``model.json`` says why. ``OnnxPredictor`` serves the file with onnxruntime: no unpickling,
no scikit-learn.

Inputs are float64 where the runtime computes the whole graph in float64. Tree ensembles in
``ai.onnx.ml`` opset 3 keep float32 thresholds, so a graph holding one is fed float32 (the
value and the threshold rounded alike); each input type is tried, float64 first, and the
first that passes parity is kept. Trees are therefore fitted on unscaled numbers
(``model_spec.build_estimator``): a scaled float32 value lands on the other side of a split far
more often than a raw one.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.errors import ModelError
from cookbook.core.layout import ONNX
from cookbook.core.loading import read_side_file, schema_of
from cookbook.core.prediction import Predictor, Row
from cookbook.core.schema import NumberFeature, Schema
from cookbook.lifecycle.classifying import estimator_outputs
from cookbook.lifecycle.tree_explainer import attach_tree_explainer

# ONNX predictions must equal the estimator's within this share of the target's std.
PARITY_FACTOR = 1e-3
RANGE_ROWS = 2000  # rows drawn across the training ranges, besides the held-out rows
OPSET = {"": 18, "ai.onnx.ml": 3}
# How rows are fed: one (n, 1) input per feature, by name (a pipeline that selects columns by
# name, such as the cookbook's ColumnTransformer), or one (n, features) matrix (a bare
# estimator fitted on number columns, as an import may bring).
COLUMNS, MATRIX = "columns", "matrix"
MATRIX_INPUT = "X"


class ConversionRefused(Exception):
    """The estimator cannot be converted, or its ONNX form fails parity: the reason."""


@dataclasses.dataclass(frozen=True)
class Conversion:
    """An ONNX form that passed parity: its bytes and what ``model.json`` records of it."""

    data: bytes
    record: dict[str, Any]


def runtime() -> Any:
    """Return the onnxruntime module with its telemetry off.

    Its Linux build ships Microsoft's 1DS telemetry, which writes a session file to the
    temporary folder and would send usage events from a served model: a service must send
    nothing anywhere it was not told to. The variable is read when the runtime starts; the
    call covers a runtime another import already started.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


def session_options():
    """Return onnxruntime options for one thread per worker, run sequentially."""
    ort = runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def open_session(data: bytes | str):
    """Return an onnxruntime session of an ONNX model (bytes or a path), one thread."""
    return runtime().InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])


def _register_lightgbm() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def _holds_lightgbm(estimator: Any) -> bool:
    steps = getattr(estimator, "steps", None) or [(None, estimator)]
    return any(type(step).__module__.startswith("lightgbm") for _, step in steps)


def converter_versions(estimator: Any) -> str:
    """Return the converters that wrote *estimator*'s ONNX form, as ``model.json`` names them."""
    import skl2onnx

    versions = f"skl2onnx {skl2onnx.__version__}"
    if _holds_lightgbm(estimator):
        import onnxmltools

        versions += f", onnxmltools {onnxmltools.__version__} (LightGBM)"
    return versions


def _refuse_float32_thresholds(model: Any) -> None:
    """Raise ``ConversionRefused`` when a float64 graph holds a tree ensemble.

    ``TreeEnsembleRegressor`` (``ai.onnx.ml`` opset 3) keeps its thresholds in float32: fed
    float64 values, a value just above a threshold compares below its rounded copy, which
    puts real rows on the other side of a split far more often than float32 inputs do
    (both sides rounded alike).
    """
    if any(node.op_type.startswith("TreeEnsemble") for node in model.graph.node):
        raise ConversionRefused("tree ensembles keep float32 thresholds")


def _convert(estimator: Any, schema: Schema, dtype: str, layout: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    if _holds_lightgbm(estimator):
        _register_lightgbm()
    number = DoubleTensorType if dtype == "float64" else FloatTensorType
    if layout == MATRIX:
        inputs = [(MATRIX_INPUT, number([None, len(schema.features)]))]
    else:
        inputs = [
            (
                f.name,
                number([None, 1]) if isinstance(f, NumberFeature) else StringTensorType([None, 1]),
            )
            for f in schema.features
        ]
    with warnings.catch_warnings():
        # skl2onnx 1.20 writes the tree ops' boolean flags as Python bools into integer
        # attributes; protobuf 6 warns (7 refuses them: hence protobuf < 7). Only that
        # warning, only here: any other still surfaces.
        warnings.filterwarnings(
            "ignore",
            message=r"Field onnx\.AttributeProto\.ints: Expected an int, got a boolean",
            category=DeprecationWarning,
        )
        # A classifier's probabilities as one (rows, classes) tensor, not a list of maps.
        options = (
            {id(final_step(estimator)): {"zipmap": False}}
            if schema.target.is_classification
            else None
        )
        model = convert_sklearn(
            estimator, initial_types=inputs, target_opset=dict(OPSET), options=options
        )
    # skl2onnx names the graph with a random UUID: named after the model instead, the same
    # estimator converts to the same bytes, so retraining reproduces the ONNX file too.
    model.graph.name = schema.name
    if dtype == "float64":
        _refuse_float32_thresholds(model)
    return model.SerializeToString()


def final_step(estimator: Any) -> Any:
    """Return a pipeline's last step (the estimator itself when it is not a pipeline)."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def output_name(session: Any, schema: Schema) -> str:
    """Return the session output the service answers from: the probabilities of a
    classifier (its second output, after the label), the prediction of a regressor."""
    outputs = session.get_outputs()
    return outputs[1 if schema.target.is_classification else 0].name


def range_rows(schema: Schema, count: int = RANGE_ROWS, seed: int = 0) -> dict[str, Any]:
    """Return *count* rows drawn across every number's training range and every category.

    A third of each number column is drawn uniformly, a third is the same rounded to a whole
    number (pounds, years), and a third is the training values themselves (the schema's
    ECDF): a split threshold lies between two training values, so a value that float32
    puts on the wrong side of it is most likely one of those.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    index = np.arange(count) % 3
    columns: dict[str, Any] = {}
    for feature in schema.features:
        if isinstance(feature, NumberFeature):
            low, high = feature.training_range
            drawn = rng.uniform(low, high, count)
            seen = np.asarray((feature.ecdf or {}).get("values") or [low, high], dtype=float)
            columns[feature.name] = np.select(
                [index == 0, index == 1], [drawn, np.round(drawn)], rng.choice(seen, count)
            )
        else:
            categories = np.array(feature.categories, dtype=object)
            columns[feature.name] = categories[np.arange(count) % len(categories)]
    return columns


def feed_of(
    schema: Schema, columns: Mapping[str, Any], dtype: str, layout: str = COLUMNS
) -> dict[str, Any]:
    """Return onnxruntime's inputs for whole columns: one (n, 1) array per feature, or the
    (n, features) matrix."""
    import numpy as np

    if layout == MATRIX:
        stacked = [np.asarray(columns[name], dtype=dtype) for name in schema.feature_names]
        return {MATRIX_INPUT: np.column_stack(stacked)}
    feed = {}
    for feature in schema.features:
        column = columns[feature.name]
        column = column.to_numpy() if hasattr(column, "to_numpy") else column
        if isinstance(feature, NumberFeature):
            feed[feature.name] = np.asarray(column, dtype=dtype).reshape(-1, 1)
        else:
            feed[feature.name] = np.asarray(column, dtype=object).astype(str).reshape(-1, 1)
    return feed


def convert(
    estimator: Any,
    schema: Schema,
    *,
    target_std: float | None,
    held_out: Any = None,
    training_rows: Any = None,
) -> Conversion:
    """Return *estimator*'s ONNX form proven against it, or raise ``ConversionRefused``.

    The rows checked: *held_out* and *training_rows* (frames of the features, either may be
    None) and ``RANGE_ROWS`` rows across the training ranges. Real rows matter: a split
    threshold lies between two training values, and float32 can put a row that sits at
    one of them on the other side, which random rows seldom reach.
    """
    import numpy as np
    import pandas as pd

    ort = runtime()

    names = list(schema.feature_names)
    real = {"held_out_rows": held_out, "training_rows": training_rows}
    counts = {key: 0 if rows is None else int(len(rows)) for key, rows in real.items()}
    checks = [pd.DataFrame(rows)[names] for rows in real.values() if rows is not None]
    checks.append(pd.DataFrame(range_rows(schema), columns=names))
    frame = pd.concat(checks, ignore_index=True)
    for feature in schema.categorical:
        frame[feature.name] = frame[feature.name].astype(object)
    expected = estimator_outputs(estimator, frame, schema).reshape(len(frame), -1)
    basis = "1e-3 x the target's standard deviation (training rows)"
    if schema.target.is_classification:
        target_std, basis = 1.0, "1e-3 of each class's probability"
    elif target_std is None or not target_std > 0:
        target_std = float(np.std(expected)) or 1.0
        basis = "1e-3 x the standard deviation of the estimator's predictions on the rows checked"
    tolerance = PARITY_FACTOR * float(target_std)
    reasons = []
    layouts = (COLUMNS, MATRIX) if not schema.categorical else (COLUMNS,)
    for layout, dtype in [
        (layout, dtype) for layout in layouts for dtype in ("float64", "float32")
    ]:
        try:
            data = _convert(estimator, schema, dtype, layout)
            session = open_session(data)
            feed = feed_of(schema, frame, dtype, layout)
            got = np.asarray(
                session.run([output_name(session, schema)], feed)[0], dtype=np.float64
            ).reshape(len(frame), -1)
        except Exception as exc:  # any converter or runtime failure is a reason, not a crash
            first_line = (str(exc).splitlines() or [""])[0][:160]
            reasons.append(f"{dtype} {layout}: {type(exc).__name__}: {first_line}")
            continue
        difference = float(np.max(np.abs(got - expected)))
        if not np.isfinite(difference) or difference > tolerance:
            reasons.append(
                f"{dtype} {layout}: max |difference| {difference:.3g} exceeds the tolerance "
                f"{tolerance:.3g}"
            )
            continue
        record = {
            "file": None,  # filled in by the saver, from the model file's name
            "sha256": None,
            "input_type": dtype,
            "inputs": layout,
            "opset": dict(OPSET),
            "runtime": f"onnxruntime {ort.__version__}",
            "converter": converter_versions(estimator),
            "parity": {
                "rows": int(len(frame)),
                **counts,
                "range_rows": RANGE_ROWS,
                "max_abs_difference": difference,
                "tolerance": tolerance,
                "tolerance_basis": basis,
            },
        }
        return Conversion(data, record)
    raise ConversionRefused("; ".join(reasons) or "no ONNX form")


class OnnxPredictor(Predictor):
    """A model served from its verified ONNX file by onnxruntime (one thread per worker)."""

    def __init__(self, metadata: Mapping[str, Any], path: Path, session: Any) -> None:
        import numpy as np

        super().__init__(metadata, path, schema_of(metadata))
        self.session = session
        self.dtype = metadata["onnx"].get("input_type", "float32")
        self.layout = metadata["onnx"].get("inputs", COLUMNS)
        self._np = np
        self._output = output_name(session, self.schema)
        self._kinds = [
            (f.name, isinstance(f, NumberFeature)) for f in self.schema.features
        ]  # fmt: skip
        attach_tree_explainer(self, float32_served=self.dtype == "float32")
        # One (1, 1) input array per feature and thread, refilled for each row: building
        # the arrays anew costs as much as the trees themselves.
        self._row_feeds = threading.local()

    def _row_feed(self) -> tuple[dict[str, Any], list[Any]]:
        feed = getattr(self._row_feeds, "feed", None)
        if feed is None:
            empty = self._np.empty
            if self.layout == MATRIX:
                feed = {MATRIX_INPUT: empty((1, len(self._kinds)), dtype=self.dtype)}
                self._row_feeds.arrays = list(feed[MATRIX_INPUT][0:1].T)  # (1,) views
            else:
                feed = {
                    name: empty((1, 1), dtype=self.dtype if number else object)
                    for name, number in self._kinds
                }
                self._row_feeds.arrays = [array.reshape(1) for array in feed.values()]
            self._row_feeds.feed = feed
        return feed, self._row_feeds.arrays

    def predict_row(self, row: Row) -> Any:
        """Return the ONNX model's prediction (a classifier's probabilities) for one row."""
        feed, cells = self._row_feed()
        for cell, value in zip(cells, row, strict=True):
            cell[0] = value
        got = self.session.run([self._output], feed)[0]
        if self.is_classifier:
            return tuple(got[0].astype(self._np.float64).tolist())
        return float(got[0, 0])

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        """Return the ONNX model's predictions for validated rows, in order."""
        if not rows:
            return []
        columns = {name: [row[i] for row in rows] for i, (name, _) in enumerate(self._kinds)}
        got = self.predict_frame(columns).tolist()
        return [tuple(row) for row in got] if self.is_classifier else got

    def predict_frame(self, columns: Mapping[str, Any]):
        """Return predictions for whole columns of the model's features: float64, one per
        row, or a classifier's probabilities (rows × classes)."""
        feed = feed_of(self.schema, columns, self.dtype, self.layout)
        got = self._np.asarray(self.session.run([self._output], feed)[0], dtype=self._np.float64)
        return got if self.is_classifier else got.reshape(-1)


def onnx_predictor(metadata: Mapping[str, Any], path: Path) -> Predictor | None:
    """Return the OnnxPredictor of a verified model pair that records an ONNX form, else None.

    The ONNX file's sha256 must be the one ``model.json`` records: a mismatch is refused.
    A missing file (a copy that carried only the joblib and json) returns None, so the model
    is served from its verified joblib file.
    """
    data = read_side_file(ONNX, metadata, path)
    if data is None:
        return None
    try:
        session = open_session(data)
    except Exception as exc:  # a verified file the runtime cannot load: one line
        raise ModelError(
            f"ONNX file {ONNX.path(path)} could not be loaded ({exc}): retrain."
        ) from None
    return OnnxPredictor(metadata, path, session)
