"""Every serving contract answers classifiers as ``POST /predict`` does.

The Open Inference Protocol, SageMaker's ``/invocations`` (JSON and CSV), batch scoring
(``cli.py --input``), Dask scoring (``utilscli.py score``), the Lambda handler, the page
and the OpenAPI document, each for breast_cancer (binary, malignant the positive class)
and iris (multiclass), served as a folded logistic regression (plain Python) and as a
hist-gradient-boosting model (ONNX). Regressions answer as they did (their own tests).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from helpers import ROOT, run_script

import mlib
from app import create_app
from cookbook.core.errors import MlibError
from cookbook.lifecycle.artifacts import load_predictor
from cookbook.lifecycle.classifying import LOGISTIC
from cookbook.web import lambda_handler, page, sagemaker

HGB = "hist-gradient-boosting"
MODELS = [("binary", LOGISTIC), ("binary", HGB), ("multiclass", LOGISTIC), ("multiclass", HGB)]


@pytest.fixture(scope="module", params=MODELS, ids=lambda pair: "-".join(pair))
def model(request, classifier) -> Path:
    return classifier(*request.param)


@pytest.fixture(scope="module", params=[("binary", LOGISTIC), ("binary", HGB)],
                ids=lambda pair: "-".join(pair))  # fmt: skip
def binary(request, classifier) -> Path:
    return classifier(*request.param)


@pytest.fixture(scope="module", params=[("binary", LOGISTIC), ("multiclass", LOGISTIC)],
                ids=lambda pair: "-".join(pair))  # fmt: skip
def folded(request, classifier) -> Path:
    return classifier(*request.param)


@pytest.fixture
def api(model):
    return create_app({"MODEL_PATH": str(model), "TESTING": True}).test_client()


def schema_of(model_file: Path):
    return load_predictor(model_file).schema


def sample(model_file: Path, classification_data, count: int | None = 30) -> pd.DataFrame:
    """Return *count* rows of the model's data set (None: all, shuffled), plus two rows far
    outside its training ranges (answered with the extrapolation warning)."""
    schema = schema_of(model_file)
    source = classification_data["cancer" if schema.target.task == "binary" else "iris"]
    rows = pd.read_csv(source)[list(schema.feature_names)]
    rows = rows.sample(count, frac=None if count else 1.0, random_state=3)
    high = {f.name: f.training_range[1] * 1.5 for f in schema.numeric}
    low = {f.name: f.training_range[0] * 0.5 for f in schema.numeric}
    return pd.concat([rows, pd.DataFrame([high, low])], ignore_index=True)


def predict(client, rows: pd.DataFrame, query: str = "", **options) -> list[dict]:
    """Return ``POST /predict``'s answers for *rows* (a batch), with answer *options*."""
    response = client.post(f"/predict{query}", json={**rows.to_dict(orient="list"), **options})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["predictions"]


def v2_inputs(rows: pd.DataFrame) -> list[dict]:
    return [{"name": name, "datatype": "FP64", "shape": [len(rows)], "data": rows[name].tolist()}
            for name in rows.columns]  # fmt: skip


# ------------------------------------------------------------------ Open Inference Protocol


def test_v2_metadata_lists_the_label_the_probabilities_and_the_classes(model, api):
    schema = schema_of(model)
    target = schema.target
    metadata = api.get(f"/v2/models/{schema.name}").get_json()
    explained = [  # every family explains the answered class (trees by TreeSHAP)
        {"name": "contributions", "datatype": "FP64", "shape": [-1, len(schema.features)]},
        {"name": "base", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(target.classes)]},
        *explained,
    ]
    expected = {"task": target.task, "classes": list(target.classes)}
    if target.task == "binary":
        expected |= {"positive_class": "malignant", "threshold": 0.5}
    assert metadata["parameters"] == expected


