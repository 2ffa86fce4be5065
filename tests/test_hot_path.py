"""The hot path answers byte for byte as the Flask app does, and records the same.

Each request goes through the production server's RSGI adapter twice, in-process, on
the same app: once with the hot path, once without (the Flask app answers it). Status,
headers and body bytes must be equal (the request id is pinned with ``X-Request-ID``),
and so must what each path records: capture's calls, the metrics' samples and the
request log line (but for its time and latency).
"""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import urlencode

import pytest
import requests
from helpers import BAD_BODIES, ROOT, RSGIHeaders, RSGIScope, start_server, stop

from app import create_app
from cookbook.core.answer_options import MAX_EXPLAINED_ROWS
from cookbook.core.validation import MAX_BATCH_ROWS
from cookbook.web.hot_path import HotPath
from cookbook.web.request_log import REQUESTS
from cookbook.web.rsgi import WSGIOverRSGI
from cookbook.web.served import service_state

TOKEN = "hot-path-token"
BEARER = f"Bearer {TOKEN}"
AUTHORIZED = ("authorization", BEARER)
MODELS = {
    "demo": ROOT / "model.joblib",
    "category": ROOT / "examples" / "height-by-position" / "model.joblib",
    "trees": ROOT / "examples" / "height-gbm" / "model.joblib",
    "classifier": ROOT / "examples" / "pitcher-classifier" / "model.joblib",
}


class Protocol:
    """An RSGI protocol that hands over *body* and keeps the answer."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.answer: tuple | None = None

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.answer = (status, list(headers), body)

    def response_str(self, status: int, headers: list, body: str) -> None:
        self.answer = (status, list(headers), body.encode())


def exchange(adapter: WSGIOverRSGI, method: str, path: str, body: bytes,
             headers: list[tuple[str, str]], query: str = "") -> tuple:  # fmt: skip
    pairs = [*headers, ("content-length", str(len(body)))]
    protocol = Protocol(body)
    asyncio.run(adapter.__rsgi__(RSGIScope(method, path, query, RSGIHeaders(pairs)), protocol))
    return protocol.answer


def without_id(answer: tuple) -> tuple:
    return answer[0], [pair for pair in answer[1] if pair[0] != "X-Request-ID"], answer[2]


def samples(app) -> dict:
    """Every metric sample but latencies and creation times (they differ by path and time)
    and the drift gauges (refreshed by whichever request's rows pass a count)."""
    found = {}
    for metric in service_state(app).metrics.registry.collect():
        for sample in metric.samples:
            name = sample.name
            if not name.startswith(
                ("http_request_duration", "model_input_drift", "model_predicted_class_drift")
            ) and not name.endswith("_created"):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def moved(before: dict, after: dict) -> dict:
    return {key: value - before.get(key, 0) for key, value in after.items()
            if value != before.get(key, 0)}  # fmt: skip


class Both:
    """One app behind two adapters: with the hot path, and Flask alone."""

    def __init__(self, app) -> None:
        self.app = app
        hot_path = HotPath(app)
        self.answered_directly: list[bool] = []

        def answer(scope, body):
            answered = hot_path(scope, body)
            self.answered_directly.append(answered is not None)
            return answered

        self.hot = WSGIOverRSGI(app, hot_path=answer)
        self.flask = WSGIOverRSGI(app)
        self.captured: list = []
        capture = service_state(app).capture
        if capture is not None:
            real = capture.record

            def record(*args):
                self.captured.append((args[0], args[1].version, *args[2:]))
                real(*args)

            capture.record = record

    def one(self, adapter: WSGIOverRSGI, *request) -> tuple:
        self.captured.clear()
        log = REQUESTS.stream = io.StringIO()
        before = samples(self.app)
        try:
            answer = exchange(adapter, *request)
        finally:
            REQUESTS.stream = None
        line = json.loads(log.getvalue())
        del line["ts"], line["latency_ms"]
        return answer, list(self.captured), moved(before, samples(self.app)), line

    def compare(self, method: str, path: str, body: bytes | str, headers=(), query="") -> tuple:
        """Send the request both ways; assert all is alike; return the answer."""
        body = body.encode() if isinstance(body, str) else body
        request = (method, path, body, [("x-request-id", "pinned-id"), *headers], query)
        hot = self.one(self.hot, *request)
        assert self.answered_directly.pop(), "the hot path left this request to Flask"
        flask = self.one(self.flask, *request)
        assert hot[0] == flask[0]  # status, headers in order, body bytes
        assert hot[1] == flask[1] and hot[3] == flask[3]  # captured, the log line
        assert hot[2] == pytest.approx(flask[2])  # metrics moved (sums: up to rounding)
        return hot[0]


@pytest.fixture(scope="module", params=list(MODELS))
def both(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hot-{request.param}")
    app = create_app({"MODEL_PATH": str(MODELS[request.param]), "API_TOKEN": TOKEN,
                      "CAPTURE_ENV": {"CAPTURE_URL": f"sqlite:///{folder}/capture.sqlite3",
                                      "CAPTURE_FRACTION": "1"}})  # fmt: skip
    return Both(app)


def schema_of(both: Both):
    return service_state(both.app).served.predictor.schema


def valid_bodies(both: Both) -> list[dict]:
    schema = schema_of(both)
    row, batch = schema.example_row(), schema.example_batch()
    bodies = [row, batch, {**row, "explain": True}, {**batch, "explain": True},
              {**row, "explain": False}, {**row, "explain": "yes"}]  # fmt: skip
    if schema.target.is_classification:
        bodies += [{**row, "output": "probabilities"}, {**row, "output": "label"},
                   {**batch, "threshold": 0.3}, {**row, "threshold": 2},
                   {**row, "output": "odds"}]  # fmt: skip
    else:
        bodies += [{**row, "threshold": 0.3}]
    return bodies


def test_answers_are_alike(both):
    statuses = set()
    for body in valid_bodies(both):
        status, _, _ = both.compare("POST", "/predict", json.dumps(body), [AUTHORIZED])
        statuses.add(status)
    assert 200 in statuses


@pytest.mark.parametrize(
    "query", ["explain=true", "explain=0", "explain=maybe", "output=probabilities&output=label",
              "threshold=0.2", "threshold=%zz", "threshold=0.3&explain=1", "a=1;explain=true"],
)  # fmt: skip
def test_query_options_are_read_alike(both, query):
    row = json.dumps(schema_of(both).example_row())
    both.compare("POST", "/predict", row, [("authorization", BEARER)], query)


@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
def test_errors_are_alike(both, body, words):
    status, _, _ = both.compare("POST", "/predict", body, [("authorization", BEARER)])
    assert 400 <= status < 500


def test_model_specific_errors_are_alike(both):
    schema = schema_of(both)
    row = schema.example_row()
    name = schema.features[0].name
    wrong = [
        {key: value for key, value in row.items() if key != name},  # a missing feature
        {**row, name: "many"},
        {**row, name: 10**400},  # past the float range
        {**row, "Position": "Goalkeeper"},  # an unknown category (or an unknown key)
        {name: [row[name]] * (MAX_BATCH_ROWS + 1)},
        {**{key: [value] * (MAX_EXPLAINED_ROWS + 1) for key, value in row.items()},
         "explain": True},
    ]  # fmt: skip
    for body in wrong:
        both.compare("POST", "/predict", json.dumps(body), [("authorization", BEARER)])


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", TOKEN,
     f"Basic {TOKEN}"],
)  # fmt: skip
def test_the_token_rule_is_alike(both, authorization):
    headers = [] if authorization is None else [("authorization", authorization)]
    both.compare("POST", "/predict", '{"Weight": 200}', headers)


