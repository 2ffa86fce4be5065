"""The cookbook's model library: its functions, with their names and signatures, over ``cookbook``.

``load_model``, ``data``, ``retrain``, ``format_input``, ``scale_input``, ``scale_target``,
``height_human``, ``human_readable_payload`` and ``predict`` are what the MLOps cookbook's
readers call; each is a few lines over the package, which never imports this module.
The other names here are the package's, for the notebook and scripts that start from mlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cookbook import __version__
from cookbook.core.answers import height_answer, height_human
from cookbook.core.errors import DataError, InvalidInput, MlibError, ModelError
from cookbook.core.layout import metadata_path
from cookbook.core.loading import read_metadata, verified_metadata
from cookbook.core.model_cache import forget_loaded_models
from cookbook.core.settings import data_path, model_path, project_path
from cookbook.lifecycle import gate
from cookbook.lifecycle.artifacts import default_predictor, load_estimator, load_predictor
from cookbook.lifecycle.model_spec import ModelSpec
from cookbook.lifecycle.training import held_out_rows, load_labelled, train

FEATURE = "Weight"
TARGET = "Height"
InvalidWeight = InvalidInput  # the cookbook's name for a weight the model refuses

__all__ = [
    "DataError",
    "InvalidWeight",
    "MlibError",
    "ModelError",
    "ModelSpec",
    "__version__",
    "data",
    "data_path",
    "default_predictor",
    "forget_loaded_models",
    "format_input",
    "height_human",
    "held_out_rows",
    "human_readable_payload",
    "load_model",
    "load_predictor",
    "metadata_path",
    "model_path",
    "predict",
    "predict_batch",
    "read_metadata",
    "retrain",
    "scale_input",
    "scale_target",
    "train",
    "verified_metadata",
]


def load_model(model: Path | str | None = None) -> Any:
    """Return the fitted estimator at *model* (default ``model_path()``), verified first."""
    return load_estimator(model)


def data(path: Path | str | None = None):
    """Return the validated training data as a DataFrame (rows with missing values dropped)."""
    frame, _dropped = load_labelled(path if path is not None else data_path(), ModelSpec())
    return frame


def retrain(tsize: float = 0.1, model_name: Path | str = "model.joblib") -> tuple[float, str]:
    """Retrain, register and promote behind the quality gate; return ``(r2, model_name)``.

    Raises ``ModelError`` when the new model is worse than the served one and so was
    registered but not promoted (``utilscli.py retrain --force`` overrides the gate).
    """
    result = gate.retrain(data_path(), project_path(model_name), test_size=tsize)
    if not result.promoted:
        raise ModelError(
            f"Model {result.entry.version} was registered but not promoted: it is worse than "
            "the served model (see `python utilscli.py retrain`)."
        )
    return result.metrics["r2"], str(model_name)


def format_input(x: Any):
    """Return *x* as a numpy column of shape (n, 1), as the cookbook does."""
    import numpy as np

    return np.asarray(x, dtype=np.float64).reshape(-1, 1)


def scale_input(val: Any):
    """Return weights standardised with the served model's own fitted weight scaler."""
    import pandas as pd

    scaler = load_model().regressor_.steps[0][1]
    return scaler.transform(pd.DataFrame({FEATURE: format_input(val).reshape(-1)}))


def scale_target(target: Any):
    """Return standardised heights turned back into inches with the model's height scaler."""
    import numpy as np

    return load_model().transformer_.inverse_transform(np.asarray(target).reshape(-1, 1))


def human_readable_payload(predict_value: Any) -> dict[str, Any]:
    """Return the cookbook's prediction dict for a height in inches."""
    # The cookbook passes numpy arrays of shape (1,) or (1, 1) here.
    while hasattr(predict_value, "__len__") and not isinstance(predict_value, str):
        predict_value = predict_value[0]
    return height_answer(float(predict_value))


def predict(weight: Any) -> dict[str, Any]:
    """Return the cookbook's prediction dict for one weight, using the model loaded once."""
    return default_predictor().prediction({FEATURE: weight})


def predict_batch(weights: Sequence[Any]) -> list[dict[str, Any]]:
    """Return one prediction dict per weight, in order; every weight is validated first."""
    return default_predictor().answer({FEATURE: list(weights)})["predictions"]