def test_v2_infer_answers_what_predict_answers(model, api, classification_data):
    schema = schema_of(model)
    classes = list(schema.target.classes)
    rows = sample(model, classification_data)
    answers = predict(api, rows)
    response = api.post(f"/v2/models/{schema.name}/infer",
                        json={"id": "c1", "inputs": v2_inputs(rows)})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == "c1"
    label, probabilities = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [len(rows)],
                     "data": [a["label"] for a in answers]}  # fmt: skip
    assert probabilities["datatype"] == "FP64"
    assert probabilities["shape"] == [len(rows), len(classes)]
    assert probabilities["parameters"] == {"classes": classes}
    # Row-major: row i's probability of class j is at i * k + j.
    k = len(classes)
    for i, answer in enumerate(answers):
        row = probabilities["data"][i * k : (i + 1) * k]
        assert row == [answer["probabilities"][name] for name in classes]
    assert body["parameters"]["warnings"] == [a.get("warning") for a in answers]
    assert body["parameters"]["warnings"][-1]  # the rows outside the training ranges


@pytest.mark.parametrize("wanted", [["label"], ["probabilities"], ["probabilities", "label"]])
def test_v2_outputs_select_the_tensors(model, api, classification_data, wanted):
    schema = schema_of(model)
    rows = sample(model, classification_data, 3)
    body = api.post(
        f"/v2/models/{schema.name}/infer",
        json={"inputs": v2_inputs(rows), "outputs": [{"name": name} for name in wanted]},
    ).get_json()
    assert [output["name"] for output in body["outputs"]] == wanted


def test_v2_threshold_parameter_moves_the_binary_label_as_predict_does(binary, classification_data):
    client = create_app({"MODEL_PATH": str(binary), "TESTING": True}).test_client()
    schema = schema_of(binary)
    rows = sample(binary, classification_data)
    chances = sorted(a["probabilities"]["malignant"] for a in predict(client, rows))
    threshold = chances[len(chances) // 2]  # splits these rows
    expected = [a["label"] for a in predict(client, rows, threshold=threshold)]
    assert len(set(expected)) == 2
    body = client.post(
        f"/v2/models/{schema.name}/infer",
        json={"inputs": v2_inputs(rows), "parameters": {"threshold": threshold}},
    ).get_json()
    assert body["outputs"][0]["data"] == expected
    default = client.post(f"/v2/models/{schema.name}/infer",
                          json={"inputs": v2_inputs(rows)}).get_json()  # fmt: skip
    assert default["outputs"][0]["data"] == [a["label"] for a in predict(client, rows)]


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ("multiclass", {"parameters": {"threshold": 0.3}},
         '"threshold" applies to binary models only; this one is multiclass.'),
        ("binary", {"parameters": {"threshold": 1.5}},
         '"threshold" must be a number between 0 and 1 (exclusive), got 1.5'),
        ("binary", {"parameters": {"threshold": "abc"}},  # a JSON parameter is typed
         "\"threshold\" must be a number between 0 and 1 (exclusive), got 'abc'"),
        ("binary", {"parameters": {"threshold": "0.3"}},
         "\"threshold\" must be a number between 0 and 1 (exclusive), got '0.3'"),
        ("binary", {"parameters": {"threshold": True}}, "got a boolean"),
        ("binary", {"outputs": [{"name": "set"}]},
         "Unknown output 'set': the outputs are label, probabilities, contributions, base."),
        ("multiclass", {"outputs": [{"name": "species"}]},
         "Unknown output 'species': the outputs are label, probabilities, contributions, base."),
    ],
)  # fmt: skip
def test_v2_errors_are_400s_that_name_the_problem(classifier, classification_data, task, extra,
                                                  message):  # fmt: skip
    model_file = classifier(task, LOGISTIC)
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    rows = sample(model_file, classification_data, 2)
    response = client.post(f"/v2/models/{schema_of(model_file).name}/infer",
                           json={"inputs": v2_inputs(rows), **extra})  # fmt: skip
    assert response.status_code == 400
    assert message in response.get_json()["error"]


# ------------------------------------------------------------------------------ SageMaker


def test_invocations_json_answers_as_predict(model, api, classification_data):
    rows = sample(model, classification_data, 5)
    batch = rows.to_dict(orient="list")
    for query, options in (("", {}), ("?output=label", {}), ("", {"output": "probabilities"}),
                           ("?output=label", {"output": "probabilities"})):  # fmt: skip
        answer = api.post(f"/invocations{query}", json={**batch, **options})
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["predictions"] == predict(api, rows, query, **options)
    if schema_of(model).target.task == "binary":
        answer = api.post("/invocations?threshold=0.01", json=batch).get_json()
        assert answer["predictions"] == predict(api, rows, threshold=0.01)


