"""Split-conformal prediction intervals: calibration, answers, page, card and old models."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import (
    ANSWER_180_LBS,
    ANSWER_200_LBS,
    ANSWER_250_LBS,
    COMMITTED_VERSION,
    HALF_WIDTH,
    HELD_OUT_COVERAGE,
    HELD_OUT_ROWS,
    ROOT,
    same_fit,
)

import mlib
from app import create_app
from cookbook.core.answers import height_human, round_tenth
from cookbook.core.errors import DataError
from cookbook.core.files import sha256_file
from cookbook.lifecycle import gate, model_spec, modelcard, registry, training
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.web import page
from cookbook.web.served import service_state
from utilscli import cli


def held_out_residuals(model_file: Path, data_file: Path, spec=model_spec.DEFAULT_SPEC):
    """Return |y - ŷ| on the rows train held out, computed without the training code's help."""
    rows = training.held_out_rows(data_file, spec)
    predicted = load_estimator(model_file).predict(rows[list(spec.all_features)])
    return np.abs(rows[spec.target].to_numpy(dtype=float) - predicted)


def conformal_quantile(residuals: np.ndarray, coverage: float) -> float:
    n = len(residuals)
    rank = min(math.ceil((n + 1) * coverage - 1e-9), n)
    return float(np.sort(residuals)[rank - 1])


def without_interval(model_file: Path) -> Path:
    """Rewrite a model.json as older training runs wrote it: no interval (the joblib is kept)."""
    meta = mlib.metadata_path(model_file)
    metadata = json.loads(meta.read_text())
    metadata.pop("interval")
    meta.write_text(json.dumps(metadata, indent=2))
    return model_file


# ----------------------------------------------------------------- calibration


def test_the_half_width_is_the_conformal_quantile_of_held_out_residuals(trained_model, data_file):
    residuals = held_out_residuals(trained_model, data_file)
    interval = mlib.read_metadata(trained_model)["interval"]
    q = conformal_quantile(residuals, 0.9)
    assert len(residuals) == HELD_OUT_ROWS == interval["calibration_rows"]
    assert math.ceil((HELD_OUT_ROWS + 1) * 0.9) == 95  # the 95th smallest of 104 residuals
    assert interval["half_width"] == pytest.approx(q, abs=1e-12)
    assert interval["half_width"] == pytest.approx(HALF_WIDTH, abs=1e-12)
    assert interval["held_out_coverage"] == pytest.approx(np.mean(residuals <= q))
    assert interval["held_out_coverage"] == pytest.approx(HELD_OUT_COVERAGE)
    assert interval["held_out_coverage"] >= 0.9  # measured on its own calibration rows
    assert {k: interval[k] for k in ("method", "coverage", "calibration")} == {
        "method": "split-conformal", "coverage": 0.9, "calibration": "held-out rows"
    }  # fmt: skip


def test_the_interval_leaves_the_fitted_model_alone(trained_model, data_file):
    # The estimator still fits on every training row: the committed model's fit, to the
    # last bits that differ from one CPU to another.
    assert same_fit(trained_model, ROOT / "model.joblib", pd.read_csv(data_file)[["Weight"]])
    assert sha256_file(ROOT / "model.joblib")[:12] == COMMITTED_VERSION
    committed = json.loads((ROOT / "model.json").read_text())
    assert committed["interval"]["half_width"] == pytest.approx(HALF_WIDTH, abs=1e-12)
    entry = json.loads((ROOT / "models" / COMMITTED_VERSION / "model.json").read_text())
    assert entry["interval"] == committed["interval"]


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.99])
def test_train_honours_the_coverage(tmp_path, data_file, trained_model, coverage):
    report = mlib.train(data_file, tmp_path / "model.joblib", coverage=coverage)
    # Only the interval changes: the same bytes as the training at the default coverage.
    assert report.version == mlib.read_metadata(trained_model)["model_version"]
    residuals = held_out_residuals(report.model_file, data_file)
    interval = report.metadata["interval"]
    assert interval["coverage"] == coverage
    assert interval["half_width"] == pytest.approx(conformal_quantile(residuals, coverage))
    if coverage == 0.99:  # ceil(105 × 0.99) = 104 = n: the largest residual
        assert interval["half_width"] == pytest.approx(residuals.max())
    answer = load_predictor(report.model_file).prediction({"Weight": 200})
    assert answer["interval"]["coverage"] == coverage


