"""Explanations on every contract that carries them: V2's ``contributions`` and ``base``
outputs, the capture record and its export, and /openapi.json. Each is checked against
what ``POST /predict`` answers with ``"explain": true`` for the same rows."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
from helpers import ROOT, wait_for_rows

from app import create_app
from cookbook.cli.capture_export import captured_csv
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.capture_database import EXPLANATIONS_TABLE
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_reader import open_reader
from cookbook.lifecycle.capture_writing import Record
from cookbook.lifecycle.classifying import LOGISTIC

DEMO = ROOT / "model.joblib"
POSITION = ROOT / "examples" / "height-by-position" / "model.joblib"  # a number and a category
PITCHER = ROOT / "examples" / "pitcher-classifier" / "model.joblib"  # binary, three numbers
ROWS = {
    DEMO: {"Weight": [180, 200, 250]},
    POSITION: {"Weight": [180, 200, 250], "Position": ["Catcher", "Shortstop", "Catcher"]},
    PITCHER: {"Height": [70, 74, 79], "Weight": [180, 200, 250], "Age": [22.5, 28.5, 35.0]},
}


def client_of(model_file: Path, **config):
    app = create_app({"MODEL_PATH": str(model_file), "TESTING": True, **config})
    return app.test_client()


def v2_inputs(columns: dict[str, list]) -> list[dict]:
    return [
        {"name": name, "datatype": "BYTES" if isinstance(values[0], str) else "FP64",
         "shape": [len(values)], "data": values}
        for name, values in columns.items()
    ]  # fmt: skip


def infer(client, model_file: Path, columns: dict[str, list], headers=None, **extra):
    name = load_predictor(model_file).schema.name
    return client.post(f"/v2/models/{name}/infer", json={"inputs": v2_inputs(columns), **extra},
                       headers=headers or {})  # fmt: skip


def explained(client, columns: dict[str, list], **options) -> list[dict]:
    """Return /predict's explanation of each row of *columns*."""
    response = client.post("/predict", json={**columns, "explain": True, **options})
    assert response.status_code == 200, response.get_json()
    return [answer["explanation"] for answer in response.get_json()["predictions"]]


def outputs_of(body: dict) -> dict[str, dict]:
    return {output["name"]: output for output in body["outputs"]}


# ------------------------------------------------------------------ Open Inference Protocol


@pytest.mark.parametrize("model_file", [DEMO, POSITION, PITCHER], ids=["demo", "position",
                                                                      "pitcher"])  # fmt: skip
def test_v2_explain_adds_contributions_and_base_equal_to_predicts(model_file):
    client = client_of(model_file)
    columns = ROWS[model_file]
    names = load_predictor(model_file).schema.feature_names
    response = infer(client, model_file, columns, parameters={"explain": True})
    assert response.status_code == 200, response.get_json()
    outputs = outputs_of(response.get_json())
    rows, features = len(columns[names[0]]), len(names)
    contributions, base = outputs["contributions"], outputs["base"]
    assert (contributions["datatype"], contributions["shape"]) == ("FP64", [rows, features])
    assert contributions["parameters"] == {"features": list(names)}
    assert (base["datatype"], base["shape"]) == ("FP64", [rows])
    expected = explained(client, columns)
    for row, explanation in enumerate(expected):
        row_contributions = contributions["data"][row * features : (row + 1) * features]
        assert row_contributions == [explanation["contributions"][name] for name in names]
        assert base["data"][row] == explanation["base"]
        total = base["data"][row] + sum(row_contributions)
        assert abs(total - explanation["prediction"]) <= 1e-6
    # The answer's own outputs are still there, as without explain.
    plain = outputs_of(infer(client, model_file, columns).get_json())
    assert set(outputs) == set(plain) | {"contributions", "base"}
    assert all(outputs[name] == plain[name] for name in plain)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_v2_explains_the_logit_of_the_class_answered_at_the_requests_threshold(
    classifier, classification_data, task
):
    import pandas as pd

    model_file = classifier(task, LOGISTIC)
    names = load_predictor(model_file).schema.feature_names
    source = classification_data["cancer" if task == "binary" else "iris"]
    columns = pd.read_csv(source)[list(names)].sample(12, random_state=5).to_dict(orient="list")
    client = client_of(model_file)
    parameters = {"explain": True, **({"threshold": 0.2} if task == "binary" else {})}
    options = {"threshold": 0.2} if task == "binary" else {}
    wanted = [{"name": name} for name in ("label", "contributions", "base")]
    response = infer(client, model_file, columns, parameters=parameters, outputs=wanted)
    assert response.status_code == 200, response.get_json()
    outputs = outputs_of(response.get_json())
    assert list(outputs) == ["label", "contributions", "base"]
    expected = explained(client, columns, **options)
    flat = [c for e in expected for c in (e["contributions"][name] for name in names)]
    assert outputs["contributions"]["data"] == flat
    assert outputs["base"]["data"] == [e["base"] for e in expected]
    for row, explanation in enumerate(expected):
        contributions = flat[row * len(names) : (row + 1) * len(names)]
        assert abs(outputs["base"]["data"][row] + sum(contributions)
                   - explanation["prediction"]) <= 1e-6  # fmt: skip