def csv_body(rows: pd.DataFrame) -> str:
    return rows.to_csv(header=False, index=False)


def test_invocations_csv_answers_one_label_per_line(model, api, classification_data):
    rows = sample(model, classification_data)
    response = api.post("/invocations", data=csv_body(rows), content_type="text/csv",
                        headers={"Accept": "text/csv"})  # fmt: skip
    assert response.status_code == 200 and response.mimetype == "text/csv"
    labels = [a["label"] for a in predict(api, rows)]
    assert response.get_data(as_text=True) == "".join(f"{label}\n" for label in labels)


@pytest.mark.parametrize(
    ("query", "accept"),
    [("", "text/csv;output=probabilities"), ("", 'text/csv; output="probabilities"'),
     ("?output=probabilities", "text/csv"), ("?output=probabilities", "text/csv;output=label")],
)  # fmt: skip
def test_invocations_csv_answers_the_probabilities_as_columns(model, api, classification_data,
                                                              query, accept):  # fmt: skip
    classes = schema_of(model).target.classes
    rows = sample(model, classification_data)
    response = api.post(f"/invocations{query}", data=csv_body(rows), content_type="text/csv",
                        headers={"Accept": accept})  # fmt: skip
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    answers = predict(api, rows)
    assert len(lines) == len(answers)
    for line, answer in zip(lines, answers, strict=True):
        assert line == [repr(answer["probabilities"][name]) for name in classes]  # no header


def test_invocations_csv_labels_follow_the_threshold(binary, classification_data):
    client = create_app({"MODEL_PATH": str(binary), "TESTING": True}).test_client()
    rows = sample(binary, classification_data)
    for threshold in (0.01, 0.99):
        response = client.post(f"/invocations?threshold={threshold}", data=csv_body(rows),
                               content_type="text/csv", headers={"Accept": "text/csv"})  # fmt: skip
        labels = [a["label"] for a in predict(client, rows, threshold=threshold)]
        assert response.get_data(as_text=True).splitlines() == labels


@pytest.mark.parametrize(
    ("task", "query", "accept", "message"),
    [
        ("binary", "", "text/csv;output=logits",
         "\"output\" must be \"label\" or \"probabilities\", got 'logits'."),
        ("binary", "?output=set", "text/csv", "\"output\" must be \"label\" or \"probabilities\""),
        ("binary", "?threshold=2", "text/csv", '"threshold" must be a number between 0 and 1'),
        ("multiclass", "?threshold=0.5", "text/csv",
         '"threshold" applies to binary models only; this one is multiclass.'),
    ],
)  # fmt: skip
def test_invocations_bad_options_are_400s(classifier, classification_data, task, query, accept,
                                          message):  # fmt: skip
    model_file = classifier(task, LOGISTIC)
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    rows = sample(model_file, classification_data, 2)
    response = client.post(f"/invocations{query}", data=csv_body(rows), content_type="text/csv",
                           headers={"Accept": accept})  # fmt: skip
    assert response.status_code == 400 and response.is_json
    assert message in response.get_json()["error"]


def test_a_regressions_csv_answer_ignores_the_class_options(client):
    plain = client.post("/invocations", data="200\n180\n", content_type="text/csv",
                        headers={"Accept": "text/csv"})  # fmt: skip
    asked = client.post("/invocations?output=probabilities&threshold=9", data="200\n180\n",
                        content_type="text/csv",
                        headers={"Accept": "text/csv;output=probabilities"})  # fmt: skip
    assert asked.status_code == 200 and asked.get_data() == plain.get_data() == b"73.6\n72.4\n"


def test_a_label_that_needs_quoting_is_quoted_in_csv():
    answers = [{"label": 'a, "b"'}, {"probabilities": {"x": 0.25, "y": 0.75}}]
    assert sagemaker.class_csv(answers) == '"a, ""b"""\n0.25,0.75\n'


# ------------------------------------------------------------------------- batch scoring