def v2_body(both: Both, rows: int = 2, **extra) -> str:
    schema = schema_of(both)
    inputs = [{"name": name, "datatype": "BYTES" if isinstance(value, str) else "FP64",
               "shape": [rows], "data": [value] * rows}
              for name, value in schema.example_row().items()]  # fmt: skip
    return json.dumps({"inputs": inputs, **extra})


def test_v2_inference_is_answered_alike(both):
    predictor = service_state(both.app).served.predictor
    name, version = predictor.schema.name, predictor.version
    explained_output = [{"name": "explanation"}]
    bodies = [v2_body(both), v2_body(both, 1, id="client-7"),
              v2_body(both, parameters={"explain": True}), v2_body(both, outputs=explained_output),
              v2_body(both, outputs=[{"name": "nope"}]),
              v2_body(both, id=7), v2_body(both, parameters="x"),
              v2_body(both, MAX_BATCH_ROWS + 1), v2_body(both, rows=0),
              '{"id": 1e400, "inputs": []}', '{"inputs": [{"name": "Weight", "datatype": "FP64", '
              '"shape": [1], "data": [200]}], "outputs": [{"name": "x", "parameters": "x"}]}',
              *(body for body, _ in BAD_BODIES)]  # fmt: skip
    paths = [f"/v2/models/{name}/infer", f"/v2/models/{name}/versions/{version}/infer",
             "/v2/models/other/infer", f"/v2/models/{name}/versions/other/infer"]  # fmt: skip
    for path in paths:
        for body in bodies:
            both.compare("POST", path, body, [AUTHORIZED])
    both.compare("POST", paths[0], v2_body(both), [AUTHORIZED,
                 ("inference-header-content-length", "12")])  # fmt: skip
    both.compare("POST", paths[0], v2_body(both))  # no token


