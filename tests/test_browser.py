"""The home page in a real headless Chromium, against the real production server.

Uses Debian's ``chromium`` (Playwright's own browser download cannot work offline).
Without it these tests skip, unless ``REQUIRE_BROWSER=1`` (as CI sets) makes that a failure.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest
from helpers import ANSWER_200_LBS, ROOT, start_server, stop
from playwright.sync_api import Browser, Page, expect, sync_playwright

from cookbook.lifecycle.artifacts import load_predictor
from cookbook.web.page import field_id, set_words

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000  # generous: the machine is shared
TOKEN = "browser-token"


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM)."
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """Every console error, uncaught exception and failed request a page reports."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.requested: list[str] = []
        page.on("request", lambda r: self.requested.append(r.url))
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # A request cut short because the page navigated away (a reload while the browser
        # still fetches the favicon) is the browser's doing, not a fault of the page or server.
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"failed: {request.url} {request.failure}")

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} at {message.location.get('url')}")

    def unexpected(self, allowed: str | None = None) -> list[str]:
        """Return the errors, leaving out those that contain *allowed* (in any letter case:
        servers spell a status's reason phrase differently)."""
        allowed = allowed.lower() if allowed else None
        return [e for e in self.errors if not (allowed and allowed in e.lower())]


def open_page(browser: Browser, tmp_path: Path, **context_options):
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    return context, page, Console(page)


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    print(f"screenshot: {path}")
    return path


def without_javascript(browser: Browser, url: str, view) -> dict:
    """Return what *view* reads of the page the server renders at *url*, no script run."""
    rendered = browser.new_context(java_script_enabled=False)
    try:
        static = rendered.new_page()
        static.goto(url)
        return view(static)
    finally:
        rendered.close()


def point_position(page: Page) -> tuple[float, float]:
    point = page.locator("#prediction-point")
    return float(point.get_attribute("cx")), float(point.get_attribute("cy"))


def submit(page: Page, weight: str, *, key: bool) -> dict:
    """Type *weight*, submit with Enter or the button, and return the API's JSON answer."""
    page.fill("#weight", weight)
    with page.expect_response(lambda r: r.url.endswith("/predict")) as answer:
        if key:
            page.press("#weight", "Enter")
        else:
            page.click("button[type=submit]")
    response = answer.value
    assert response.request.method == "POST"
    return {"status": response.status, **response.json()}


