"""``utilscli.py predict`` and ``loadtest`` send any model's features (``--set``, ``--body``,
``--weight``), and every command that takes ``--host`` reads a base URL or a /predict URL.

What each request carried is read on a scripted server on 127.0.0.1 (tests/scripted_http.py);
a model that is not the cookbook's (scikit-learn's diabetes data, ten features) is served by
the real production server.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import ANSWER_200_LBS, start_server, stop, threaded_model
from scripted_http import Answer, ScriptedService, rollout_report

import utilscli
from cookbook.cli.evaluation_report import metric_tables

CLEAN_ENV = {name: None for name in ("API_TOKEN", "PREDICT_URL", "MODEL_PATH")}


def invoke(*args: str, **env: str):
    return CliRunner().invoke(utilscli.cli, list(args), env={**CLEAN_ENV, **env})


@pytest.fixture
def service():
    with ScriptedService() as running:
        running.answers["/predict"] = Answer(200, {"prediction": ANSWER_200_LBS})
        yield running


LOAD = ["--seconds", "0.2", "--concurrency", "1"]

# The options, and the JSON document they make.
FORMS = [
    (["--weight", "180"], {"Weight": 180}),
    (["--set", "Weight=180"], {"Weight": 180}),
    (["--set", "Weight=180", "--set", "Position=Catcher"], {"Weight": 180, "Position": "Catcher"}),
    (["--weight", "180", "--set", "Position=Catcher"], {"Weight": 180, "Position": "Catcher"}),
    (["--set", "bmi=-1.5e-2", "--set", "code=007", "--set", "x=NaN", "--set", "y=1e999"],
     {"bmi": -0.015, "code": "007", "x": "NaN", "y": "1e999"}),
    (["--set", "Position="], {"Position": ""}),
    (["--body", '{"Weight": [180, 200], "Position": ["C", "P"]}'],
     {"Weight": [180, 200], "Position": ["C", "P"]}),
]  # fmt: skip


@pytest.mark.parametrize(("options", "document"), FORMS)
def test_predict_sends_the_document_the_options_describe(service, options, document):
    result = invoke("predict", "--host", service.url, *options)
    assert result.exit_code == 0, result.output
    assert service.bodies("/predict") == [document]


@pytest.mark.parametrize(("options", "document"), FORMS)
def test_loadtest_sends_the_document_the_options_describe(service, options, document):
    result = invoke("loadtest", "--host", service.url, *LOAD, *options)
    assert result.exit_code == 0, result.output
    bodies = service.bodies("/predict")
    assert bodies and all(body == document for body in bodies)


def test_a_repeated_name_is_a_batch_column(service):
    result = invoke("predict", "--host", service.url, "--set", "Weight=180", "--set",
                    "Weight=200", "--set", "Position=C", "--set", "Position=P")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert service.bodies("/predict") == [{"Weight": [180, 200], "Position": ["C", "P"]}]


def test_loadtest_without_features_sends_the_cookbook_example(service):
    result = invoke("loadtest", "--host", service.url, *LOAD)
    assert result.exit_code == 0, result.output
    bodies = service.bodies("/predict")
    assert bodies and all(body == {"Weight": 200} for body in bodies)


REFUSED = [
    ["--body", '{"Weight": 180}', "--weight", "180"],
    ["--body", '{"Weight": 180}', "--set", "Weight=180"],
    ["--weight", "180", "--set", "Weight=200"],
    ["--body", "[180]"],
    ["--body", "{'Weight': 180}"],
    ["--body", '{"Weight": NaN}'],
    ["--body", '{"Weight": 1e999}'],
    ["--set", "Weight"],
    ["--set", "=180"],
    ["--weight", "heavy"],
]


@pytest.mark.parametrize("command", ["predict", "loadtest"])
@pytest.mark.parametrize("options", REFUSED)
def test_option_mixes_that_mean_nothing_are_usage_errors(service, command, options):
    extra = LOAD if command == "loadtest" else []
    result = invoke(command, "--host", service.url, *extra, *options)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and service.seen == []


def test_predict_without_features_is_a_usage_error(service):
    result = invoke("predict", "--host", service.url)
    assert result.exit_code == 2 and service.seen == []


# ------------------------------------------------------------------------ --host


def host_forms(url: str) -> list[str]:
    return [url, f"{url}/", f"{url}/predict", f"{url}/predict/"]


COMMANDS = {
    "predict": (["predict", "--weight", "200"], {("POST", "/predict")}),
    "loadtest": (["loadtest", *LOAD], {("POST", "/predict")}),
    "health": (["health"], {("GET", "/health"), ("GET", "/ready")}),
    "rollout status": (["rollout", "status"], {("GET", "/rollout")}),
    "rollout promote": (["rollout", "promote", "--min-labels", "1000"], {("GET", "/rollout")}),
}


@pytest.mark.parametrize("form", range(4))
@pytest.mark.parametrize("command", COMMANDS)
def test_every_host_option_takes_the_base_or_the_predict_url(service, tmp_path, command, form):
    args, calls = COMMANDS[command]
    for path in ("/health", "/ready"):
        service.answers[path] = Answer(200, {"status": "ok"})
    service.answers["/rollout"] = Answer(200, rollout_report())
    host = host_forms(service.url)[form]
    invoke(*args, "--host", host, MODEL_PATH=str(tmp_path / "model.joblib"))
    assert {(seen.method, seen.path) for seen in service.seen} == calls


def test_predict_url_comes_from_predict_url_in_either_form(service):
    for host in host_forms(service.url):
        result = invoke("predict", "--weight", "200", PREDICT_URL=host)
        assert result.exit_code == 0, result.output
    assert len(service.bodies("/predict")) == 4


# ------------------------------------------------- a model that is not the cookbook's


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """The production server serving a ten-feature diabetes model; yields (base URL, features)."""
    folder = tmp_path_factory.mktemp("diabetes")
    model_file = threaded_model(folder)
    features = json.loads(model_file.with_suffix(".json").read_text())["schema"]["features"]
    process, base_url = start_server(model_file, folder)
    yield base_url, [feature["name"] for feature in features], folder
    stop(process)


def test_predict_sets_each_feature_of_another_model(diabetes):
    base_url, names, _ = diabetes
    sets = [option for name in names for option in ("--set", f"{name}=0.01")]
    result = invoke("predict", "--host", base_url, *sets, "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.output)["prediction"]["target"], float)
    text = invoke("predict", "--host", f"{base_url}/predict", *sets)
    assert text.exit_code == 0 and text.output.startswith("target: ")


def test_predict_sends_another_models_batch_as_a_body(diabetes):
    base_url, names, _ = diabetes
    body = json.dumps({name: [0.01, -0.02] for name in names})
    result = invoke("predict", "--host", base_url, "--body", body, "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["predictions"]) == 2


def test_predict_of_a_row_the_other_model_refuses_is_one_line(diabetes):
    base_url, names, _ = diabetes
    result = invoke("predict", "--host", base_url, "--weight", "200")
    assert result.exit_code == 1 and "answered 400" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_loadtest_loads_another_model_with_its_own_features(diabetes):
    base_url, names, _ = diabetes
    sets = [option for name in names for option in ("--set", f"{name}=0.01")]
    result = invoke("loadtest", "--host", base_url, "--seconds", "0.5", "--concurrency", "2",
                    *sets, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["requests"] > 0 and summary["failed"] == 0


def test_retrain_prints_the_targets_unit_from_its_schema(diabetes, tmp_path):
    _, names, folder = diabetes
    data = str(folder / "diabetes.csv")
    result = invoke("retrain", "--data", data, "--golden", data, "--target", "target",
                    "--features", ",".join(names), "--model-name",
                    str(tmp_path / "m.joblib"))  # fmt: skip
    assert result.exit_code == 0, result.output
    rmse = next(line for line in result.output.splitlines() if line.startswith("RMSE:"))
    assert rmse.split()[-1].replace(".", "").isdigit()  # a number with no unit after it


def test_evaluate_tables_follow_the_column_the_report_was_grouped_by():
    metrics = {"rows": 3, "r2": 0.5, "rmse": 1.0, "mae": 0.8}
    plain = metric_tables({"overall": metrics, "group_by": None, "by_group": None})
    assert len(plain) == 1 and plain[0].splitlines()[0].split()[0] == "rows"
    grouped = metric_tables({"overall": metrics, "group_by": "team",
                             "by_group": {"b": metrics, "a": metrics}})  # fmt: skip
    lines = grouped[0].splitlines()
    assert lines[0].split()[0] == "Team" and [line.split()[0] for line in lines[1:]] == [
        "all", "a", "b"]  # fmt: skip


def test_retrain_of_the_cookbook_model_prints_its_unit(data_file, tmp_path):
    result = invoke("retrain", "--data", str(data_file), "--model-name", str(tmp_path / "m.joblib"))
    assert result.exit_code == 0, result.output
    rmse = next(line for line in result.output.splitlines() if line.startswith("RMSE:"))
    assert rmse.endswith(" in")  # Height's unit in the model's schema


def test_a_value_answers_interval_is_printed_for_a_person(capsys):
    from cookbook.cli.prediction_output import echo_prediction

    echo_prediction({"target": 200.8, "interval": {"low": 107.1, "high": 294.6, "coverage": 0.9}})
    assert capsys.readouterr().out == "target: 200.8, interval: 107.1 to 294.6 (90% of cases)\n"
