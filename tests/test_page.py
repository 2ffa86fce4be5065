"""The home page as the server renders it: answers, errors, chart and headers (no browser)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from helpers import ROOT
from markupsafe import escape

import mlib
from cookbook.web import page
from cookbook.web.served import service_state


class _Elements(HTMLParser):
    """Collect every start tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_code: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_code = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._in_code = False

    def handle_data(self, data):
        if self._in_code and data.strip():
            self.inline_code.append(data)


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def by_id(elements: _Elements, element_id: str) -> dict[str, str | None]:
    return next(attrs for _, attrs in elements.tags if attrs.get("id") == element_id)


@pytest.mark.parametrize(
    ("typed", "body"),
    [
        ("200", '{"Weight": 200}'),
        (" 200.5 ", '{"Weight": 200.5}'),
        ("-5", '{"Weight": -5}'),
        ("2e2", '{"Weight": 2e2}'),
        ("abc", '{"Weight": "abc"}'),
        ("0x10", '{"Weight": "0x10"}'),
        ("NaN", '{"Weight": "NaN"}'),
        ("", '{"Weight": ""}'),
        ("200}", '{"Weight": "200}"}'),  # never splices text into the JSON
    ],
)
def test_request_body_sends_numbers_as_numbers_and_the_rest_as_strings(app, typed, body):
    schema = service_state(app).served.predictor.schema
    assert page.request_body(schema, {"Weight": typed}) == body
    json.loads(body)


