"""Why this answer, for a tree model: TreeSHAP over the arrays stored beside it.

A tree model's explanation is its prediction split into one contribution per feature by
TreeSHAP (shap's ``TreeExplainer``, path-dependent: the background is the training cover
each node records), computed from the verified ``<stem>.trees.npz`` (``tree_arrays``) without
unpickling anything. The contributions of a category's one-hot columns sum into that
feature's. The base is the model's expected output over the training cover, so
``base + Σ contributions`` is the explained output, which the trees compute apart
(shap's own traversal, not the SHAP sum).

What is explained is what is served: when the model is served from ONNX with float32 inputs,
the inputs and the thresholds are rounded to float32, so every split goes the way the served
form takes it; from the joblib file, as the estimator compares (a scikit-learn forest reads
float32 inputs, the others float64). A regression explains its predicted value; a boosted
classifier the raw score of the class it answered (binary: that class's log-odds); a random
forest classifier, which averages probabilities, that class's probability.

Lazy: numpy, shap (and the scikit-learn shap imports) are imported, and the explainer is
built, when the first explanation is asked for, once per loaded model, under a lock. A worker
that never explains never imports them.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from typing import Any

from cookbook.core.answer_options import MAX_EXPLAINED_ROWS
from cookbook.core.errors import ModelError
from cookbook.core.layout import TREES
from cookbook.core.loading import read_side_file
from cookbook.core.prediction import Predictor
from cookbook.core.schema import Schema
from cookbook.core.settings import env_number
from cookbook.lifecycle.tree_arrays import PROBABILITY, read_npz, split_trees

# One request's explanations may take about this long on its worker (which answers nothing
# else meanwhile), unless EXPLAIN_BUDGET_SECONDS says otherwise; a model's row limit is what
# fits, measured on LIMIT_PROBE_ROWS rows.
DEFAULT_EXPLAIN_BUDGET_SECONDS = 0.5
LIMIT_PROBE_ROWS = 16


def import_shap() -> Any:
    """Import shap, silencing only the warnings its plotting colours raise on import."""
    with warnings.catch_warnings():
        # shap 0.51 builds its colour maps at import with matplotlib calls that matplotlib
        # marks for deprecation; nothing here plots. Only those warnings, only here.
        warnings.filterwarnings(
            "ignore",
            message=r"The set_\w+ function will be deprecated",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap


class TreeShapExplainer:
    """The exact TreeSHAP explanations of a tree model, built from its stored arrays."""

    def __init__(self, record: Mapping[str, Any], data: bytes, schema: Schema, *,
                 float32_served: bool,
                 budget_seconds: float = DEFAULT_EXPLAIN_BUDGET_SECONDS) -> None:  # fmt: skip
        self.record = record
        self.budget_seconds = budget_seconds
        self._data = data
        self._names = tuple(schema.feature_names)
        position = {name: i for i, name in enumerate(self._names)}
        # (row index, category or None) for each tree input column.
        self._columns = [(position[c["feature"]], c["category"]) for c in record["columns"]]
        self._class_outputs = [tuple(pair) for pair in record["class_outputs"]]
        self._round_thresholds = float32_served and record["float32_thresholds"] == "nearest"
        self._round_inputs = float32_served or record.get("native_input_type") == "float32"
        self._lock = threading.Lock()
        self._built: tuple[Any, ...] | None = None
        self._row_limit: int | None = None

    def _build(self) -> tuple[Any, ...]:
        """Return ``(numpy, shap explainer, column → feature matrix, base per output)``."""
        built = self._built
        if built is not None:
            return built
        with self._lock:
            if self._built is None:
                self._built = self._make()
            return self._built

    def _make(self) -> tuple[Any, ...]:
        import numpy as np

        shap = import_shap()
        arrays = read_npz(self._data)
        if self._round_thresholds:
            arrays["thresholds"] = arrays["thresholds"].astype(np.float32).astype(np.float64)
        record = self.record
        model = {
            "trees": split_trees(arrays),
            "base_offset": np.asarray(record["base_offset"], dtype=np.float64),
            "tree_output": "probability" if record["output"] == PROBABILITY else "raw_value",
            "internal_dtype": np.float64,
            "input_dtype": np.float64,
        }
        explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
        grouping = np.zeros((len(self._columns), len(self._names)))
        for column, (index, _) in enumerate(self._columns):
            grouping[column, index] = 1.0
        # The base: the expected output over the training cover, the same for every row
        # (what SHAP's bias term is); the output any row's SHAP values add to, less them.
        probe = np.zeros((1, len(self._columns)))
        phi = self._shap(explainer, probe, np)
        base = np.asarray(explainer.model.predict(probe), dtype=np.float64).reshape(1, -1)[0]
        base = base - phi[0].sum(axis=0)
        return np, explainer, grouping, base

    @staticmethod
    def _shap(explainer: Any, matrix: Any, np: Any) -> Any:
        """Return SHAP values as (rows, columns, outputs)."""
        phi = np.asarray(explainer.shap_values(matrix, check_additivity=False), dtype=np.float64)
        return phi.reshape(matrix.shape[0], matrix.shape[1], -1)

    def _matrix(self, rows: Sequence[Sequence[Any]], np: Any) -> Any:
        """Return the tree input columns of validated rows (one-hot categories), rounded as the
        served form reads them."""
        matrix = np.empty((len(rows), len(self._columns)))
        for column, (index, category) in enumerate(self._columns):
            if category is None:
                matrix[:, column] = [row[index] for row in rows]
            else:
                matrix[:, column] = [row[index] == category for row in rows]
        if self._round_inputs:
            matrix = matrix.astype(np.float32).astype(np.float64)
        return matrix

    def row_limit(self) -> int:
        """Return the most rows one request may have explained: as many as TreeSHAP explains
        in its budget (``EXPLAIN_BUDGET_SECONDS``) on this worker, measured once (a deep
        forest's row costs milliseconds: a thousand of them would hold the worker for
        seconds), at least 1 and at most ``MAX_EXPLAINED_ROWS``."""
        if self._row_limit is None:
            np, explainer, _grouping, _base = self._build()
            probe = np.zeros((LIMIT_PROBE_ROWS, len(self._columns)))
            started = time.perf_counter()
            self._shap(explainer, probe, np)
            per_row = (time.perf_counter() - started) / LIMIT_PROBE_ROWS
            fitting = int(self.budget_seconds / per_row) if per_row > 0 else MAX_EXPLAINED_ROWS
            self._row_limit = max(1, min(MAX_EXPLAINED_ROWS, fitting))
        return self._row_limit

    def explain(self, row: Sequence[Any], answered: int = 0) -> dict[str, Any]:
        """Return ``{"base", "contributions", "prediction"}`` for a validated row (a
        classifier: of the class at index *answered*)."""
        return self.explain_rows([row], [answered])[0]

    def explain_rows(self, rows: Sequence[Sequence[Any]], answered: Sequence[int]) -> list[dict]:
        """Return the explanation of each validated row, in one TreeSHAP call."""
        if not rows:
            return []
        np, explainer, grouping, base = self._build()
        matrix = self._matrix(rows, np)
        phi = self._shap(explainer, matrix, np)
        outputs = np.asarray(explainer.model.predict(matrix), dtype=np.float64)
        outputs = outputs.reshape(len(rows), -1)
        by_feature = np.einsum("rco,cf->rfo", phi, grouping)
        explanations = []
        names = self._names
        for i, index in enumerate(answered):
            column, sign = self._class_outputs[index]
            contributions = (sign * by_feature[i, :, column]).tolist()
            explanations.append({
                "base": float(sign * base[column]),
                "contributions": dict(zip(names, contributions, strict=True)),
                "prediction": float(sign * outputs[i, column]),
            })  # fmt: skip
        return explanations


def attach_tree_explainer(predictor: Predictor, *, float32_served: bool) -> None:
    """Give a tree model's *predictor* the explainer of its verified trees file, or say why it
    has none (its trees are not explained, or the file is missing); *float32_served*: the
    model is served from ONNX with float32 inputs. Nothing is imported or built until an
    explanation is asked for. A trees file that does not match ``model.json`` is refused
    (``ModelError``), as the ONNX file is."""
    record = predictor.metadata.get("trees")
    if not record:  # saved before this version stored the trees' arrays
        predictor.why_unexplained = (
            "it was saved without its trees' arrays (by an earlier version of the cookbook): "
            "retrain it, or import it again"
        )
        return
    if not record.get("file"):
        predictor.why_unexplained = str(record.get("reason") or "its trees are not explained")
        return
    data = read_side_file(TREES, predictor.metadata, predictor.path)
    if data is None:
        predictor.why_unexplained = f"its trees file {TREES.path(predictor.path).name} is missing"
        return
    # Looked up, not imported: an environment trimmed of shap says so in the 400, and the
    # model's documents offer no explanations, instead of a 500 on the first one asked for.
    if find_spec("shap") is None:
        predictor.why_unexplained = "shap, which explains tree models, is not installed here"
        return
    try:
        budget = env_number(os.environ, "EXPLAIN_BUDGET_SECONDS", DEFAULT_EXPLAIN_BUDGET_SECONDS,
                            minimum=0)  # fmt: skip
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    predictor.explainer = TreeShapExplainer(
        record, data, predictor.schema, float32_served=float32_served, budget_seconds=budget
    )
