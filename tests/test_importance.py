"""What the model relies on: a model's recorded importance on /model, beside each feature's
drift (GET /drift and ``utilscli.py drift``, with the features by concern) and on its card.

Importance is computed at training by other code; here it is written into a copy of real
models' ``model.json`` (a Ridge regression of Height on Weight, Age and Position; breast_cancer
and iris logistic regressions), with distinct values in an order unlike the schema's, so that
every ordering is tested. Adding it leaves the pair verified: the sha256 is the joblib file's.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import CANCER_FEATURES

from app import create_app
from cookbook.core.errors import ModelError
from cookbook.core.importance import (
    importance_of,
    importance_ranks,
    importance_unit,
    rank_drift,
)
from cookbook.core.layout import metadata_path, present_side_files
from cookbook.core.loading import schema_of
from cookbook.lifecycle import modelcard
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.model_spec import spec_for
from cookbook.lifecycle.training import train
from utilscli import cli

SVG = "{http://www.w3.org/2000/svg}"
# Stored in an order that is neither the schema's nor the ranks'.
HEIGHT_IMPORTANCE = {"Position": 0.9, "Weight": 1.5, "Age": 0.2}
CANCER_IMPORTANCE = {"mean_radius": 0.3, "mean_texture": 1.1, "mean_concavity": 2.0,
                     "mean_smoothness": 0.05}  # fmt: skip
IRIS_IMPORTANCE = {"sepal_length": 0.4, "sepal_width": 0.1, "petal_length": 2.5,
                   "petal_width": 1.7}  # fmt: skip
IMPORTANCE_ROWS = 57


def with_importance(model_file: Path, folder: Path, importance: dict | None) -> Path:
    """Copy the model pair at *model_file* into *folder*, its ``model.json`` recording
    *importance* (None: none, as a model saved before importance was recorded); return the
    copy's model file."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in (model_file, *present_side_files(model_file)):
        shutil.copy2(source, folder / source.name)
    metadata = json.loads(metadata_path(model_file).read_text(encoding="utf-8"))
    if importance is None:  # as a model saved before importance was recorded
        metadata.pop("importance", None)
        metadata.pop("importance_rows", None)
    else:
        metadata["importance"] = importance
        metadata["importance_rows"] = IMPORTANCE_ROWS
    copy = folder / model_file.name
    metadata_path(copy).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def height(tmp_path_factory, data_file) -> Path:
    """A Ridge regression of Height (inches) on Weight, Age and Position."""
    folder = tmp_path_factory.mktemp("height")
    spec = spec_for("Height", ["Weight", "Age"], ["Position"])
    return train(data_file, folder / "trained" / "model.joblib", spec=spec).model_file


@pytest.fixture
def models(tmp_path, height, classifier) -> dict[str, Path]:
    """Private copies of each model with importance, and of the regression without."""
    return {
        "height": with_importance(height, tmp_path / "height", HEIGHT_IMPORTANCE),
        "cancer": with_importance(
            classifier("binary", "logistic-regression"), tmp_path / "cancer", CANCER_IMPORTANCE
        ),  # fmt: skip
        "iris": with_importance(
            classifier("multiclass", "logistic-regression"), tmp_path / "iris", IRIS_IMPORTANCE
        ),  # fmt: skip
        "plain": with_importance(height, tmp_path / "plain", None),
    }