def test_a_prediction_from_the_api_is_shown_and_plotted(browser, live_server, tmp_path):
    context, page, console = open_page(browser, tmp_path, viewport={"width": 1000, "height": 900})
    response = page.goto(live_server + "/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    expect(page.locator("h1")).to_have_text("Predict the Height From Weight of MLB Players")

    # The chart: the model's line, the shaded training range and the binned means.
    for selector in ("#model-line", "#training-range"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 100, selector
    assert page.locator("#bins circle").count() > 5
    expect(page.locator("#prediction")).to_be_hidden()
    expect(page.locator("#chart")).to_contain_text("Weight (lb)")
    expect(page.locator("#chart")).to_contain_text("Height (in)")

    answer = submit(page, "200", key=True)
    # The page asks for the explanation too (the demo is folded): the answer is /predict's.
    explanation = answer["prediction"].pop("explanation")
    assert answer == {
        "status": 200,
        "prediction": ANSWER_200_LBS,
    }
    (weight,) = explanation["contributions"].values()  # below the training mean: negative
    expect(page.locator("#why-bars li[data-feature=Weight]")).to_have_attribute(
        "data-sign", "negative" if weight < 0 else "positive"
    )
    expect(page.locator("#why-bars .why-value")).to_have_text(f"{weight:+.2f}")
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    expect(page.locator("#answer-inches")).to_have_text("73.6")
    expect(page.locator("#answer-interval")).to_have_text(
        "90% of players like this are between 5 foot, 10 inches and 6 foot, 5 inches."
    )
    assert page.locator("#interval-band").bounding_box()["width"] > 100
    expect(page.locator("#prediction-point")).to_be_visible()
    expect(page.locator("#prediction-label")).to_have_text("200 lb → 73.6 in")
    first = point_position(page)
    assert page.url.endswith("/?weight=200")  # no reload: the address is updated in place
    screenshot(page, tmp_path, "home-200")

    answer = submit(page, "250", key=False)
    expect(page.locator("#answer-human")).to_have_text(
        answer["prediction"]["height_human_readable"]
    )
    # page.js words the interval as the server renders it for the same weight.
    rendered = page.request.get(live_server + "/?weight=250").text()
    server_words = re.search(r'<p id="answer-interval"[^>]*>([^<]+)</p>', rendered)[1]
    expect(page.locator("#answer-interval")).to_have_text(html.unescape(server_words))
    second = point_position(page)
    assert second[0] > first[0]  # heavier: further right
    assert second[1] < first[1]  # taller: higher up (SVG y grows downwards)
    expect(page.locator("#prediction")).not_to_have_class("prediction off-chart")

    # Outside the training range: the API's warning is shown and the point stays on the chart.
    answer = submit(page, "500", key=True)
    expect(page.locator("#answer-warning")).to_have_text(answer["prediction"]["warning"])
    expect(page.locator("#prediction")).to_have_class("prediction off-chart")
    screenshot(page, tmp_path, "home-500")

    assert console.unexpected() == []
    # Nothing but the service itself: no CDN, no other network access.
    assert console.requested and all(url.startswith(live_server) for url in console.requested)
    context.close()


@pytest.mark.parametrize(("typed", "says"), [("abc", "got a string"), ("-5", "greater than 0")])
def test_the_apis_error_is_shown_beside_the_field(browser, live_server, tmp_path, typed, says):
    context, page, console = open_page(browser, tmp_path)
    page.goto(live_server + "/?weight=200")  # start from an answer, which the error replaces
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")

    answer = submit(page, typed, key=True)
    assert answer["status"] == 400
    error = page.locator("#weight-error")
    expect(error).to_have_text(answer["error"])  # word for word what the API said
    assert says in answer["error"]
    expect(page.locator("#weight")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#answer")).to_be_hidden()
    expect(page.locator("#prediction")).to_be_hidden()
    screenshot(page, tmp_path, f"error-{typed}")

    # Chrome notes the 400 from /predict in the console; nothing else may appear.
    assert console.unexpected(allowed=f"status of 400 (BAD REQUEST) at {live_server}/predict") == []
    assert len(console.errors) <= 1
    context.close()


def test_the_form_works_without_javascript(browser, live_server, tmp_path):
    context, page, console = open_page(browser, tmp_path, java_script_enabled=False)
    page.goto(live_server + "/")
    page.fill("#weight", "200")
    with page.expect_navigation():
        page.press("#weight", "Enter")
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    expect(page.locator("#prediction-point")).to_be_visible()

    page.fill("#weight", "abc")
    with page.expect_navigation():
        page.click("button[type=submit]")
    expect(page.locator("#weight-error")).to_contain_text("got a string")
    expect(page.locator("#weight")).to_have_value("abc")
    assert console.unexpected(allowed="status of 400 (BAD REQUEST)") == []
    context.close()


def test_the_page_fits_a_phone_screen(browser, live_server, tmp_path):
    context, page, console = open_page(
        browser, tmp_path, viewport={"width": 360, "height": 740}, is_mobile=True
    )
    page.goto(live_server + "/?weight=200")
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    chart = page.locator("#chart").bounding_box()
    assert chart is not None and chart["width"] <= 360
    screenshot(page, tmp_path, "phone")
    assert console.unexpected() == []
    context.close()


@pytest.fixture(scope="module")
def guarded_server(trained_model, tmp_path_factory):
    """The production server with API_TOKEN set: the page's predictions need the token."""
    process, base_url = start_server(trained_model, tmp_path_factory.mktemp("guarded"),
                                     API_TOKEN=TOKEN)  # fmt: skip
    yield base_url
    stop(process)


def test_the_page_asks_for_the_token_and_keeps_it_for_the_tab(browser, guarded_server, tmp_path):
    context, page, console = open_page(browser, tmp_path)
    page.goto(guarded_server + "/")
    refused = submit(page, "200", key=True)  # no token typed yet
    assert refused["status"] == 401
    expect(page.locator("#weight-error")).to_contain_text("API_TOKEN")
    expect(page.locator("#token")).to_have_attribute("aria-invalid", "true")

    page.fill("#token", TOKEN)
    answer = submit(page, "200", key=False)
    answer["prediction"].pop("explanation")
    assert answer["status"] == 200 and answer["prediction"] == ANSWER_200_LBS
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    # The address now carries the weight; reloading it asks again with the tab's token.
    with page.expect_response(lambda r: r.url.endswith("/predict")) as again:
        page.reload()
    assert again.value.status == 200
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    screenshot(page, tmp_path, "token")
    allowed = f"status of 401 (unauthorized) at {guarded_server}"
    assert console.unexpected(allowed=allowed) == []
    context.close()


def test_without_javascript_the_form_carries_the_token(browser, guarded_server, tmp_path):
    context, page, _ = open_page(browser, tmp_path, java_script_enabled=False)
    page.goto(guarded_server + "/")
    page.fill("#weight", "200")
    with page.expect_navigation() as navigation:
        page.press("#weight", "Enter")
    assert navigation.value.status == 401
    expect(page.locator("#weight-error")).to_contain_text("API_TOKEN")
    page.fill("#weight", "200")
    page.fill("#token", TOKEN)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    assert navigation.value.status == 200
    expect(page.locator("#answer-human")).to_have_text("6 foot, 2 inches")
    expect(page.locator("#token")).to_have_value("")  # the page never writes the token back
    context.close()


# ------------------------------------------------------------------------------ classifiers


@pytest.fixture(scope="module", params=["binary", "multiclass"])
def classifier_server(request, classifier, tmp_path_factory):
    """The production server serving a classifier (a folded logistic regression); yields
    its URL and its model file."""
    model_file = classifier(request.param, "logistic-regression")
    process, base_url = start_server(model_file, tmp_path_factory.mktemp("classifier"))
    yield base_url, model_file
    stop(process)


def class_view(page: Page) -> dict:
    """Return what the page shows of a classifier's answer: label, bars, shares and set."""
    return page.evaluate("""() => ({
        label: document.getElementById("answer-label").textContent,
        bars: Object.fromEntries(Array.from(document.querySelectorAll("meter[data-class]"),
                                            (bar) => [bar.dataset.class, bar.value])),
        shares: Array.from(document.querySelectorAll(".class-share"), (s) => s.textContent),
        set: document.getElementById("answer-set").textContent,
        hidden: document.getElementById("answer").hidden,
    })""")


def test_a_classifiers_label_bars_and_set_come_from_the_api(browser, classifier_server,
                                                            tmp_path):  # fmt: skip
    base_url, model_file = classifier_server
    schema = load_predictor(model_file).schema
    features = [f.name for f in schema.features]
    context, page, console = open_page(browser, tmp_path, viewport={"width": 900, "height": 900})
    page.goto(base_url + "/")
    expect(page.locator("#answer")).to_be_hidden()
    assert page.locator("#chart").count() == 0
    assert page.locator("meter[data-class]").count() == len(schema.target.classes)

    # Typical values, then values far outside the training ranges (the API warns).
    for scale in (1.0, 3.0):
        for feature in schema.features:
            page.fill(f"#{field_id(feature.name)}", repr(round(feature.mean * scale, 3)))
        with page.expect_response(lambda r: r.url.endswith("/predict")) as response:
            page.click("button[type=submit]")
        prediction = response.value.json()["prediction"]
        expect(page.locator("#answer-label")).to_have_text(prediction["label"])
        shown = class_view(page)
        # meter.value is the probability the API sent, every digit of it.
        assert shown["bars"] == prediction["probabilities"]
        assert shown["set"] == set_words(prediction) and shown["set"]
        assert not shown["hidden"]
        expect(page.locator("#answer-warning")).to_have_text(prediction.get("warning", ""))

        # The server renders the same answer for the same address (a reload, no JavaScript).
        assert all(name in page.url for name in map(field_id, features))
        assert without_javascript(browser, page.url, class_view) == shown
        # Why: a bar per feature, in the answered class's log-odds (a multiclass: its logit).
        why = why_view(page)
        assert sorted(bar["feature"] for bar in why["bars"]) == sorted(features)
        kind = "log-odds" if schema.target.task == "binary" else "logit"
        assert f"in the {kind} of {prediction['label']}." in why["base"]
        assert without_javascript(browser, page.url, why_view) == why
        screenshot(page, tmp_path, f"classifier-{schema.target.task}-{scale:g}")

    box = page.locator("meter[data-class]").first.bounding_box()
    assert box is not None and box["width"] > 100  # a visible bar, not a bare number
    assert console.unexpected() == []
    context.close()


# -------------------------------------------------------------------------- why this answer


@pytest.fixture(scope="module")
def position_server(tmp_path_factory):
    """The production server serving the committed Ridge on Weight and Position."""
    model_file = ROOT / "examples" / "height-by-position" / "model.joblib"
    process, base_url = start_server(model_file, tmp_path_factory.mktemp("position"))
    yield base_url
    stop(process)


def why_view(page: Page) -> dict:
    """Return the page's "why this answer": each bar's feature, sign, size and value."""
    return page.evaluate("""() => ({
        hidden: document.getElementById("why").hidden,
        bars: Array.from(document.querySelectorAll("#why-bars li"), (row) => ({
            feature: row.dataset.feature, sign: row.dataset.sign,
            size: row.querySelector("meter").value,
            text: row.querySelector(".why-value").textContent})),
        base: document.getElementById("why-base").textContent,
    })""")


def test_why_this_answer_shows_a_signed_bar_per_feature(browser, position_server, tmp_path):
    context, page, console = open_page(browser, tmp_path, viewport={"width": 900, "height": 1000})
    page.goto(position_server + "/")
    expect(page.locator("#why")).to_be_hidden()
    for weight, position in (("250", "Catcher"), ("160", "Shortstop")):
        page.fill("#weight", weight)
        page.select_option("#position", position)
        with page.expect_response(lambda r: r.url.endswith("/predict")) as response:
            page.click("button[type=submit]")
        assert '"explain": true' in response.value.request.post_data
        explanation = response.value.json()["prediction"]["explanation"]
        contributions = explanation["contributions"]
        expect(page.locator("#why")).to_be_visible()
        shown = why_view(page)
        # Largest contribution first, each signed as the API's, in inches.
        expected = sorted(contributions, key=lambda name: -abs(contributions[name]))
        assert [bar["feature"] for bar in shown["bars"]] == expected
        for bar in shown["bars"]:
            value = contributions[bar["feature"]]
            assert bar["sign"] == ("negative" if value < 0 else "positive")
            assert bar["text"] == f"{value:+.2f}"
        assert shown["bars"][0]["size"] == 1.0
        assert (
            shown["base"].startswith(f"Base {explanation['base']:.2f}")
            and "inches" in shown["base"]
        )
        # The server draws the same bars for the same address, without JavaScript.
        assert without_javascript(browser, page.url, why_view) == shown
        screenshot(page, tmp_path, f"why-{weight}-{position}")
    box = page.locator("#why-bars meter").first.bounding_box()
    assert box is not None and box["width"] > 100  # a visible bar, not a bare number
    assert console.unexpected() == []
    context.close()
