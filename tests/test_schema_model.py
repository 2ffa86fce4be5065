"""A second model, described by its schema: height from Weight and Position, served unchanged."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from helpers import same_fit

from app import create_app
from cli import predictcli
from cookbook.core.settings import PROJECT_ROOT
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.folding import FOLD_TOLERANCE
from cookbook.lifecycle.model_spec import spec_for
from cookbook.lifecycle.training import train

EXAMPLE = PROJECT_ROOT / "examples" / "height-by-position" / "model.joblib"
SPEC = spec_for("Height", ["Weight"], ["Position"])


@pytest.fixture(scope="module")
def position_model(tmp_path_factory, data_file):
    return train(data_file, tmp_path_factory.mktemp("position") / "model.joblib", spec=SPEC)


@pytest.fixture
def position_client(position_model):
    app = create_app({"MODEL_PATH": str(position_model.model_file), "TESTING": True})
    return app.test_client()


def test_position_explains_more_than_weight_alone(position_model):
    assert position_model.metrics["r2"] == pytest.approx(0.35, abs=0.02)
    schema = position_model.metadata["schema"]
    assert [f["name"] for f in schema["features"]] == ["Weight", "Position"]
    assert schema["features"][1]["kind"] == "category"


def test_the_folded_form_equals_the_estimator(position_model):
    folded = position_model.metadata["folded"]
    assert folded is not None and folded["max_relative_error"] <= FOLD_TOLERANCE
    assert set(folded["offsets"]["Position"]) == set(
        position_model.metadata["schema"]["features"][1]["categories"]
    )


def test_the_committed_example_matches_a_fresh_training(position_model, data_file):
    frame = pd.read_csv(data_file)[["Weight", "Position"]]
    assert same_fit(EXAMPLE, position_model.model_file, frame)  # to the last bits
    committed = load_predictor(EXAMPLE)
    fresh = load_predictor(position_model.model_file)
    row = {"Weight": 200, "Position": "Catcher"}
    assert committed.prediction(row) == fresh.prediction(row)


def test_one_row_and_a_batch_answer_in_the_mlb_fields(position_client):
    one = position_client.post("/predict", json={"Weight": 200, "Position": "Catcher"})
    assert one.status_code == 200
    answer = one.get_json()["prediction"]
    assert set(answer) == {"height_inches", "height_human_readable", "interval"}
    assert set(answer["interval"]) == {
        "low", "high", "coverage", "low_human_readable", "high_human_readable"
    }  # fmt: skip
    batch = position_client.post(
        "/predict", json={"Weight": [180, 200], "Position": ["Catcher", "Shortstop"]}
    )
    assert len(batch.get_json()["predictions"]) == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Weight": 200}, 'Missing key "Position"'),
        ({"Weight": 200, "Position": "Goalie"}, "Position must be one of Catcher"),
        ({"Weight": 200, "Position": 3}, "Position must be a string"),
        ({"Weight": True, "Position": "Catcher"}, "got a boolean"),
        ({"Weight": [200, 180], "Position": ["Catcher"]}, "Position has 1 values but Weight has 2"),
        ({"Weight": [200, 180], "Position": ["Catcher", "Goalie"]}, r"Position\[1\]"),
        ({"Weight": [200], "Position": "Catcher"}, "is a list but Position is not"),
    ],
)
def test_errors_name_the_feature(position_client, body, words):
    import re

    response = position_client.post("/predict", json=body)
    assert response.status_code == 400
    assert re.search(words, response.get_json()["error"]), response.get_json()


def test_outside_the_training_range_warns_naming_the_feature(position_client):
    answer = position_client.post("/predict", json={"Weight": 400, "Position": "Catcher"})
    assert answer.get_json()["prediction"]["warning"].startswith("Weight 400 lb is outside")


def test_openapi_lists_categories_as_an_enum(position_client):
    document = position_client.get("/openapi.json").get_json()
    properties = document["components"]["schemas"]["PredictRequest"]["properties"]
    assert "Catcher" in properties["Position"]["oneOf"][0]["enum"]


def test_the_page_has_a_select_for_the_category(position_client):
    page = position_client.get("/?weight=200&position=Catcher").get_data(as_text=True)
    assert '<select id="position"' in page and "Predicted height" in page


def test_cli_set_predicts_one_row(position_model):
    result = CliRunner().invoke(
        predictcli,
        ["--model", str(position_model.model_file), "--set", "Weight=200",
         "--set", "Position=Catcher", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "height_inches" in result.output


def test_a_real_server_serves_it_through_model_path(position_model, tmp_path, serving):
    model = tmp_path / "model.joblib"
    shutil.copy(position_model.model_file, model)
    shutil.copy(position_model.model_file.with_suffix(".json"), tmp_path / "model.json")
    base_url = serving(model)
    answer = requests.post(
        f"{base_url}/predict", json={"Weight": 200, "Position": "Catcher"}, timeout=10
    )
    assert answer.status_code == 200 and "prediction" in answer.json()
