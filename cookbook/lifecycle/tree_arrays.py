"""Extract a fitted tree ensemble's arrays, so its predictions can be explained unpickled.

At save time (training and import both pass through ``artifacts.save_model``) the trees of a
hist-gradient-boosting, random-forest or LightGBM model, regressor or classifier, bare or in
the cookbook's pipeline (numbers passed through, categories one-hot encoded), are read into
flat numpy arrays in the shape shap's ``TreeExplainer`` takes as a dict model (one
``SingleTree`` per tree: children, default child, split feature, threshold, node values and
cover). They are written beside the model as ``<stem>.trees.npz`` (loaded with
``allow_pickle=False``) and ``model.json["trees"]`` records the file, its sha256 and how the
tree input columns map back to the schema's features. Anything else (a scaler before the
trees, another estimator, native categorical splits) raises ``TreesRefused`` with the reason,
which ``model.json`` keeps so an explain request can name it.

The arrays mirror shap's own conversions (``shap/explainers/_tree.py``, ``TreeEnsemble``):
every tree splits ``x <= threshold`` to the left child; leaf values already include the
learning rate; a random forest's values are each leaf's class shares (classifier) or value,
scaled by 1 / trees, so their sum is the forest's average.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from typing import Any

from cookbook.core.explanations import PROBABILITY_OUTPUT
from cookbook.core.schema import NumberFeature, Schema
from cookbook.lifecycle.classifying import class_order

HGB = "hist-gradient-boosting"
FOREST = "random-forest"
LIGHTGBM = "lightgbm"
# What the summed tree outputs are: a regression's value or a boosted classifier's raw
# scores (log-odds, logits), or a forest classifier's averaged class probabilities.
RAW, PROBABILITY = "raw", PROBABILITY_OUTPUT
ARRAY_NAMES = ("tree_starts", "children_left", "children_right", "children_default",
               "features", "thresholds", "values", "node_sample_weight")  # fmt: skip


class TreesRefused(Exception):
    """The model's trees cannot be explained from stored arrays: the reason."""


@dataclasses.dataclass(frozen=True)
class TreeArrays:
    """A tree ensemble as flat arrays (every tree's nodes one after the other) and the
    facts ``model.json`` records of them."""

    arrays: dict[str, Any]  # ARRAY_NAMES -> numpy arrays
    record: dict[str, Any]

    def npz_bytes(self) -> bytes:
        """Return the arrays as an uncompressed ``.npz`` file (no pickled objects), the same
        bytes for the same arrays: each member's time is fixed, where ``numpy.savez`` writes
        the clock's, so retraining reproduces the file."""
        import zipfile

        import numpy as np

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in ARRAY_NAMES:
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(member, "w", force_zip64=True) as stream:
                    np.lib.format.write_array(stream, np.ascontiguousarray(self.arrays[name]),
                                              allow_pickle=False)  # fmt: skip
        return buffer.getvalue()


def read_npz(data: bytes) -> dict[str, Any]:
    """Return the arrays of a ``.npz`` file's bytes, refusing any pickled object."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return {name: loaded[name] for name in ARRAY_NAMES}


def extract(estimator: Any, schema: Schema) -> TreeArrays:
    """Return the arrays of *estimator*'s trees, or raise ``TreesRefused`` saying why."""
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        if len(steps) != 2:
            raise TreesRefused(
                f"a pipeline of {len(steps)} steps (explained: a tree ensemble, alone or after "
                "one ColumnTransformer of passed-through numbers and one-hot categories)"
            )
        columns = encoded_columns(steps[0][1], schema)
        model = steps[1][1]
    else:
        model = estimator
        columns = bare_columns(model, schema)
    family, trees, base_offset, output = _trees_of(model, schema)
    if getattr(model, "n_features_in_", len(columns)) != len(columns):
        raise TreesRefused(
            f"the trees read {model.n_features_in_} columns, the encoding gives {len(columns)}"
        )
    outputs = trees[0]["values"].shape[1]
    record = {
        "family": family,
        "output": output,
        "outputs": outputs,
        "base_offset": [float(v) for v in base_offset],
        "class_outputs": _class_outputs(model, schema, family, outputs),
        # What the estimator itself compares with its thresholds: scikit-learn's forests read
        # float32 inputs. Served from ONNX with float32 inputs, the thresholds are float32
        # too: skl2onnx picks, for a forest, the float32 threshold that keeps the
        # estimator's own decision ("native"); for hist-gradient boosting (skl2onnx) and
        # LightGBM (onnxmltools) it is the threshold rounded to the nearest float32.
        "native_input_type": "float32" if family == FOREST else "float64",
        "float32_thresholds": "native" if family == FOREST else "nearest",
        "columns": [{"feature": name, "category": category} for name, category in columns],
        "trees": len(trees),
        "nodes": int(sum(len(t["features"]) for t in trees)),
    }
    return TreeArrays(_flatten(trees), record)


