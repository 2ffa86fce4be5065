"""One model cache for the process, invalidated by whoever replaces a model file."""

from pathlib import Path

from cookbook.core import model_cache
from cookbook.lifecycle.artifacts import load_predictor


def test_a_model_is_loaded_once_per_path_until_forgotten(model_copy, tmp_path):
    loads = []

    def load(path: Path):
        loads.append(path)
        return load_predictor(path)

    model_cache.forget_loaded_models()
    first = model_cache.cached_predictor(model_copy, load)
    assert model_cache.cached_predictor(str(model_copy), load) is first  # str or Path alike
    model_cache.forget_loaded_models(tmp_path / "another.joblib")  # another file: kept
    assert model_cache.cached_predictor(model_copy, load) is first
    model_cache.forget_loaded_models(model_copy)
    assert model_cache.cached_predictor(model_copy, load) is not first
    assert len(loads) == 2
    model_cache.forget_loaded_models()


def test_saving_a_model_forgets_the_one_it_replaced(model_copy, data_file, monkeypatch):
    import mlib

    monkeypatch.setenv("MODEL_PATH", str(model_copy))
    mlib.forget_loaded_models()
    before = mlib.default_predictor()
    after = mlib.train(data_file, model_copy, alpha=50.0).version
    assert mlib.default_predictor().version == after != before.version
    mlib.forget_loaded_models()