def test_cli_input_lines_equal_predict_answers_across_chunks(model, api, classification_data,
                                                             tmp_path):  # fmt: skip
    schema = schema_of(model)
    rows = sample(model, classification_data, None)  # every row: a last bit wrong would show
    source = tmp_path / "rows.csv"
    text = rows.to_csv(index=False)
    # A row with an empty cell is rejected, and the rows after it still scored.
    source.write_text(text + "," * (len(schema.feature_names) - 1) + "\n")
    scored = run_script("cli.py", "--model", str(model), "--input", str(source),
                        "--chunk-rows", "7", env={})  # fmt: skip
    assert scored.returncode == 3, scored.stderr  # one row rejected
    assert f"Scored {len(rows):,} rows, rejected 1" in scored.stderr
    lines = list(csv.reader(io.StringIO(scored.stdout)))
    probability_columns = [f"p_{name}" for name in schema.target.classes]
    assert lines[0] == [*schema.feature_names, "label", *probability_columns, "extrapolation"]
    answers = predict(api, rows)  # what POST /predict answers, at the model's own threshold
    assert len(lines) == len(answers) + 1
    for line, answer in zip(lines[1:], answers, strict=True):
        written = dict(zip(lines[0], line, strict=True))
        assert written["label"] == answer["label"]
        for name in schema.target.classes:
            # Unrounded, and the very float the API answers: its shortest exact text.
            assert written[f"p_{name}"] == repr(answer["probabilities"][name])
        assert written["extrapolation"] == ("true" if "warning" in answer else "false")
    assert [line[-1] for line in lines[-2:]] == ["true", "true"]


# ---------------------------------------------------------------------------------- Dask