@pytest.mark.parametrize(
    ("content_type", "accept"),
    [(None, None), ("application/json", "application/json"), ("APPLICATION/JSON; charset=utf-8",
     "*/*"), ("text/csv", "text/csv"), ("text/csv; charset=utf-8", "text/csv;output=probabilities"),
     ("text/plain", None), ("application/json", "application/xml"), (None, "text/*, */*"),
     ("", "text/csv;output=label")],
)  # fmt: skip
def test_invocations_are_answered_alike(both, content_type, accept):
    schema = schema_of(both)
    row, batch = schema.example_row(), schema.example_batch()
    csv_row = ",".join(str(value) for value in row.values())
    bodies = [json.dumps(row), json.dumps(batch), json.dumps({**row, "explain": True}),
              f"{csv_row}\n{csv_row}\n", f"{csv_row}\n\n", "1,2,3,4,5\n", '"unclosed\n',
              b"\xff\xfe", *(body for body, _ in BAD_BODIES[:8])]  # fmt: skip
    headers = [AUTHORIZED]
    headers += [] if content_type is None else [("content-type", content_type)]
    headers += [] if accept is None else [("accept", accept)]
    answered = set()
    for body in bodies:
        for query in ("", "output=probabilities"):
            status, answer_headers, _ = both.compare("POST", "/invocations", body, headers, query)
            answered.add((status, dict(answer_headers)["Content-Type"]))
    if accept in ("text/csv", "text/csv;output=probabilities"):
        assert (200, "text/csv; charset=utf-8") in answered


def test_a_generated_request_id_is_the_only_difference(both):
    row = json.dumps(schema_of(both).example_row()).encode()
    headers = [("authorization", BEARER)]
    hot = exchange(both.hot, "POST", "/predict", row, headers)
    flask = exchange(both.flask, "POST", "/predict", row, headers)
    assert without_id(hot) == without_id(flask)
    assert dict(hot[1])["X-Request-ID"] != dict(flask[1])["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "query"),
    [("GET", "/predict", [], ""), ("PUT", "/predict", [], ""), ("POST", "/predict/", [], ""),
     ("POST", "/Predict", [], ""), ("POST", "/health", [], ""),
     ("POST", "/predict", [("x-request-id", "second")], ""),
     ("POST", "/predict", [("authorization", BEARER)], ""),
     ("POST", "/predict", [("x_request_id", "folded")], ""),
     ("POST", "/predict", [("x-canary-key", "a"), ("x-canary-key", "b")], ""),
     ("POST", "/predict", [], "explain=tr%C3%BCe&x=\u00e9"),
     ("POST", "/v2/models/x/infer/", [], ""), ("POST", "/v2//models/x/infer", [], ""),
     ("POST", "/v2/models/\u00e9/infer", [], ""), ("GET", "/v2/models/x/infer", [], ""),
     ("POST", "/v2/models/x/ready", [], ""), ("POST", "/v2/models/x/versions/infer", [], ""),
     ("POST", "/invocations", [("content-type", "text/csv"), ("content-type", "text/csv")], ""),
     ("POST", "/invocations", [("content_type", "text/csv")], ""),
     ("POST", "/invocations", [("accept", "text/csv"), ("accept", "*/*")], ""),
     ("POST", "//v2/models/mlb-height/infer", [], "")],
)  # fmt: skip
def test_what_the_hot_path_is_unsure_of_goes_to_flask(both, method, path, headers, query):
    request_headers = [("authorization", BEARER), ("x-request-id", "pinned-id"), *headers]
    scope = RSGIScope(method, path, query, RSGIHeaders(request_headers))
    assert HotPath(both.app)(scope, b'{"Weight": 200}') is None
    hot = exchange(both.hot, method, path, b'{"Weight": 200}', request_headers, query)
    flask = exchange(both.flask, method, path, b'{"Weight": 200}', request_headers, query)
    assert without_id(hot) == without_id(flask)  # a repeated id is refused: a new one each


def test_a_path_flask_quotes_otherwise_is_left_to_flask(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model), "API_TOKEN": TOKEN})
    both = Both(app)
    for path in ("//v2/models/mlb-height/infer", "///v2/models/mlb-height/versions/x/infer"):
        hot = exchange(both.hot, "POST", path, b"{}", [("x-request-id", "p")])
        assert not both.answered_directly.pop()
        assert hot == exchange(both.flask, "POST", path, b"{}", [("x-request-id", "p")])


def test_an_app_with_another_hook_is_left_to_flask(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model)})
    app.after_request(lambda response: response)
    scope = RSGIScope("POST", "/predict", "", RSGIHeaders([]))
    assert HotPath(app)(scope, b'{"Weight": 200}') is None


def test_an_open_predict_route_is_answered_without_a_token(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model)})
    Both(app).compare("POST", "/predict", '{"Weight": 200}')