def test_the_page_keeps_the_cookbook_heading_and_has_no_inline_code(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>Predict the Height From Weight of MLB Players</h1>" in html
    elements = parse(html)
    assert elements.inline_code == []
    assert not [tag for tag, _ in elements.tags if tag == "style"]
    for tag, attrs in elements.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
        if tag == "script":
            assert attrs["src"].startswith("/static/")
    # Without an answer, nothing is shown as one.
    assert "hidden" in by_id(elements, "answer")
    assert "hidden" in by_id(elements, "weight-error")
    assert "is-empty" in by_id(elements, "prediction")["class"]


def test_every_response_carries_the_strict_content_security_policy(client):
    for path in ("/", "/static/page.js", "/static/page.css", "/health", "/nowhere"):
        with client.get(path) as response:  # a static file stays open until closed
            policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy


@pytest.mark.parametrize("static_file", ["page.js", "page.css", "favicon.svg"])
def test_the_page_serves_its_own_files(client, static_file):
    with client.get(f"/static/{static_file}") as response:
        assert response.status_code == 200
        assert response.data
    assert f"/static/{static_file}" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_submitted_weight_is_answered_by_the_server(client, method):
    if method == "get":
        response = client.get("/?weight=200")
    else:
        response = client.post("/", data={"weight": "200"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    elements = parse(html)
    assert "hidden" not in by_id(elements, "answer")
    assert '<strong id="answer-human">6 foot, 2 inches</strong>' in html
    assert '<span id="answer-inches">73.6</span>' in html
    assert 'value="200"' in html
    marker = by_id(elements, "prediction")
    assert "is-empty" not in marker["class"] and "off-chart" not in marker["class"]
    assert "200 lb → 73.6 in" in html


@pytest.mark.parametrize(
    "typed", ["abc", "-5", "0", "1001", "1e999", "", "true", "200}", "1" * 5000]
)
def test_a_bad_weight_shows_the_apis_own_error_beside_the_field(app, client, typed):
    schema = service_state(app).served.predictor.schema
    api = client.post("/predict", data=page.request_body(schema, {"Weight": typed}))
    assert api.status_code == 400
    response = client.post("/", data={"weight": typed})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    elements = parse(html)
    error = by_id(elements, "weight-error")
    assert "hidden" not in error
    assert f'role="alert">{escape(api.get_json()["error"])}</p>' in html
    assert by_id(elements, "weight")["aria-invalid"] == "true"
    assert "hidden" in by_id(elements, "answer")


def test_an_extrapolation_shows_the_warning_and_an_off_chart_point(client):
    response = client.get("/?weight=400")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    elements = parse(html)
    assert "hidden" not in by_id(elements, "answer-warning")
    assert "extrapolat" in html
    assert "off-chart" in by_id(elements, "prediction")["class"]


def test_the_page_says_which_model_and_how_good_it_is(client, trained_model):
    metadata = mlib.read_metadata(trained_model)
    held_out = metadata["metrics"]["held_out"]
    html = client.get("/").get_data(as_text=True)
    assert f'<code id="model-version">{metadata["model_version"]}</code>' in html
    assert f'<dd id="model-trained">{metadata["created_at"][:10]}</dd>' in html
    assert f'<dd id="model-r2">{held_out["r2"]:.3f}</dd>' in html
    assert f'<dd id="model-rmse">{held_out["rmse"]:.2f} in</dd>' in html
    for link in ("/openapi.json", "/metrics", "/health", "/model"):
        assert f'href="{link}"' in html
    assert "curl -d" in html and "/predict" in html


def test_the_chart_draws_the_models_line_over_the_training_range(app, client):
    predictor = service_state(app).served.predictor
    chart = page.Chart.for_model(predictor)
    low, high = predictor.schema.feature("Weight").training_range
    elements = parse(client.get("/").get_data(as_text=True))
    line = by_id(elements, "model-line")
    heights = predictor.predict_rows([(low,), (high,)])
    assert float(line["x1"]) == chart.x(low) and float(line["x2"]) == chart.x(high)
    assert float(line["y1"]) == chart.y(float(heights[0]))
    assert float(line["y2"]) == chart.y(float(heights[1]))
    assert float(line["y2"]) < float(line["y1"])  # heavier, taller: the line rises
    shaded = by_id(elements, "training-range")
    assert float(shaded["x"]) == chart.x(low)
    assert float(shaded["x"]) + float(shaded["width"]) == pytest.approx(chart.x(high), abs=0.1)
    bins = [attrs for tag, attrs in elements.tags if tag == "circle" and "id" not in attrs]
    assert len(bins) == len(predictor.metadata["chart"]["bins"])


def test_scale_clamps_values_outside_the_axis():
    scale = page.Scale(100, 300, 50, 650)
    assert scale(100) == 50 and scale(300) == 650 and scale(200) == 350
    assert scale(1000) == 650 and scale(-5) == 50
    assert not scale.contains(1000) and scale.contains(200)
    assert [value for value, _ in scale.ticks(50)] == [100, 150, 200, 250, 300]


def test_openapi_documents_the_pages_form_post(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(paths["/"])


def test_a_number_too_long_to_read_is_a_400_not_a_500(client):
    response = client.post("/predict", data='{"Weight": ' + "1" * 5000 + "}")
    assert response.status_code == 400
    assert "too many digits" in response.get_json()["error"]


def test_a_page_prediction_counts_in_the_ml_metrics_and_drift(client):
    def sample(text: str, name: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.split()[-1])

    before = client.get("/metrics").get_data(as_text=True)
    drift_before = client.get("/drift").get_json()["window_size"]
    assert client.get("/?weight=200").status_code == 200
    after = client.get("/metrics").get_data(as_text=True)
    for name in ("predictions_total", "model_input_weight_pounds_count",
                 "model_predicted_height_inches_count"):  # fmt: skip
        assert sample(after, name) == sample(before, name) + 1, name
    assert client.get("/drift").get_json()["window_size"] == drift_before + 1


def why_rows(html: str) -> list[tuple[str, str, str]]:
    """Return the "why this answer" rows the page drew: (feature, sign, value text)."""
    import re

    return re.findall(r'<li data-feature="([^"]+)" data-sign="(\w+)">.*?'
                      r'<span class="why-value \w+">([^<]*)</span>', html, re.S)  # fmt: skip


def test_without_javascript_the_form_post_shows_why_this_answer():
    from app import create_app

    pitcher = ROOT / "examples" / "pitcher-classifier" / "model.joblib"
    client = create_app({"MODEL_PATH": str(pitcher), "TESTING": True}).test_client()
    row = {"height": "79", "weight": "250", "age": "35"}
    html = client.post("/", data=row).get_data(as_text=True)
    answer = client.post("/predict", json={"Height": 79, "Weight": 250, "Age": 35,
                                           "explain": True}).get_json()["prediction"]  # fmt: skip
    contributions = answer["explanation"]["contributions"]
    ordered = sorted(contributions, key=lambda name: -abs(contributions[name]))
    assert why_rows(html) == [
        (name, "negative" if contributions[name] < 0 else "positive", f"{contributions[name]:+.2f}")
        for name in ordered
    ]
    assert f"in the log-odds of {answer['label']}." in html
    assert "data-explain" in html  # page.js asks /predict for the explanation too


def test_a_model_that_cannot_explain_shows_no_bars_and_no_error(unexplained_trees):
    from app import create_app

    app = create_app({"MODEL_PATH": str(unexplained_trees), "TESTING": True})
    client = app.test_client()
    response = client.get("/?weight=200&age=28.5&position=Catcher")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Predicted height" in html
    assert 'id="why"' not in html and "data-explain" not in html
    assert 'class="error" role="alert" hidden' in html
