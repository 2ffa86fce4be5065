"""Save a trained model pair atomically, and load any verified pair as a Predictor.

A folded model is served from its plain numbers (``cookbook.core.loading``); any other
from its ONNX file when it has one that passed parity (``cookbook.lifecycle.onnx_form``),
else it is unpickled here, and only after its sha256 matched ``model.json``.
A pair is ``model.joblib`` and ``model.json``, plus its side files (``model.onnx``,
``model.trees.npz``) when it has them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.errors import ModelError
from cookbook.core.explanations import Explainer, FoldedExplainer
from cookbook.core.files import (
    fsync_dir,
    fsync_file,
    sha256_file,
    temporary_beside,
    write_synced,
)
from cookbook.core.layout import (
    ONNX,
    SIDE_FILES,
    TREES,
    SideFile,
    entry_model,
    metadata_path,
    recorded_side_files,
    registry_root,
    version_of,
)
from cookbook.core.loading import (
    check_sklearn_version,
    folded_predictor,
    linear_form_of,
    schema_of,
    verified_metadata,
)
from cookbook.core.model_cache import cached_predictor, forget_loaded_models
from cookbook.core.prediction import Predictor, Row
from cookbook.core.settings import model_path
from cookbook.lifecycle.classifying import estimator_outputs
from cookbook.lifecycle.importance import feature_importance
from cookbook.lifecycle.onnx_form import ConversionRefused, convert, onnx_predictor
from cookbook.lifecycle.tree_arrays import TreeArrays, TreesRefused, extract
from cookbook.lifecycle.tree_explainer import TreeShapExplainer, attach_tree_explainer


class EstimatorPredictor(Predictor):
    """A model served by its unpickled estimator's ``predict`` (one that cannot be folded)."""

    def __init__(self, metadata: Mapping[str, Any], path: Path, estimator: Any) -> None:
        super().__init__(metadata, path, schema_of(metadata))
        self.estimator = estimator
        attach_tree_explainer(self, float32_served=False)

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        """Return the estimator's predictions (a classifier's probabilities) for validated
        rows, in order."""
        import pandas as pd

        frame = pd.DataFrame(list(rows), columns=list(self.schema.feature_names))
        outputs = self.predict_frame(frame).tolist()
        return [tuple(row) for row in outputs] if self.is_classifier else outputs

    def predict_frame(self, frame: Any):
        """Return the estimator's predictions (a classifier's probabilities, rows × classes)
        for a frame of the model's features."""
        return estimator_outputs(self.estimator, frame, self.schema)


def load_predictor(model_file: Path | str | None = None) -> Predictor:
    """Verify the model pair at *model_file* (default ``model_path()``) and return a Predictor.

    The joblib file's sha256 is checked against ``model.json`` before anything is
    unpickled. A model with a folded form predicts from it without unpickling, whatever
    scikit-learn is installed; one with an ONNX form from its verified ONNX file, also
    without unpickling; any other from its unpickled estimator.
    """
    path = Path(model_file) if model_file is not None else model_path()
    metadata = verified_metadata(path)
    predictor = folded_predictor(metadata, path) or onnx_predictor(metadata, path)
    if predictor is not None:
        return predictor
    return EstimatorPredictor(metadata, path, unpickle_verified(path, metadata))


def load_estimator(model_file: Path | str | None = None) -> Any:
    """Return the fitted estimator at *model_file* (default ``model_path()``), verified first."""
    path = Path(model_file) if model_file is not None else model_path()
    return unpickle_verified(path, verified_metadata(path))


def unpickle_verified(path: Path, metadata: Mapping[str, Any]) -> Any:
    """Unpickle a joblib file whose sha256 was already verified, or raise ``ModelError``.

    Refused when the pickle was made by another scikit-learn minor: it may load and
    predict differently. A folded model never comes here, so that check never blocks it.
    """
    import joblib

    check_sklearn_version(metadata)
    try:
        return joblib.load(path)
    except Exception as exc:  # a verified file that still fails to load: say so in one line
        raise ModelError(f"Model file {path} could not be loaded ({exc}): retrain.") from None


def default_predictor() -> Predictor:
    """Return the Predictor for ``model_path()``, loaded once and reused."""
    return cached_predictor(model_path(), load_predictor)