def test_asking_for_contributions_by_name_implies_explain():
    client = client_of(DEMO)
    response = infer(client, DEMO, ROWS[DEMO], outputs=[{"name": "contributions"}])
    assert response.status_code == 200, response.get_json()
    (output,) = response.get_json()["outputs"]
    assert output["name"] == "contributions" and output["shape"] == [3, 1]
    assert output["data"] == [e["contributions"]["Weight"] for e in explained(client, ROWS[DEMO])]
    # Without the parameter or an explanation's output, nothing is explained.
    plain = infer(client, DEMO, ROWS[DEMO], parameters={"explain": False}).get_json()
    assert [o["name"] for o in plain["outputs"]] == ["height_inches", "height_human_readable"]


@pytest.mark.parametrize(
    ("model_file", "extra", "status", "message"),
    [
        (DEMO, {"parameters": {"explain": "yes"}}, 400,
         'The parameter "explain" must be true or false, got a string.'),
        (DEMO, {"parameters": {"explain": 1}}, 400, "must be true or false, got a number"),
        (None, {"parameters": {"explain": True}}, 400, "cannot explain its answers"),
        (None, {"outputs": [{"name": "base"}]}, 400, "cannot explain its answers"),
    ],
)  # fmt: skip
def test_v2_explain_errors_name_the_problem(model_file, extra, status, message, unexplained_trees):
    # None: a tree model saved before its trees' arrays were stored, which cannot explain.
    rows = ROWS.get(model_file, {"Weight": [200], "Age": [28.5], "Position": ["Catcher"]})
    model_file = model_file or unexplained_trees
    response = infer(client_of(model_file), model_file, rows, **extra)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_v2_explains_at_most_1000_rows():
    client = client_of(DEMO)
    response = infer(client, DEMO, {"Weight": [200.0] * 1001}, parameters={"explain": True})
    assert response.status_code == 413
    assert "at most 1000 rows per request" in response.get_json()["error"]
    assert infer(client, DEMO, {"Weight": [200.0] * 1000},
                 parameters={"explain": True}).status_code == 200  # fmt: skip


def test_v2_metadata_lists_the_explanation_only_for_a_model_that_explains(unexplained_trees):
    metadata = client_of(POSITION).get("/v2/models/height-from-weight-position").get_json()
    assert metadata["outputs"][-2:] == [
        {"name": "contributions", "datatype": "FP64", "shape": [-1, 2]},
        {"name": "base", "datatype": "FP64", "shape": [-1]},
    ]
    trees = (
        client_of(unexplained_trees).get("/v2/models/height-from-weight-age-position").get_json()
    )
    assert {o["name"] for o in trees["outputs"]}.isdisjoint({"contributions", "base"})


# ------------------------------------------------------------------ capture and export


def capturing(model_file: Path, store):
    """Return a client of *model_file* whose answers are captured into *store*."""
    return client_of(model_file, CAPTURE_ENV={"CAPTURE_URL": store.url})