def test_the_canary_is_chosen_alike(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model), "CANARY_MODEL_PATH": str(trained_model),
                      "CANARY_FRACTION": 0.5})  # fmt: skip
    both = Both(app)
    roles = set()
    for key in "abcdefgh":  # the key decides: some are answered by the canary
        both.compare("POST", "/predict", '{"Weight": 200}', [("x-canary-key", key)])
        roles.add(both.captured[0][2] if both.captured else None)
    assert roles == {"champion", "canary"}


def test_a_reload_in_another_worker_is_caught_up(trained_model):
    app = create_app({"MODEL_PATH": str(trained_model)})
    state = service_state(app)
    _, outcome = state.reload.reload(trained_model, state.served.predictor)
    assert outcome.accepted and state.served.generation != outcome.generation
    status, headers, _ = exchange(WSGIOverRSGI(app, hot_path=HotPath(app)), "POST", "/predict",
                                  b'{"Weight": 200}', [])  # fmt: skip
    assert status == 200 and state.served.generation == outcome.generation


def test_an_internal_error_is_the_same_json_500(trained_model, monkeypatch):
    app = create_app({"MODEL_PATH": str(trained_model)})
    both = Both(app)
    predictor = service_state(app).served.predictor
    monkeypatch.setattr(predictor, "predict_row", lambda row: float("nan"))
    status, _, body = both.compare("POST", "/predict", '{"Weight": 200}')
    assert status == 500 and json.loads(body)["error"]


def test_the_real_server_answers_alike_with_and_without_it(trained_model, tmp_path):
    bodies = [body for body, _ in BAD_BODIES]
    bodies += ['{"Weight": 200}', '{"Weight": [180, 200], "explain": true}']
    v2 = '{"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [2], "data": [180, 200]}]}'
    requests_sent = [("/predict", body, authorization) for body in bodies
                     for authorization in (BEARER, "Bearer x")]  # fmt: skip
    requests_sent += [(f"/v2/models/{name}/infer", body, BEARER)
                      for name in ("mlb-height", "other") for body in (v2, "{")]  # fmt: skip
    requests_sent += [("/invocations", body, BEARER) for body in ('{"Weight": 200}', "{", "")]
    answers = {}
    for hot_path in ("1", "0"):
        process, base_url = start_server(trained_model, tmp_path, API_TOKEN=TOKEN,
                                         HOT_PATH=hot_path)  # fmt: skip
        try:
            answers[hot_path] = [real_answer(base_url, *sent) for sent in requests_sent]
        finally:
            stop(process)
    assert answers["1"] == answers["0"]


def real_answer(base_url: str, path: str, body: str | bytes, authorization: str) -> list:
    headers = {"Authorization": authorization, "X-Request-ID": "real-id"}
    answer = requests.post(base_url + path, data=body, timeout=10, headers=headers)
    received = [(name, value) for name, value in answer.raw.headers.items()
                if name.lower() != "date"]  # fmt: skip
    return [answer.status_code, received, answer.content.decode("latin-1")]


# Requests as the fuzz suite makes them (schemathesis, from the app's own /openapi.json):
# schema-valid and schema-breaking ones, for each prediction operation of each model.
GENERATED_PER_MODE = 40
PREDICTION_OPERATIONS = ("/predict", "/invocations", "/v2/models/{name}/infer")


def generated_requests(app) -> list[tuple[str, bytes, list[tuple[str, str]], str]]:
    """Return (path, body, headers, query) of generated requests to the prediction routes."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.core import NotSet

    document = app.test_client().get("/openapi.json", headers={"Authorization": BEARER})
    schema = schemathesis.openapi.from_dict(document.get_json())
    cases = []
    for path in PREDICTION_OPERATIONS:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=GENERATED_PER_MODE, derandomize=True, database=None,
                      deadline=None, suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(schema[path]["POST"].as_strategy(generation_mode=mode))
            def collect(case):
                cases.append(case)

            collect()
    requests_made = []
    for case in cases:
        body = case.body
        if isinstance(body, str):
            content = body.encode()
        elif isinstance(body, bytes):
            content = body
        elif isinstance(body, NotSet):  # no body at all (JSON null is sent as null)
            content = b""
        else:
            content = json.dumps(body).encode()
        query = urlencode(case.query or {}, doseq=True)
        headers = [AUTHORIZED, ("content-type", case.media_type or "application/json")]
        requests_made.append((case.formatted_path, content, headers, query))
    return requests_made


def test_generated_requests_are_answered_alike(both):
    made = generated_requests(both.app)
    statuses = set()
    for path, body, headers, query in made:
        statuses.add(both.compare("POST", path, body, headers, query)[0])
    print(f"\n{len(made)} generated requests, statuses {sorted(statuses)}")
    assert len(made) >= len(PREDICTION_OPERATIONS) * GENERATED_PER_MODE
    assert {200, 400} <= statuses  # both answers and refusals were compared