def save_model(
    estimator: Any,
    metadata: dict[str, Any],
    model_file: Path | str,
    *,
    held_out: Any = None,
    training_rows: Any = None,
    target_std: float | None = None,
) -> dict:
    """Write *estimator* and its metadata beside it, each atomically; return the metadata.

    The model's version and sha256 are filled in from the bytes written. A model without
    a folded form (``metadata["folded"]`` empty) is also converted to ONNX and checked
    against the estimator on the *held_out* and *training_rows* (frames of its features;
    give real rows whenever there are some) and on rows across its training ranges, to
    1e-3 x *target_std*: one that passes gets
    ``<stem>.onnx`` beside it and ``metadata["onnx"]``; ``metadata["serving"]`` says which
    form serves it and, for the joblib file, why. A tree ensemble's arrays are written as
    ``<stem>.trees.npz`` for its explanations, recorded in ``metadata["trees"]`` (or why
    there are none). The model's explainer scores each feature's importance on the
    *held_out* rows (``metadata["importance"]``). The joblib file is renamed into place
    first, then the side files, and ``model.json`` last, so readers that verify the pair see
    either the old pair or the new one, or refuse a mismatch.

    A folded form in *metadata* is served instead of the estimator, so it must give the
    estimator's own predictions on the real rows given (required with a folded form), else
    ``ModelError`` and nothing is written.
    """
    import joblib

    if metadata.get("folded"):
        check_folded(estimator, metadata, real_rows(held_out, training_rows))
    destination = Path(model_file)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged_model = temporary_beside(destination)
    staged_meta = temporary_beside(metadata_path(destination))
    staged_sides: dict[SideFile, Path] = {}
    try:
        joblib.dump(estimator, staged_model)
        digest = sha256_file(staged_model)
        metadata = {
            "model_version": version_of(digest),
            "model_file": destination.name,
            "model_sha256": digest,
            **{key: value for key, value in metadata.items() if key not in SAVER_FIELDS},
        }
        schema = schema_of(metadata)
        side_data, explainer = forms_of(estimator, metadata, (held_out, training_rows),
                                        target_std)  # fmt: skip
        for side, data in side_data.items():
            staged_sides[side] = temporary_beside(side.path(destination))
            write_synced(staged_sides[side], data)
            metadata[side.key] = {**metadata[side.key], "file": side.path(destination).name,
                                  "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
        if explainer is not None and held_out is not None:
            outputs = estimator_outputs(estimator, held_out[list(schema.feature_names)], schema)
            metadata.update(feature_importance(explainer, schema, held_out, outputs.tolist()))
        write_synced(staged_meta, (json.dumps(metadata, indent=2) + "\n").encode("utf-8"))
        fsync_file(staged_model)
        install_pair(staged_model, staged_meta, destination, staged_sides=staged_sides)
        forget_loaded_models(destination)
    finally:
        staged_model.unlink(missing_ok=True)
        staged_meta.unlink(missing_ok=True)
        for staged in staged_sides.values():
            staged.unlink(missing_ok=True)
    return metadata


# What save_model itself writes into model.json: never carried over from the metadata given.
SAVER_FIELDS = frozenset({*(side.key for side in SIDE_FILES), "serving", "importance",
                          "importance_rows"})  # fmt: skip


def forms_of(
    estimator: Any, metadata: dict[str, Any], rows: tuple[Any, Any], target_std: float | None
) -> tuple[dict[SideFile, bytes], Explainer | None]:
    """Record in *metadata* how the model is served and explained; return its side files'
    bytes (each record's file and sha256 are the saver's to fill in) and its explainer.

    A folded model is served and explained from its folded form. Any other is converted to
    ONNX when it passes parity (``serving_form``; *rows*: ``(held_out, training_rows)``), and
    a tree ensemble's arrays are kept for TreeSHAP, explained as the serving form decides.
    """
    schema = schema_of(metadata)
    if metadata.get("folded"):
        return {}, FoldedExplainer.of(linear_form_of(metadata), schema)
    side_data: dict[SideFile, bytes] = {}
    serving = serving_form(estimator, metadata, rows, target_std)
    if serving.get("onnx") is not None:
        conversion = serving.pop("onnx")
        side_data[ONNX] = conversion.data
        metadata["onnx"] = conversion.record
    metadata["serving"] = serving
    metadata["trees"], trees = tree_arrays_of(estimator, schema)
    if trees is None:
        return side_data, None
    side_data[TREES] = trees.npz_bytes()
    float32_served = metadata.get("onnx", {}).get("input_type") == "float32"
    explainer = TreeShapExplainer(trees.record, side_data[TREES], schema,
                                  float32_served=float32_served)  # fmt: skip
    return side_data, explainer


def tree_arrays_of(estimator: Any, schema: Any) -> tuple[dict[str, Any], TreeArrays | None]:
    """Return ``model.json``'s record of *estimator*'s trees and their arrays, or the record
    of why it has none (``{"file": None, "reason": ...}``) and None."""
    try:
        trees = extract(estimator, schema)
    except TreesRefused as refused:
        return {"file": None, "reason": f"no TreeSHAP explanations: {refused}"}, None
    return {"file": None, "sha256": None, **trees.record}, trees


def check_folded(estimator: Any, metadata: dict[str, Any], rows: Any) -> None:
    """Raise ``ModelError`` unless the folded form predicts *rows* as *estimator* does."""
    import numpy as np

    from cookbook.lifecycle.folding import FOLD_TOLERANCE
    from cookbook.lifecycle.vectorized import evaluate_frame

    if rows is None or len(rows) == 0:
        raise ModelError("A folded form is saved only with rows to check it against.")
    schema = schema_of(metadata)
    names = list(schema.feature_names)
    expected = estimator_outputs(estimator, rows[names], schema)
    folded = evaluate_frame(linear_form_of(metadata), rows[names])
    scale = max(float(np.max(np.abs(expected))), 1.0)
    if not np.allclose(folded, expected, rtol=FOLD_TOLERANCE, atol=FOLD_TOLERANCE * scale):
        worst = float(np.max(np.abs(folded - expected)))
        raise ModelError(
            f"The folded form does not reproduce the estimator on the data (off by up to "
            f"{worst:.3g}): refusing to save numbers that are not the model's own."
        )


def real_rows(held_out: Any, training_rows: Any) -> Any:
    """Return the real rows given to ``save_model`` as one frame (None when there are none)."""
    frames = [rows for rows in (held_out, training_rows) if rows is not None and len(rows)]
    if len(frames) < 2:
        return frames[0] if frames else None
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def serving_form(
    estimator: Any, metadata: Mapping[str, Any], rows: tuple[Any, Any], target_std: float | None
) -> dict[str, Any]:
    """Return ``{"form": "onnx", "onnx": Conversion}``, or the joblib form and why.

    *rows* are the real rows to check: ``(held_out, training_rows)``, either may be None.
    """
    held_out, training_rows = rows
    try:
        conversion = convert(
            estimator,
            schema_of(metadata),
            target_std=target_std,
            held_out=held_out,
            training_rows=training_rows,
        )
    except ConversionRefused as refused:
        return {"form": "joblib", "reason": f"no ONNX form passed parity ({refused})"}
    except ImportError as missing:  # the converters are not installed here
        return {"form": "joblib", "reason": f"ONNX conversion unavailable ({missing})"}
    return {"form": "onnx", "onnx": conversion}


def serving_description(predictor: Predictor) -> str:
    """Return which form serves *predictor*, and why the joblib file when it is that."""
    if predictor.is_folded:
        return "folded linear form"
    if hasattr(predictor, "session"):
        return f"ONNX file {ONNX.path(predictor.path).name} (onnxruntime)"
    serving = predictor.metadata.get("serving") or {}
    reason = serving.get("reason") or (
        "its ONNX file is missing" if predictor.metadata.get("onnx") else "no ONNX form"
    )
    return f"joblib file (unpickled): {reason}"


def install_pair(
    staged_model: Path,
    staged_meta: Path,
    model_file: Path,
    *,
    staged_sides: Mapping[SideFile, Path] | None = None,
) -> None:
    """Rename a synced, staged joblib file and its metadata into place as *model_file*'s pair.

    The joblib file goes first, then the side files (``layout.SIDE_FILES``), and
    ``model.json`` last: a crash in between leaves the new joblib beside the old metadata,
    which readers refuse (or recover from the registry), never a half-written file. The
    staged files must lie beside *model_file*. A side file the staged metadata records and
    *staged_sides* does not give comes from the registry entry of that version (a promotion
    copies a registry entry's joblib and json). The caller forgets the model it replaced
    (``forget_loaded_models``).
    """
    sides = dict(staged_sides or {})
    copied = _entry_side_copies(staged_meta, Path(model_file), missing=sides)
    sides.update(copied)
    try:
        os.replace(staged_model, model_file)
        for side, staged in sides.items():
            os.replace(staged, side.path(model_file))
        os.replace(staged_meta, metadata_path(model_file))
    finally:
        for staged in copied.values():
            staged.unlink(missing_ok=True)
    fsync_dir(Path(model_file).parent)


def _entry_side_copies(
    staged_meta: Path, model_file: Path, *, missing: Mapping[SideFile, Path]
) -> dict[SideFile, Path]:
    """Return synced copies beside *model_file* of the registry entry's side files that the
    staged metadata records and *missing* does not give (only those matching their sha256)."""
    from cookbook.core.files import copy_synced

    try:
        metadata = json.loads(Path(staged_meta).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(metadata, dict):
        return {}
    version = str(metadata.get("model_version", ""))
    copies = {}
    for side in recorded_side_files(metadata):
        source = side.path(entry_model(registry_root(model_file), version))
        if side in missing or not (version and source.is_file()):
            continue
        if sha256_file(source) != metadata[side.key].get("sha256"):
            continue
        copies[side] = temporary_beside(side.path(model_file))
        copy_synced(source, copies[side])
    return copies