def exported(store, model_file: Path) -> list[dict[str, str]]:
    text, _ = captured_csv(store, load_predictor(model_file).schema, None)
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("model_file", [POSITION, PITCHER], ids=["regression", "classifier"])
def test_an_explained_answer_is_captured_and_exported_with_its_explanation(store, model_file):
    client = capturing(model_file, store)
    columns = ROWS[model_file]
    names = load_predictor(model_file).schema.feature_names
    explained_batch = client.post("/predict", json={**columns, "explain": True},
                                  headers={"X-Request-ID": "batch"}).get_json()  # fmt: skip
    one = {name: values[0] for name, values in columns.items()}
    client.post("/predict", json=one, headers={"X-Request-ID": "plain"})
    v2 = infer(client, model_file, columns, parameters={"explain": True},
               headers={"X-Request-ID": "v2"})  # fmt: skip
    assert v2.status_code == 200, v2.get_json()
    rows = wait_for_rows(store, 7)
    captured = {(r["request_id"], r["row_index"]): r for r in rows}
    for index, answer in enumerate(explained_batch["predictions"]):
        assert captured[("batch", index)]["explanation"] == answer["explanation"]
        assert captured[("v2", index)]["explanation"] == answer["explanation"]
    assert captured[("plain", 0)]["explanation"] is None
    by_request: dict[str, list[dict]] = {}  # the export's lines, in row order per request
    for line in exported(store, model_file):
        by_request.setdefault(line["request_id"], []).append(line)
    for index, answer in enumerate(explained_batch["predictions"]):
        line = by_request["batch"][index]
        explanation = answer["explanation"]
        assert float(line["explanation_base"]) == explanation["base"]
        assert float(line["explanation_prediction"]) == explanation["prediction"]
        contributions = [float(line[f"contribution_{name}"]) for name in names]
        assert contributions == [explanation["contributions"][name] for name in names]
        total = float(line["explanation_base"]) + sum(contributions)
        assert abs(total - float(line["explanation_prediction"])) <= 1e-6
    (plain,) = by_request["plain"]
    assert plain["explanation_base"] == "" and plain[f"contribution_{names[0]}"] == ""


def test_explained_records_take_feedback_and_read_beside_records_of_before(store):
    # A record as every build before explanations wrote it (nine fields), and one explained.
    explanation = {"base": 73.4, "contributions": {"Weight": 0.2}, "prediction": 73.6}
    store.write([Record("old", 0, time.time(), "v1", "champion", {"Weight": 200.0}, 73.6,
                        70.2, 77.0)])  # fmt: skip
    store.write([Record("new", 0, time.time(), "v1", "champion", {"Weight": 200.0}, 73.6,
                        70.2, 77.0, explanation)])  # fmt: skip
    outcome = store.add_feedback([Feedback("old", 0, 74.0), Feedback("new", 0, 72.0)])
    assert outcome["joined"] == ["old", "new"]
    rows = {r["request_id"]: r for r in store.rows()}
    assert rows["old"]["explanation"] is None and rows["new"]["explanation"] == explanation
    assert rows["new"]["actual"] == 72.0
    assert store.quality(3600)["v1"]["labelled"] == 2


def test_an_export_without_explained_rows_keeps_its_columns(store):
    store.write([Record("old", 0, time.time(), "v1", "champion", {"Weight": 200.0}, 73.6,
                        70.2, 77.0)])  # fmt: skip
    (line,) = exported(store, DEMO)
    assert list(line) == ["request_id", "time", "model_version", "role", "Weight",
                          "height_inches", "height_human_readable", "interval_low",
                          "interval_high", "Height"]  # fmt: skip


def read_as_nine_fields(store) -> dict[tuple[str, int], list]:
    """Return every record of every stored batch as a build from before explanations read it:
    each body one JSON array of records, each record unpacked into exactly nine fields."""
    with store.connect() as db:
        bodies = [bytes(body) for (body,) in db.execute("SELECT body FROM capture_batches")]
    records = {}
    for body in bodies:
        for record in json.loads(body):
            request_id, index, ts, version, role, inputs, predicted, low, high = record
            records[(request_id, index)] = [inputs, predicted, low, high]
    return records