def bare_columns(model: Any, schema: Schema) -> list[tuple[str, str | None]]:
    """Return the input columns of a tree ensemble fitted on the number features alone."""
    names = [str(n) for n in getattr(model, "feature_names_in_", schema.feature_names)]
    numbers = {f.name for f in schema.features if isinstance(f, NumberFeature)}
    if set(names) != set(schema.feature_names) or not set(names) <= numbers:
        raise TreesRefused(
            "a bare tree ensemble is explained on number features only; this one reads "
            f"{', '.join(names)}"
        )
    return [(name, None) for name in names]


def encoded_columns(transformer: Any, schema: Schema) -> list[tuple[str, str | None]]:
    """Return the tree input columns a fitted ColumnTransformer gives: ``(feature, None)`` for
    a passed-through number, ``(feature, category)`` for each one-hot column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    if not isinstance(transformer, ColumnTransformer):
        raise TreesRefused(
            f"a {type(transformer).__name__} before the trees (explained: numbers passed "
            "through and categories one-hot encoded, so every split reads a feature's own value)"
        )
    numbers = {f.name for f in schema.features if isinstance(f, NumberFeature)}
    categories = set(schema.feature_names) - numbers
    columns: list[tuple[str, str | None]] = []
    for name, step, selected in transformer.transformers_:
        selected = [str(c) for c in ([selected] if isinstance(selected, str) else selected)]
        if step == "drop" or not selected:
            continue
        # A fitted "passthrough" is an identity FunctionTransformer.
        identity = step == "passthrough" or (
            isinstance(step, FunctionTransformer) and step.func is None
        )
        if identity and set(selected) <= numbers:
            columns.extend((column, None) for column in selected)
        elif (
            isinstance(step, OneHotEncoder)
            and set(selected) <= categories
            and step.drop is None
            and not getattr(step, "_infrequent_enabled", False)
        ):
            for column, seen in zip(selected, step.categories_, strict=True):
                columns.extend((column, str(category)) for category in seen)
        else:
            raise TreesRefused(
                f"the {name!r} step ({type(step).__name__ if step != 'passthrough' else step} "
                f"of {', '.join(selected)}) is neither numbers passed through nor a plain "
                "one-hot encoding of categories"
            )
    return columns


def _trees_of(model: Any, schema: Schema) -> tuple[str, list[dict[str, Any]], Any, str]:
    """Return ``(family, trees, base offset per output, output kind)`` of a fitted ensemble."""
    kind = type(model).__name__
    if kind in ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier"):
        return HGB, *_hgb_trees(model)
    if kind in ("RandomForestRegressor", "RandomForestClassifier"):
        return FOREST, *_forest_trees(model)
    if kind in ("LGBMRegressor", "LGBMClassifier"):
        return LIGHTGBM, *_lightgbm_trees(model)
    raise TreesRefused(
        f"{kind} is not a tree ensemble the cookbook explains (hist-gradient-boosting, "
        "random forest, LightGBM)"
    )


def _hgb_trees(model: Any) -> tuple[list[dict[str, Any]], Any, str]:
    import numpy as np

    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise TreesRefused("hist-gradient-boosting's native categorical splits (bitsets)")
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    per_iteration = len(model._predictors[0])
    trees = []
    for iteration in model._predictors:
        for output, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            left = np.where(leaf, -1, nodes["left"]).astype(np.int32)
            right = np.where(leaf, -1, nodes["right"]).astype(np.int32)
            values = np.zeros((len(nodes), per_iteration))
            values[:, output] = nodes["value"]
            trees.append({
                "children_left": left,
                "children_right": right,
                "children_default": np.where(nodes["missing_go_to_left"].astype(bool),
                                             left, right).astype(np.int32),
                "features": np.where(leaf, -2, nodes["feature_idx"]).astype(np.int32),
                "thresholds": nodes["num_threshold"].astype(np.float64),
                "values": values,
                "node_sample_weight": nodes["count"].astype(np.float64),
            })  # fmt: skip
    return trees, baseline, RAW


def _forest_trees(model: Any) -> tuple[list[dict[str, Any]], Any, str]:
    import numpy as np

    if getattr(model, "n_outputs_", 1) != 1:
        raise TreesRefused("a random forest of several targets")
    scale = 1.0 / len(model.estimators_)
    classifier = hasattr(model, "classes_")
    trees = []
    for member in model.estimators_:
        tree = member.tree_
        values = tree.value.reshape(tree.value.shape[0], -1).astype(np.float64)
        if classifier:  # each node's class shares, as predict_proba reads a leaf
            values = values / values.sum(axis=1, keepdims=True)
        left = tree.children_left.astype(np.int32)
        right = tree.children_right.astype(np.int32)
        missing_left = getattr(tree, "missing_go_to_left", None)
        default = left if missing_left is None else np.where(missing_left, left, right)
        trees.append({
            "children_left": left,
            "children_right": right,
            "children_default": default.astype(np.int32),
            "features": tree.feature.astype(np.int32),
            "thresholds": tree.threshold.astype(np.float64),
            "values": values * scale,
            "node_sample_weight": tree.weighted_n_node_samples.astype(np.float64),
        })  # fmt: skip
    outputs = trees[0]["values"].shape[1]
    return trees, np.zeros(outputs), PROBABILITY if classifier else RAW


def _lightgbm_trees(model: Any) -> tuple[list[dict[str, Any]], Any, str]:
    import numpy as np

    dump = model.booster_.dump_model()
    if dump.get("average_output"):
        raise TreesRefused("LightGBM in random-forest mode (averaged outputs)")
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    trees = []
    for info in dump["tree_info"]:
        if info.get("num_cat", 0) or info.get("is_linear"):
            raise TreesRefused(
                "LightGBM's native categorical splits" if info.get("num_cat")
                else "LightGBM's linear trees"
            )  # fmt: skip
        trees.append(_lightgbm_tree(info, info["tree_index"] % per_iteration, per_iteration))
    return trees, np.zeros(per_iteration), RAW


def _lightgbm_tree(info: dict[str, Any], output: int, outputs: int) -> dict[str, Any]:
    """Return one tree of ``booster_.dump_model()`` as arrays: internal nodes by split index,
    then the leaves; internal and leaf counts are the cover."""
    import numpy as np

    internal = int(info["num_leaves"]) - 1
    size = 2 * internal + 1
    left = np.full(size, -1, dtype=np.int32)
    right = np.full(size, -1, dtype=np.int32)
    default = np.full(size, -1, dtype=np.int32)
    features = np.full(size, -2, dtype=np.int32)
    thresholds = np.zeros(size)
    values = np.zeros((size, outputs))
    cover = np.zeros(size)

    def index(node: dict[str, Any]) -> int:
        return node["split_index"] if "split_index" in node else internal + node["leaf_index"]

    stack = [info["tree_structure"]]
    while stack:
        node = stack.pop()
        at = index(node)
        if "split_index" not in node:
            values[at, output] = node["leaf_value"]
            cover[at] = node.get("leaf_count", 0)
            continue
        if node["decision_type"] != "<=" or node.get("missing_type") == "Zero":
            raise TreesRefused(
                f"a LightGBM split of decision {node['decision_type']!r}, missing type "
                f"{node.get('missing_type')!r} (explained: '<=' on the value itself)"
            )
        left[at], right[at] = index(node["left_child"]), index(node["right_child"])
        default[at] = left[at] if node["default_left"] else right[at]
        features[at] = node["split_feature"]
        thresholds[at] = float(node["threshold"])
        values[at, output] = node.get("internal_value", 0.0)
        cover[at] = node["internal_count"]
        stack.extend((node["left_child"], node["right_child"]))
    return {"children_left": left, "children_right": right, "children_default": default,
            "features": features, "thresholds": thresholds, "values": values,
            "node_sample_weight": cover}  # fmt: skip


def _class_outputs(model: Any, schema: Schema, family: str, outputs: int) -> list[list[int]]:
    """Return ``[output column, sign]`` per schema class (a regression: its one output): what
    explains class *i* is *sign* times the trees' output *column*. A boosted binary model has
    one output, the log-odds of its second class, so its first class is that negated."""
    if not schema.target.is_classification:
        return [[0, 1]]
    order = class_order(model, schema)
    if outputs == 1:
        return [[0, 1 if column == 1 else -1] for column in order]
    return [[column, 1] for column in order]


def _flatten(trees: Sequence[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    sizes = [len(t["features"]) for t in trees]
    arrays = {"tree_starts": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)}
    for name in ARRAY_NAMES[1:]:
        arrays[name] = np.concatenate([t[name] for t in trees])
    return arrays


def split_trees(arrays: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the flat arrays as shap's list of per-tree dicts."""
    starts = arrays["tree_starts"]
    return [
        {name: arrays[name][start:end] for name in ARRAY_NAMES[1:]}
        for start, end in zip(starts[:-1], starts[1:], strict=True)
    ]