def test_coverage_outside_its_range_is_refused(tmp_path, data_file):
    with pytest.raises(DataError, match="Coverage must be between"):
        mlib.train(data_file, tmp_path / "model.joblib", coverage=0.3)
    result = CliRunner().invoke(
        cli, ["retrain", "--coverage", "1.5", "--model-name", str(tmp_path / "m.joblib")]
    )
    assert result.exit_code == 2 and "--coverage" in result.output
    assert not (tmp_path / "m.joblib").exists()


def test_retrain_coverage_option_reaches_model_json(tmp_path, data_file):
    model_file = tmp_path / "model.joblib"
    result = CliRunner().invoke(
        cli, ["retrain", "--coverage", "0.8", "--data", str(data_file),
              "--model-name", str(model_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    interval = mlib.read_metadata(model_file)["interval"]
    assert interval["coverage"] == 0.8
    # The gate measured it on the golden set: here the same held-out rows, and says so.
    assert interval["golden_coverage"] == pytest.approx(interval["held_out_coverage"])
    assert interval["golden_independent"] is False


def test_the_gate_checks_coverage_on_an_independent_golden_set(tmp_path, data_file):
    golden = tmp_path / "golden.csv"
    rows = data_file.read_text().splitlines()
    golden.write_text("\n".join(rows[:301]) + "\n")  # the header and 300 rows
    result = gate.retrain(data_file, tmp_path / "model.joblib", golden_file=golden)
    interval = result.entry.metadata["interval"]
    frame, _ = training.load_labelled(golden, model_spec.DEFAULT_SPEC)
    predicted = load_estimator(result.entry.model_file).predict(frame[["Weight"]])
    inside = np.abs(frame["Height"].to_numpy(dtype=float) - predicted) <= interval["half_width"]
    assert interval["golden_coverage"] == pytest.approx(inside.mean())
    assert interval["golden_independent"] is True


def test_retraining_records_the_interval_in_an_entry_that_predates_it(tmp_path, data_file):
    served = tmp_path / "model.joblib"
    first = gate.retrain(data_file, served)
    store = registry.Registry(served)
    entry_model = store.root / first.entry.version / "model.joblib"
    for model_file in (served, entry_model):
        without_interval(model_file)
    joblib_sha = sha256_file(served)
    again = gate.retrain(data_file, served)
    assert again.entry.version == first.entry.version and again.promoted
    for model_file in (served, entry_model):
        assert "interval" in mlib.read_metadata(model_file), model_file
        assert sha256_file(model_file) == joblib_sha
    files = {p: p.read_bytes() for p in tmp_path.rglob("*.json") if p.name != "promotions.json"}
    gate.retrain(data_file, served)  # unchanged data: now nothing to record
    assert {p: p.read_bytes() for p in files} == files


# --------------------------------------------------------------------- answers


def test_every_answer_carries_the_interval_in_the_targets_unit(client, app):
    predictor = service_state(app).served.predictor
    single = client.post("/predict", json={"Weight": 200}).get_json()
    assert single == {"prediction": ANSWER_200_LBS}
    batch = client.post("/predict", json={"Weight": [180, 200, 250, 400]}).get_json()
    answers = batch["predictions"]
    assert answers[:3] == [ANSWER_180_LBS, ANSWER_200_LBS, ANSWER_250_LBS]
    for weight, answer in zip((180, 200, 250, 400), answers, strict=True):
        value = predictor.predict_row((float(weight),))
        assert answer["interval"] == {
            "low": round_tenth(value - HALF_WIDTH),
            "high": round_tenth(value + HALF_WIDTH),
            "coverage": 0.9,
            "low_human_readable": height_human(value - HALF_WIDTH),
            "high_human_readable": height_human(value + HALF_WIDTH),
        }
    assert "warning" in answers[3]  # the extrapolation keeps its warning beside the interval


def test_a_value_answer_interval_uses_its_digits(tmp_path, data_file):
    spec = model_spec.ModelSpec(target="Weight", features=("Height",))
    report = mlib.train(data_file, tmp_path / "model.joblib", spec=spec)
    predictor = load_predictor(report.model_file)
    q, digits = report.metadata["interval"]["half_width"], predictor.schema.answer_digits
    answer = predictor.prediction({"Height": 74})
    value = predictor.predict_row((74.0,))
    assert answer["interval"] == {
        "low": round(value - q, digits), "high": round(value + q, digits), "coverage": 0.9
    }  # fmt: skip
    assert set(answer) == {*predictor.schema.answer_fields(), "interval"}


def test_an_older_model_json_without_an_interval_still_serves(model_copy):
    app = create_app({"MODEL_PATH": str(without_interval(model_copy)), "TESTING": True})
    client = app.test_client()
    plain = {k: v for k, v in ANSWER_200_LBS.items() if k != "interval"}
    assert client.post("/predict", json={"Weight": 200}).get_json() == {"prediction": plain}
    batch = client.post("/predict", json={"Weight": [200, 200]}).get_json()
    assert batch == {"predictions": [plain, plain]}
    html = client.get("/?weight=200").get_data(as_text=True)
    assert 'id="interval-band"' not in html and "players like this" not in html
    assert "6 foot, 2 inches" in html


def test_openapi_documents_the_interval(client):
    document = client.get("/openapi.json").get_json()
    text = json.dumps(document)
    assert '"interval"' in text and "Split-conformal prediction interval" in text


# ------------------------------------------------------------------------ page


def test_the_page_draws_the_band_and_says_the_range_in_words(app, client):
    predictor = service_state(app).served.predictor
    chart = page.Chart.for_model(predictor)
    html = client.get("/?weight=200").get_data(as_text=True)
    words = "90% of players like this are between 5 foot, 10 inches and 6 foot, 5 inches."
    assert f'<p id="answer-interval" class="interval">{words}</p>' in html
    assert '<polygon id="interval-band" class="interval-band"' in html
    assert "90% prediction interval: the model ± 3.4 in (split-conformal)" in html
    low, high = predictor.schema.feature("Weight").training_range
    start, end = predictor.predict_rows([(low,), (high,)])
    expected = [(low, start + HALF_WIDTH), (high, end + HALF_WIDTH),
                (high, end - HALF_WIDTH), (low, start - HALF_WIDTH)]  # fmt: skip
    assert chart.band["points"] == " ".join(f"{chart.x(x)},{chart.y(y)}" for x, y in expected)
    assert chart.y.contains(start - HALF_WIDTH) and chart.y.contains(end + HALF_WIDTH)
    assert f'points="{chart.band["points"]}"' in html
    # Without a row yet the sentence is there for page.js to fill, hidden.
    empty = client.get("/").get_data(as_text=True)
    assert '<p id="answer-interval" class="interval" hidden></p>' in empty
    assert "style=" not in html.replace('rel="stylesheet"', "")


def test_the_form_post_renders_the_range_without_javascript(client):
    html = client.post("/", data={"weight": "250"}).get_data(as_text=True)
    assert "90% of players like this are between 6 foot, 1 inches and 6 foot, 8 inches." in html


# ------------------------------------------------------------------------ card


def test_the_card_describes_the_interval(trained_model):
    card = modelcard.render_card(mlib.read_metadata(trained_model))
    assert "## Prediction interval" in card and "split-conformal" in card
    assert f"± {HALF_WIDTH:.2f} in" in card
    assert f"Held-out coverage: {HELD_OUT_COVERAGE:.1%}" in card
    assert "optimistic by construction" in card
    committed = mlib.read_metadata(ROOT / "model.joblib")["interval"]
    assert f"{committed['golden_coverage']:.1%}" in (ROOT / "MODEL_CARD.md").read_text()


def test_a_card_of_an_older_model_has_no_interval_section(model_copy):
    card = modelcard.render_card(mlib.read_metadata(without_interval(model_copy)))
    assert "Prediction interval" not in card


def test_the_example_model_has_its_interval(tmp_path):
    example = ROOT / "examples" / "height-by-position"
    interval = json.loads((example / "model.json").read_text())["interval"]
    assert interval["method"] == "split-conformal" and interval["calibration_rows"] == 104
    assert "## Prediction interval" in (example / "MODEL_CARD.md").read_text()
    shutil.copytree(example, tmp_path / "example", ignore=shutil.ignore_patterns("models"))
    answer = load_predictor(tmp_path / "example" / "model.joblib").prediction(
        {"Weight": 200, "Position": "Catcher"}
    )
    assert answer["interval"]["high"] - answer["interval"]["low"] == pytest.approx(
        2 * interval["half_width"], abs=0.11
    )