def stored_explanations(store) -> dict[int, list]:
    """Return the explanations' table as it is: its bodies by batch id."""
    with store.connect() as db:
        return {batch_id: json.loads(bytes(body)) for batch_id, body in
                db.execute(f"SELECT batch_id, body FROM {EXPLANATIONS_TABLE}")}  # fmt: skip


def explained_record(request_id: str, ts: float, weight: float) -> Record:
    explanation = {"base": 73.4, "contributions": {"Weight": weight / 1000}, "prediction": 73.6}
    return Record(request_id, 0, ts, "v1", "champion", {"Weight": weight}, 73.6, 70.2, 77.0,
                  explanation)  # fmt: skip


@pytest.mark.parametrize("model_file", [POSITION, PITCHER], ids=["regression", "classifier"])
def test_a_reader_of_the_nine_field_layout_reads_every_batch(store, model_file):
    client = capturing(model_file, store)
    columns = ROWS[model_file]
    answers = client.post("/predict", json={**columns, "explain": True},
                          headers={"X-Request-ID": "batch"}).get_json()["predictions"]  # fmt: skip
    one = {name: values[0] for name, values in columns.items()}
    client.post("/predict", json=one, headers={"X-Request-ID": "plain"})
    infer(client, model_file, columns, parameters={"explain": True}, headers={"X-Request-ID": "v2"})
    rows = {(r["request_id"], r["row_index"]): r for r in wait_for_rows(store, 7)}
    assert len(rows) == 7
    records = read_as_nine_fields(store)
    assert records.keys() == rows.keys()
    for key, (inputs, predicted, low, high) in records.items():
        row = rows[key]
        assert inputs == list(row["inputs"].values())
        assert (low, high) == (row["interval_low"], row["interval_high"])
        assert predicted == (row["prediction"] if row["probabilities"] is None
                             else [row["label"], row["probabilities"]])  # fmt: skip
    # The explanations are beside the bodies, and give back what /predict answered.
    assert sum(map(len, stored_explanations(store).values())) == 6
    for index, answer in enumerate(answers):
        assert rows[("batch", index)]["explanation"] == answer["explanation"]
        assert rows[("v2", index)]["explanation"] == answer["explanation"]
    assert rows[("plain", 0)]["explanation"] is None


def test_only_a_batch_with_explained_rows_has_explanations(store):
    now = time.time()
    store.write([Record("plain", 0, now, "v1", "champion", {"Weight": 200.0}, 73.6, 70.2, 77.0)])
    assert stored_explanations(store) == {}  # a request that does not explain costs nothing
    store.write([Record("mixed", 0, now, "v1", "champion", {"Weight": 180.0}, 71.0, 68.0, 74.0),
                 explained_record("mixed", now, 250.0)._replace(row_index=1)])  # fmt: skip
    with store.connect() as db:
        (newest,) = db.execute("SELECT max(id) FROM capture_batches").fetchone()
    # The explained record's position in its batch, with [base, prediction, [contributions]].
    assert stored_explanations(store) == {newest: [[1, [73.4, 73.6, [0.25]]]]}
    rows = {(r["request_id"], r["row_index"]): r["explanation"] for r in store.rows()}
    assert rows == {("plain", 0): None, ("mixed", 0): None,
                    ("mixed", 1): explained_record("mixed", now, 250.0).explanation}  # fmt: skip


def test_retention_deletes_the_explanations_with_their_batches(store):
    now = time.time()
    for i in range(4):
        store.write([explained_record(f"r{i}", now - 60 + i, 200.0 + i)])
    assert store.trim(max_rows=2) == 2
    with store.connect() as db:
        kept = sorted(row[0] for row in db.execute("SELECT id FROM capture_batches"))
    assert sorted(stored_explanations(store)) == kept
    assert [r["explanation"]["contributions"] for r in store.rows()] == [
        {"Weight": 0.202}, {"Weight": 0.203}]  # fmt: skip
    # A batch deleted for its age while an older-numbered one stays takes its explanations.
    store.write([explained_record("late", now - 3600, 190.0)])
    assert store.trim(max_age_seconds=600) == 1
    assert sorted(stored_explanations(store)) == kept
    assert store.trim(max_age_seconds=0) == 2
    assert stored_explanations(store) == {}