def client_of(model_file: Path):
    return create_app({"MODEL_PATH": str(model_file), "TESTING": True,
                       "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}}).test_client()  # fmt: skip


def drifted_heights(data_file: Path) -> pd.DataFrame:
    """Real rows whose Weight and Age drift (Age further) while Position keeps its mix."""
    rows = pd.read_csv(data_file).sample(500, random_state=3)
    rows["Weight"] = 260.0
    rows["Age"] = 45.0
    return rows


def drifted_tumours(cancer_file: Path) -> pd.DataFrame:
    """Real rows whose mean_radius and mean_texture drift; the other two keep their mix."""
    rows = pd.read_csv(cancer_file).sample(500, random_state=3)
    rows["mean_radius"] = 24.0
    rows["mean_texture"] = 33.0
    return rows


# ------------------------------------------------------------------------ the core


def test_importance_is_read_in_schema_order_and_ranked(models):
    metadata = json.loads(metadata_path(models["height"]).read_text())
    importance = importance_of(metadata, schema_of(metadata))
    assert list(importance) == ["Weight", "Age", "Position"]  # the schema's order
    assert importance == HEIGHT_IMPORTANCE
    assert importance_ranks(importance) == {"Weight": 1, "Position": 2, "Age": 3}
    assert importance_ranks({"a": 1.0, "b": 2.0, "c": 1.0}) == {"b": 1, "a": 2, "c": 3}
    assert load_predictor(models["height"]).importance == HEIGHT_IMPORTANCE
    assert load_predictor(models["plain"]).importance is None


@pytest.mark.parametrize(
    "stored, words",
    [
        ({"Weight": 1.0, "Age": 0.5}, "no number for Position"),
        ({"Weight": 1.0, "Age": -0.5, "Position": 1.0}, "Age is -0.5"),
        ({"Weight": "1.0", "Age": 0.5, "Position": 1.0}, "no number for Weight"),
        ({"Weight": True, "Age": 0.5, "Position": 1.0}, "no number for Weight"),
        ([1.0, 0.5, 1.0], "not a mapping"),
    ],
)
def test_a_malformed_importance_refuses_the_model(models, tmp_path, stored, words):
    broken = with_importance(models["plain"], tmp_path / "broken", stored)
    with pytest.raises(ModelError, match=words):
        load_predictor(broken)


def test_a_reload_refuses_a_malformed_importance_and_keeps_serving(models):
    model_file = models["height"]
    app = create_app({"MODEL_PATH": str(model_file), "TESTING": True, "ADMIN_TOKEN": "s3cret",
                      "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}})  # fmt: skip
    client, bearer = app.test_client(), {"Authorization": "Bearer s3cret"}
    metadata = json.loads(metadata_path(model_file).read_text())
    metadata["importance"] = {"Weight": 1.5}
    metadata_path(model_file).write_text(json.dumps(metadata))
    response = client.post("/admin/reload", headers=bearer)
    assert response.status_code == 409, response.get_json()
    assert "importance has no number for Age" in response.get_json()["error"]
    assert client.get("/drift").get_json()["features_by_concern"] == ["Weight", "Position", "Age"]


def entry(name: str, psi: float, verdict: str) -> dict:
    return {"feature": name, "psi": psi, "verdict": verdict}


@pytest.mark.parametrize(
    "importance, expected",
    [
        # Drifting first, the most important first, whatever the PSI; then the rest.
        ({"a": 0.1, "b": 3.0, "c": 2.0, "d": 1.0}, ["b", "a", "c", "d"]),
        ({"a": 5.0, "b": 0.1, "c": 2.0, "d": 1.0}, ["a", "b", "c", "d"]),
        # Without importance: the worse verdict, then the larger PSI.
        (None, ["a", "b", "d", "c"]),
    ],
)
def test_drifting_features_that_matter_come_first(models, importance, expected):
    schema = schema_of(json.loads(metadata_path(models["height"]).read_text()))
    features = [entry("a", 0.9, "alert"), entry("b", 0.2, "warn"), entry("c", 0.01, "ok"),
                entry("d", 0.05, "ok")]  # fmt: skip
    fields = rank_drift(features, importance, importance_unit(schema, {}))
    assert fields["features_by_concern"] == expected
    assert fields["importance_unit"] == (None if importance is None else "inches")
    ranks = importance_ranks(importance) if importance else {}
    for feature in features:
        name = feature["feature"]
        assert feature["importance"] == (None if importance is None else importance[name])
        assert feature["importance_rank"] == ranks.get(name)


# -------------------------------------------------------------------------- /model


@pytest.mark.parametrize(
    "name, expected",
    [("height", HEIGHT_IMPORTANCE), ("cancer", CANCER_IMPORTANCE), ("iris", IRIS_IMPORTANCE)],
)
def test_model_answers_the_importance_it_records(models, name, expected):
    response = client_of(models[name]).get("/model")
    assert response.status_code == 200
    body = response.get_json()
    assert body["importance"] == expected and body["importance_rows"] == IMPORTANCE_ROWS


def test_model_without_importance_answers_without_the_field(models):
    response = client_of(models["plain"]).get("/model")
    assert response.status_code == 200
    assert "importance" not in response.get_json()


def test_model_with_importance_is_still_behind_the_token(models):
    app = create_app({"MODEL_PATH": str(models["height"]), "TESTING": True, "API_TOKEN": "t0k",
                      "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}})  # fmt: skip
    client = app.test_client()
    assert client.get("/model").status_code == 401
    answer = client.get("/model", headers={"Authorization": "Bearer t0k"})
    assert answer.status_code == 200 and answer.get_json()["importance"] == HEIGHT_IMPORTANCE


# -------------------------------------------------------------------------- /drift


def by_name(report: dict) -> dict[str, dict]:
    return {feature["feature"]: feature for feature in report["features"]}


def test_drift_puts_importance_beside_a_regressions_drift(models, data_file):
    client = client_of(models["height"])
    idle = client.get("/drift").get_json()
    assert [f["importance"] for f in idle["features"]] == [1.5, 0.2, 0.9]  # schema order
    assert [f["importance_rank"] for f in idle["features"]] == [1, 3, 2]
    assert idle["features_by_concern"] == ["Weight", "Position", "Age"]  # nothing drifts yet
    assert idle["importance_unit"] == "inches"
    rows = drifted_heights(data_file)
    client.post("/predict", json={name: rows[name].tolist() for name in HEIGHT_IMPORTANCE})
    report = client.get("/drift").get_json()
    features = by_name(report)
    assert features["Age"]["psi"] > features["Weight"]["psi"] > 0.25  # both alert
    assert features["Position"]["verdict"] == "ok"
    # Weight matters most and drifts: first, before Age's larger PSI; Position matters more
    # than Age but does not drift.
    assert report["features_by_concern"] == ["Weight", "Age", "Position"]
    # The fields that were there keep their shape.
    assert report["worst_feature"] == "Age" and report["verdict"] == "alert"
    assert set(features["Weight"]) == {"feature", "psi", "verdict", "bins", "importance",
                                       "importance_rank"}  # fmt: skip


def test_drift_puts_importance_beside_a_classifiers_drift(models, classification_data):
    client = client_of(models["cancer"])
    rows = drifted_tumours(classification_data["cancer"])
    client.post("/predict", json={name: rows[name].tolist() for name in CANCER_FEATURES})
    report = client.get("/drift").get_json()
    features = by_name(report)
    assert {name: f["importance"] for name, f in features.items()} == CANCER_IMPORTANCE
    assert features["mean_concavity"]["importance_rank"] == 1
    assert features["mean_concavity"]["verdict"] == features["mean_smoothness"]["verdict"] == "ok"
    assert report["features_by_concern"] == ["mean_texture", "mean_radius", "mean_concavity",
                                             "mean_smoothness"]  # fmt: skip
    assert report["importance_unit"] == "log-odds of the answered class"
    assert "predicted_classes" in report


def test_drift_of_a_model_without_importance_orders_by_drift(models, data_file):
    client = client_of(models["plain"])
    rows = drifted_heights(data_file)
    client.post("/predict", json={name: rows[name].tolist() for name in HEIGHT_IMPORTANCE})
    report = client.get("/drift").get_json()
    assert all(f["importance"] is None and f["importance_rank"] is None
               for f in report["features"])  # fmt: skip
    assert report["features_by_concern"] == ["Age", "Weight", "Position"]
    assert report["importance_unit"] is None


def drift_cli(model_file: Path, data: Path, *args: str):
    return CliRunner().invoke(cli, ["drift", "--data", str(data), *args],
                              env={"MODEL_PATH": str(model_file)})  # fmt: skip


def test_offline_drift_puts_importance_beside_each_feature(models, data_file, tmp_path):
    drifted = tmp_path / "drifted.csv"
    drifted_heights(data_file).to_csv(drifted, index=False)
    result = drift_cli(models["height"], drifted, "--json")
    assert result.exit_code == 2, result.output
    report = json.loads(result.output)
    features = by_name(report)
    assert {name: f["importance"] for name, f in features.items()} == HEIGHT_IMPORTANCE
    assert {name: f["importance_rank"] for name, f in features.items()} == {
        "Weight": 1, "Position": 2, "Age": 3}  # fmt: skip
    assert report["features_by_concern"] == ["Weight", "Age", "Position"]
    assert report["importance_unit"] == "inches"
    assert features["Weight"]["ks"] is not None  # the figures that were there still are
    human = drift_cli(models["height"], drifted)
    assert human.exit_code == 2
    table = human.output.split("By concern")[1].splitlines()
    assert "in inches" in table[0]
    assert table[1].split() == ["feature", "importance", "rank", "PSI", "verdict"]
    assert [line.split()[:3] for line in table[2:5]] == [
        ["Weight", "1.5000", "1"], ["Age", "0.2000", "3"], ["Position", "0.9000", "2"]]  # fmt: skip


def test_offline_drift_of_a_classifier_and_of_a_model_without_importance(
    models, classification_data, data_file, tmp_path
):
    tumours = tmp_path / "tumours.csv"
    drifted_tumours(classification_data["cancer"]).to_csv(tumours, index=False)
    report = json.loads(drift_cli(models["cancer"], tumours, "--json").output)
    assert report["features_by_concern"] == ["mean_texture", "mean_radius", "mean_concavity",
                                             "mean_smoothness"]  # fmt: skip
    assert report["importance_unit"] == "log-odds of the answered class"
    assert "predicted_classes" in report
    human = drift_cli(models["plain"], data_file).output
    assert "importance: n/a, the model records none" in human
    assert all(f["importance"] is None for f in json.loads(
        drift_cli(models["plain"], data_file, "--json").output)["features"])  # fmt: skip


# --------------------------------------------------------------------------- the card


def bars(svg: Path) -> list[str]:
    """Return the titles of the chart's bars, top to bottom."""
    root = ET.parse(svg).getroot()
    return [rect.find(f"{SVG}title").text for rect in root.iter(f"{SVG}rect")
            if rect.find(f"{SVG}title") is not None]  # fmt: skip


def card_of(model_file: Path):
    result = CliRunner().invoke(cli, ["card"], env={"MODEL_PATH": str(model_file)})
    assert result.exit_code == 0, result.output
    return model_file.with_name("MODEL_CARD.md"), result.output


def section(card: Path) -> str:
    text = card.read_text(encoding="utf-8")
    return text.split("## What the model relies on")[1].split("\n## ")[0]


def test_a_regressions_card_shows_what_it_relies_on(models):
    card, output = card_of(models["height"])
    chart = card.with_name("MODEL_CARD.importance.svg")
    assert str(chart) in output
    text = section(card)
    assert f"on the {IMPORTANCE_ROWS} held-out rows,\nin inches" in text
    assert "](MODEL_CARD.importance.svg)" in text
    assert "| Rank | Feature | Importance (inches) | Share of the total |" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert table == ["| 1 | `Weight` | 1.5 | 57.7% |", "| 2 | `Position` | 0.9 | 34.6% |",
                     "| 3 | `Age` | 0.2 | 7.7% |"]  # fmt: skip
    assert bars(chart) == ["Weight: importance 1.5 inches, rank 1",
                           "Position: importance 0.9 inches, rank 2",
                           "Age: importance 0.2 inches, rank 3"]  # fmt: skip
    # The same model.json gives the same bytes.
    assert chart.read_text(encoding="utf-8") == modelcard.pictures_of(
        json.loads(metadata_path(models["height"]).read_text()))["importance"]  # fmt: skip


@pytest.mark.parametrize(
    "name, unit, first",
    [
        ("cancer", "log-odds of the answered class", "| 1 | `mean_concavity` | 2 | 58.0% |"),
        ("iris", "logit of the answered class", "| 1 | `petal_length` | 2.5 | 53.2% |"),
    ],
)
def test_a_classifiers_card_shows_what_it_relies_on(models, name, unit, first):
    card, _output = card_of(models[name])
    text = section(card)
    assert f"| Rank | Feature | Importance ({unit}) | Share of the total |" in text
    assert first in text
    chart = card.with_name("MODEL_CARD.importance.svg")
    assert bars(chart)[0].startswith(first.split("`")[1] + ": importance")
    for picture in ("reliability", "confusion", "importance"):  # beside its other pictures
        assert card.with_name(f"MODEL_CARD.{picture}.svg").is_file()


def test_a_card_without_importance_says_so_and_removes_an_old_chart(models):
    plain = models["plain"]
    old_chart = plain.with_name("MODEL_CARD.importance.svg")
    old_chart.write_text("<svg/>", encoding="utf-8")  # left by an earlier card
    card, output = card_of(plain)
    assert "No importance recorded" in section(card) and ".svg)" not in section(card)
    assert not old_chart.exists() and "pictures" not in output


@pytest.mark.parametrize("name", ["height", "plain"])
def test_drift_and_model_answers_fit_their_documented_schemas(models, data_file, name):
    import jsonschema

    client = client_of(models[name])
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    rows = drifted_heights(data_file)
    client.post("/predict", json={feature: rows[feature].tolist() for feature in HEIGHT_IMPORTANCE})
    drift = jsonschema.Draft4Validator(as_json_schema(schemas["Drift"]))
    report = client.get("/drift").get_json()
    drift.validate(report)
    with pytest.raises(jsonschema.ValidationError):
        drift.validate({**report, "features": [{**report["features"][0], "importance": -1}]})
    metadata = jsonschema.Draft4Validator(schemas["ModelMetadata"])
    metadata.validate(client.get("/model").get_json())
    with pytest.raises(jsonschema.ValidationError):
        metadata.validate({"importance": {"Weight": "high"}})


def as_json_schema(schema):
    """Return an OpenAPI 3.0 schema as JSON Schema: ``nullable`` becomes a null type."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        converted["type"] = [schema["type"], "null"]
    return converted