@pytest.mark.parametrize("output_format", ["csv", "parquet"])
def test_dask_scoring_writes_the_label_and_a_probability_column_per_class(
    model, api, classification_data, dask_client, tmp_path, output_format
):
    schema = schema_of(model)
    rows = sample(model, classification_data, 40)
    source = tmp_path / "in"
    source.mkdir()
    rows.iloc[:25].to_csv(source / "a.csv", index=False)
    rows.iloc[25:].to_parquet(source / "b.parquet")
    output = tmp_path / "scored"
    result = run_script("utilscli.py", "score", "--input", str(source), "--output", str(output),
                        "--format", output_format, "--chunk-rows", "6", "--scheduler",
                        dask_client.scheduler.address, env={"MODEL_PATH": str(model)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    parts = sorted(output.glob(f"part-*.{output_format}"))
    if output_format == "csv":
        frame = pd.concat([pd.read_csv(p, dtype=str) for p in parts], ignore_index=True)
    else:
        frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    probability_columns = [f"p_{name}" for name in schema.target.classes]
    assert list(frame.columns) == [*schema.feature_names, "label", *probability_columns,
                                   "extrapolation"]  # fmt: skip
    answers = predict(api, rows)
    assert frame["label"].tolist() == [a["label"] for a in answers]
    for name in schema.target.classes:
        expected = [a["probabilities"][name] for a in answers]
        if output_format == "csv":
            assert frame[f"p_{name}"].tolist() == [repr(p) for p in expected]
        else:
            assert frame[f"p_{name}"].tolist() == expected
    flags = ["warning" in a for a in answers]
    if output_format == "csv":
        flags = ["true" if flag else "false" for flag in flags]
    assert frame["extrapolation"].tolist() == flags


# -------------------------------------------------------------------------------- Lambda


@pytest.fixture
def lambda_model(monkeypatch):
    """Serve a model file from the Lambda handler, loaded afresh as a cold start would."""

    def serve(model_file: Path) -> None:
        monkeypatch.setenv("MODEL_PATH", str(model_file))
        mlib.forget_loaded_models()

    yield serve
    mlib.forget_loaded_models()


def http_event(body: dict, query: dict | None = None) -> dict:
    return {"httpMethod": "POST", "path": "/predict", "body": json.dumps(body),
            "queryStringParameters": query, "isBase64Encoded": False}  # fmt: skip


def test_lambda_serves_a_folded_classifier_as_predict_does(folded, classification_data,
                                                           lambda_model):  # fmt: skip
    lambda_model(folded)
    client = create_app({"MODEL_PATH": str(folded), "TESTING": True}).test_client()
    rows = sample(folded, classification_data, 5)
    batch, one = rows.to_dict(orient="list"), rows.iloc[0].to_dict()
    binary = schema_of(folded).target.task == "binary"
    cases = [(one, {}, ""), (batch, {}, ""), (batch, {"output": "label"}, ""),
             (one, {"output": "probabilities"}, "")]  # fmt: skip
    if binary:
        cases.append((batch, {"threshold": 0.2}, ""))
    for document, options, _ in cases:
        expected = client.post("/predict", json={**document, **options}).get_json()
        assert lambda_handler.handler({**document, **options}) == expected
        response = lambda_handler.handler(http_event({**document, **options}))
        assert response["statusCode"] == 200 and json.loads(response["body"]) == expected
    # Options in the event's query string, as /predict takes them from its query.
    query = {"output": "label", **({"threshold": "0.2"} if binary else {})}
    response = lambda_handler.handler(http_event(batch, query))
    expected = client.post("/predict?" + "&".join(f"{k}={v}" for k, v in query.items()),
                           json=batch).get_json()  # fmt: skip
    assert json.loads(response["body"]) == expected
    # The same errors as /predict.
    refused = lambda_handler.handler(http_event(one, {"output": "logits"}))
    assert refused["statusCode"] == 400
    assert '"output" must be "label" or "probabilities"' in json.loads(refused["body"])["error"]
    if not binary:
        refused = lambda_handler.handler({**one, "threshold": 0.3})
        assert "applies to binary models only" in refused["error"]


def test_lambda_refuses_an_onnx_classifier_in_one_line(classifier, lambda_model):
    model_file = classifier("binary", HGB)
    lambda_model(model_file)
    with pytest.raises(MlibError) as refused:
        lambda_handler.folded_only(model_file)
    assert "no folded form" in str(refused.value) and "\n" not in str(refused.value)
    response = lambda_handler.handler(http_event({"mean_radius": 14.0}))
    assert response["statusCode"] == 503
    assert "no folded form" in json.loads(response["body"])["error"]
    with pytest.raises(lambda_handler.ModelUnavailable, match="no folded form"):
        lambda_handler.handler({"mean_radius": 14.0})


def test_the_lambda_package_serves_a_classifier_with_the_standard_library(classifier,
                                                                          classification_data,
                                                                          tmp_path):  # fmt: skip
    model_file = classifier("multiclass", LOGISTIC)
    package = tmp_path / "lambda"
    subprocess.run(["make", "--no-print-directory", "lambda-package", f"LAMBDA_DIR={package}"],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)  # fmt: skip
    for suffix in (".joblib", ".json"):  # the classifier's pair in place of the demo's
        shutil.copy2(model_file.with_suffix(suffix), package / f"model{suffix}")
    rows = sample(model_file, classification_data, 4)
    document = rows.to_dict(orient="list")
    code = """
import json, sys
try:
    import numpy
    sys.exit("numpy is importable: the check proves nothing")
except ImportError:
    pass
from cookbook.web import lambda_handler
print(json.dumps(lambda_handler.handler(json.loads(sys.argv[1]))))
"""
    result = subprocess.run([sys.executable, "-S", "-B", "-c", code, json.dumps(document)],
                            cwd=package, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True}).test_client()
    assert json.loads(result.stdout) == client.post("/predict", json=document).get_json()


# ---------------------------------------------------------------------------------- page


class _Answer(HTMLParser):
    """The page's answer: the label, each bar's value and share, the set's sentence."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self.bars: dict[str, float] = {}
        self.shares: dict[str, str] = {}
        self.hidden: set[str] = set()
        self._into: tuple[dict, str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "hidden" in attrs and attrs.get("id"):
            self.hidden.add(attrs["id"])
        if tag == "meter" and "data-class" in attrs:
            self.bars[attrs["data-class"]] = float(attrs["value"])
        elif "class-share" in (attrs.get("class") or ""):
            self._into = (self.shares, attrs["data-class"])
        elif attrs.get("id") in ("answer-label", "answer-set"):
            self._into = (self.texts, attrs["id"])

    def handle_endtag(self, tag):
        self._into = None

    def handle_data(self, data):
        if self._into is not None:
            target, key = self._into
            target[key] = target.get(key, "") + data


def page_answer(client, row: dict) -> _Answer:
    query = "&".join(f"{page.field_id(name)}={value!r}" for name, value in row.items())
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    parsed = _Answer()
    parsed.feed(response.get_data(as_text=True))
    return parsed


def test_the_page_shows_the_label_a_bar_per_class_and_the_set(model, api, classification_data):
    classes = schema_of(model).target.classes
    for row in sample(model, classification_data, 3).to_dict(orient="records"):
        answer = predict(api, pd.DataFrame([row]))[0]
        shown = page_answer(api, row)
        assert shown.texts["answer-label"] == answer["label"]
        assert list(shown.bars) == list(classes)  # one bar per class, in the schema's order
        assert shown.bars == answer["probabilities"]
        assert shown.shares == {name: page.share_text(p)
                                for name, p in answer["probabilities"].items()}  # fmt: skip
        assert shown.texts["answer-set"] == page.set_words(answer)
        assert "answer" not in shown.hidden and "answer-set" not in shown.hidden


def test_the_pages_shell_has_empty_bars_and_no_chart(model, api):
    html = api.get("/").get_data(as_text=True)
    shell = _Answer()
    shell.feed(html)
    assert "answer" in shell.hidden
    assert shell.bars == dict.fromkeys(schema_of(model).target.classes, 0.0)
    assert 'id="chart"' not in html and 'id="model-accuracy"' in html


def test_share_and_set_words():
    assert page.share_text(0.7349999) == "73.5%" and page.share_text(1.0) == "100.0%"
    assert page.share_text(0.00049) == "0.0%" and page.share_text(0.0005) == "0.1%"
    answer = {"set": ["a", "b"], "set_coverage": 0.9}
    assert page.set_words(answer).startswith("90% prediction set: a, b. It holds")
    assert "is empty" in page.set_words({"set": [], "set_coverage": 0.9})
    assert page.set_words({"label": "a"}) == ""  # output=label: no set


# ------------------------------------------------------------------------------- OpenAPI


def test_openapi_documents_the_class_answer_and_its_options(model, api, classification_data):
    target = schema_of(model).target
    document = api.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    prediction = schemas["Prediction"]
    properties = prediction["properties"]
    assert properties["label"]["enum"] == list(target.classes)
    assert list(properties["probabilities"]["properties"]) == list(target.classes)
    assert properties["set"]["items"]["enum"] == list(target.classes)
    assert "set_coverage" in properties
    options = {"output", "threshold"} if target.task == "binary" else {"output"}
    options.add("explain")  # every family explains its answers (trees by TreeSHAP)
    assert options <= set(schemas["PredictRequest"]["properties"])
    for path in ("/predict", "/invocations"):
        parameters = document["paths"][path]["post"]["parameters"]
        assert {p["name"] for p in parameters} == options and all(p["in"] == "query"
                                                                   for p in parameters)  # fmt: skip
    infer_parameters = schemas["InferRequest"]["properties"]["parameters"]
    assert ("threshold" in infer_parameters.get("properties", {})) == (target.task == "binary")
    assert "probabilities" in document["paths"]["/invocations"]["post"]["description"]

    # Real answers, whole or narrowed by output, fit the documented schema.
    validator = jsonschema.Draft4Validator(prediction)
    rows = sample(model, classification_data, 5)
    for output in (None, "label", "probabilities"):
        answers = predict(api, rows, **({"output": output} if output else {}))
        for answer in answers:
            validator.validate(answer)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"warning": "neither a label nor probabilities"})


def test_a_regressions_openapi_has_no_class_options(client):
    document = client.get("/openapi.json").get_json()
    parameters = document["paths"]["/predict"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["explain"]  # the only option of a regression
    properties = document["components"]["schemas"]["PredictRequest"]["properties"]
    assert set(properties) == {"Weight", "explain"}
    assert "label" not in document["components"]["schemas"]["Prediction"]["properties"]