def test_explanations_a_rolled_back_build_left_never_join_a_later_batch(store):
    now = time.time()
    store.write([explained_record("first", now - 2, 200.0)])
    store.write([explained_record("second", now - 1, 210.0)])
    with store.connect() as db:  # the retention of a build from before explanations
        db.execute("DELETE FROM capture_batches")
    # SQLite gives the next batches the ids deleted; PostgreSQL never does.
    store.write([Record("plain", 0, now, "v1", "champion", {"Weight": 180.0}, 71.0, 68.0, 74.0)])
    store.write([explained_record("explained", now, 220.0)])
    expected = explained_record("explained", now, 220.0).explanation
    rows = {r["request_id"]: r["explanation"] for r in store.rows()}
    assert rows == {"plain": None, "explained": expected}


def test_a_store_made_before_explanations_is_read_then_brought_up_to_date(store):
    with store.connect() as db:
        db.execute(f"DROP TABLE {EXPLANATIONS_TABLE}")
    store.write([Record("old", 0, time.time(), "v1", "champion", {"Weight": 200.0}, 73.6, 70.2,
                        77.0)])  # fmt: skip
    reader = open_reader(store.url)  # what capture export opens: read-only
    assert [(r["request_id"], r["explanation"]) for r in reader.rows()] == [("old", None)]
    (line,) = exported(reader, DEMO)
    assert "explanation_base" not in line and line["request_id"] == "old"
    with store.connect() as db:
        assert not store.has_table(db, EXPLANATIONS_TABLE)  # the reader created nothing
    # The service starts on it: the table is created, and explained rows are captured.
    client = capturing(POSITION, store)
    with store.connect() as db:
        assert store.has_table(db, EXPLANATIONS_TABLE)
    (expected,) = explained(client, {"Weight": [200], "Position": ["Catcher"]})
    rows = {r["request_id"]: r for r in wait_for_rows(store, 2)}
    assert rows["old"]["explanation"] is None
    (new,) = (row for request_id, row in rows.items() if request_id != "old")
    assert new["explanation"] == expected
    assert [line["explanation_base"] for line in exported(reader, POSITION)] == [
        "", str(expected["base"])]  # fmt: skip


# ------------------------------------------------------------------------------- OpenAPI


@pytest.mark.parametrize("model_file", [POSITION, PITCHER], ids=["regression", "classifier"])
def test_openapi_documents_explain_and_the_explanation(model_file):
    import jsonschema

    client = client_of(model_file)
    names = list(load_predictor(model_file).schema.feature_names)
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["explain"]["type"] == "boolean"
    for path in ("/predict", "/invocations"):
        operation = document["paths"][path]["post"]
        (query,) = [p for p in operation["parameters"] if p["name"] == "explain"]
        assert query["in"] == "query" and "true" in query["schema"]["enum"]
        assert "1,000 explained rows" in operation["responses"]["413"]["description"]
    explanation = schemas["Prediction"]["properties"]["explanation"]
    assert explanation["properties"]["contributions"]["required"] == names
    # Real explained answers fit the documented schema.
    validator = jsonschema.Draft4Validator(schemas["Prediction"])
    for answer in client.post("/predict", json={**ROWS[model_file], "explain": True}
                              ).get_json()["predictions"]:  # fmt: skip
        validator.validate(answer)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**answer, "explanation": {"base": 1.0}})
    infer = schemas["InferRequest"]["properties"]
    assert infer["parameters"]["properties"]["explain"]["type"] == "boolean"
    assert {"contributions", "base"} <= set(infer["outputs"]["items"]["properties"]["name"]["enum"])


def test_a_model_that_cannot_explain_does_not_offer_it(unexplained_trees):
    document = client_of(unexplained_trees).get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert "explain" not in schemas["PredictRequest"]["properties"]
    assert "explanation" not in schemas["Prediction"]["properties"]
    assert "parameters" not in document["paths"]["/predict"]["post"]
