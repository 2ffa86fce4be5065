"""The home page: a form (one field per feature) and a chart to try the model.

The server renders the whole page, the answer to a submitted row included, so it works
without JavaScript; ``static/page.js`` then asks ``POST /predict`` for each new row and
moves the chart's point without reloading. Neither side implements the model: the
server calls the same ``payload`` functions as ``POST /predict``, the browser calls
``POST /predict`` itself. The chart is drawn for regressions of one number feature; a
classifier's answer is its label, a bar per class (its probability) and its prediction set.
A model that can explain its answers is asked for the explanation, shown as "why this
answer" (``page_explanation``); one that cannot is asked without, and shows no bars.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, render_template, request

from cookbook.core.answer_options import EXPLAIN_FIELD
from cookbook.core.answers import round_half_up
from cookbook.core.errors import InvalidInput
from cookbook.core.explained import can_explain
from cookbook.core.prediction import Predictor, Row
from cookbook.core.schema import CategoryFeature, Schema
from cookbook.web import payload
from cookbook.web.access import open_unless
from cookbook.web.page_explanation import explained_as, unit_words, why_this_answer
from cookbook.web.served import request_id_of_request, service_state

blueprint = Blueprint("page", __name__)

# Only the page's own files: no inline script, style or event handler, no other origin.
# plumbing.RequestPlumbing sends it (and nosniff) with every response.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# JSON's number grammar, ASCII digits only; static/page.js uses the same pattern.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def field_id(feature_name: str) -> str:
    """Return the form field (and query parameter) of a feature: ``weight`` for ``Weight``."""
    return re.sub(r"[^a-z0-9_-]+", "-", feature_name.lower())


def request_body(schema: Schema, texts: Mapping[str, str | None], explain: bool = False) -> str:
    """Return the ``POST /predict`` body for what was typed in each feature's field.

    A JSON number goes as typed and anything else as a string, so the API, not the
    page, decides what is wrong with it; a field left out stays out. With *explain*, the
    body asks for the answer's explanation too. ``static/page.js`` builds the same body.
    """
    parts = []
    for feature in schema.features:
        text = texts.get(feature.name)
        if text is None:
            continue
        value = text.strip()
        number = not isinstance(feature, CategoryFeature) and _JSON_NUMBER.fullmatch(value)
        parts.append(f"{json.dumps(feature.name)}: {value if number else json.dumps(value)}")
    if explain:
        parts.append(f'"{EXPLAIN_FIELD}": true')
    return "{" + ", ".join(parts) + "}"


def typed_values(schema: Schema) -> dict[str, str | None]:
    """Return what the request typed in each feature's field (None: not sent)."""
    source = request.form if request.method == "POST" else request.args
    return {f.name: source.get(field_id(f.name)) for f in schema.features}


def asks_for_a_prediction() -> bool:
    """Return whether this request of the page carries feature values (not just the shell)."""
    texts = typed_values(service_state().served.predictor.schema)
    return any(text is not None for text in texts.values())


def refuse(message: str) -> tuple[str, int]:
    """Render the page with *message* in place of the answer (a prediction without token)."""
    return render_page(error=message, status=401)


@blueprint.route("/", methods=["GET", "POST"])
@open_unless(asks_for_a_prediction, refuse, form_token=True)
def home() -> tuple[str, int]:
    """Render the page; with feature values (query or form fields), render the answer too."""
    predictor = service_state().served.predictor
    texts = typed_values(predictor.schema)
    if not any(text is not None for text in texts.values()):
        return render_page()
    try:
        text = request_body(predictor.schema, texts, explain=can_explain(predictor))
        body, rows, values = payload.answer_body(predictor, text)
        if "prediction" not in body:
            raise InvalidInput("Type one value per field, not a list.")
    except InvalidInput as exc:
        return render_page(error=str(exc), status=exc.status)
    # A prediction made for the page counts in the metrics, drift and capture like any.
    service_state().record(rows, values, body, request_id_of_request())
    return render_page(answer=(rows[0], values[0], body["prediction"]))


def render_page(answer: tuple[Row, float, dict[str, Any]] | None = None,
                error: str | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    """Render the page: the form as typed, and the *answer* (row, value, prediction) or
    the *error*."""
    predictor = service_state().served.predictor
    schema = predictor.schema
    chart = Chart.for_model(predictor)
    prediction = answer[2] if answer else None
    marker = None
    if answer is not None and chart is not None:
        marker = chart.marker(float(answer[0][0]), answer[1], prediction)
    classes = schema.target.classes  # empty for a regression
    page = render_template(
        "home.html",
        model=model_facts(predictor.metadata),
        fields=form_fields(schema, typed_values(schema)),
        answer_fields=schema.answer_fields(),
        classes=class_rows(classes, prediction),
        set_text=set_words(prediction),
        has_set=getattr(predictor, "prediction_set", None) is not None,
        chart=chart,
        marker=marker,
        prediction=prediction,
        interval_text=interval_words(prediction, schema.target.unit or ""),
        has_interval=predictor.interval is not None,
        can_explain=can_explain(predictor),
        why=why_this_answer(schema, predictor.metadata, prediction),
        explained_as=explained_as(schema, predictor.metadata),
        unit_words=unit_words(schema),
        error=error,
        needs_token=bool(current_app.config["API_TOKEN"]),
        token_refused=status == 401,
        predict_url=request.host_url + "predict",
        example=json.dumps(schema.example_row()),
    )
    return page, status


def interval_words(prediction: Mapping[str, Any] | None, unit: str = "") -> str:
    """Return the answer's interval in words: "90% of cases like this are between A and B".

    ``static/page.js`` writes the same sentence from ``POST /predict``'s answer.
    """
    interval = (prediction or {}).get("interval")
    if not interval:
        return ""
    share = f"{round(interval['coverage'] * 100):d}%"
    if "low_human_readable" in interval:
        low, high = interval["low_human_readable"], interval["high_human_readable"]
        return f"{share} of players like this are between {low} and {high}."
    suffix = f" {unit}" if unit else ""
    low, high = f"{interval['low']}{suffix}", f"{interval['high']}{suffix}"
    return f"{share} of cases like this are between {low} and {high}."


def share_text(probability: float) -> str:
    """Return a probability as a percentage to a tenth, halves up: ``"73.5%"``.

    ``static/page.js`` writes it by the same steps (``Math.floor(p * 100 * 10 + 0.5)``).
    """
    return f"{round_half_up(probability * 100, 1):.1f}%"


def class_rows(classes: Sequence[str], prediction: Mapping[str, Any] | None) -> list[dict]:
    """Return a classifier's bars: each class, in the schema's order, with its probability
    in the *prediction* (0 before one is made) and that probability as a percentage."""
    probabilities = (prediction or {}).get("probabilities") or {}
    rows = []
    for name in classes:
        probability = probabilities.get(name)
        rows.append({"name": name, "probability": probability or 0.0,
                     "share": "" if probability is None else share_text(probability)})  # fmt: skip
    return rows


def set_words(prediction: Mapping[str, Any] | None) -> str:
    """Return a classifier's prediction set in words (empty without one).

    ``static/page.js`` writes the same sentence from ``POST /predict``'s answer.
    """
    if not prediction or "set" not in prediction:
        return ""
    share = f"{round(prediction['set_coverage'] * 100):d}%"
    members = prediction["set"]
    if not members:
        return f"The {share} prediction set is empty: no class is likely enough for this row."
    return (
        f"{share} prediction set: {', '.join(members)}. It holds the true class for about "
        f"{share} of cases like this."
    )


def form_fields(schema: Schema, texts: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Return what the template needs for each feature's field."""
    fields = []
    for feature in schema.features:
        is_category = isinstance(feature, CategoryFeature)
        unit = "" if is_category else (f" in {feature.unit_name}" if feature.unit_name else "")
        fields.append(
            {
                "feature": feature.name,
                "id": field_id(feature.name),
                "label": f"{feature.name}{unit}",
                "kind": feature.kind,
                "options": list(feature.categories) if is_category else [],
                "placeholder": f"e.g. {feature.example:g}" if not is_category else "",
                "value": texts.get(feature.name) or "",
            }
        )
    return fields


def model_facts(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the page says about the model, from its ``model.json``."""
    held_out = metadata.get("metrics", {}).get("held_out", {})
    schema = metadata.get("schema", {})
    target = schema.get("target", {})
    return {
        "version": metadata["model_version"],
        "name": schema.get("name"),
        "title": schema.get("title") or schema.get("name") or "the model",
        "target": target.get("name", "value"),
        "target_unit": target.get("unit") or "",
        "trained_on": str(metadata.get("created_at", "unknown"))[:10],
        "rows": metadata.get("data", {}).get("rows"),
        "r2": held_out.get("r2"),
        "rmse": held_out.get("rmse"),
        "accuracy": held_out.get("accuracy"),
        "log_loss": held_out.get("log_loss"),
    }


# ------------------------------------------------------------------------ chart


@dataclass(frozen=True)
class Scale:
    """Map a data interval onto a pixel interval, clamping values outside it to its ends."""

    low: float
    high: float
    start_px: float
    end_px: float

    def __call__(self, value: float) -> float:
        """Return the pixel position of *value*."""
        clamped = min(max(value, self.low), self.high)
        fraction = (clamped - self.low) / (self.high - self.low)
        return round(self.start_px + fraction * (self.end_px - self.start_px), 1)

    def contains(self, value: float) -> bool:
        """Return whether *value* lies on the axis (not clamped)."""
        return self.low <= value <= self.high

    def ticks(self, step: float) -> list[tuple[float, float]]:
        """Return ``(value, pixel)`` for every multiple of *step* on the axis."""
        first = math.ceil(self.low / step)
        last = math.floor(self.high / step)
        return [(k * step, self(k * step)) for k in range(first, last + 1)]


def _widen(low: float, high: float, step: float) -> tuple[float, float]:
    """Return [low, high] padded by half a step and rounded out to multiples of *step*."""
    return math.floor((low - step / 2) / step) * step, math.ceil((high + step / 2) / step) * step


@dataclass(frozen=True)
class Chart:
    """Everything the SVG needs, in pixels: axes, training range, binned means, model line."""

    WIDTH = 640
    HEIGHT = 360
    LEFT, RIGHT, TOP, BOTTOM = 56, 616, 16, 304  # the plot area inside the SVG

    x: Scale
    y: Scale
    x_step: float
    y_step: float
    line: tuple[float, float, float, float]
    bins: list[dict[str, Any]]
    band: dict[str, Any] | None  # the prediction interval around the line, when the model has one
    low: float  # the training range of the feature
    high: float
    x_label: str
    y_label: str
    x_unit: str
    y_unit: str

    @classmethod
    def for_model(cls, predictor: Predictor) -> Chart | None:
        """Lay out the chart of a one-number-feature model's line and binned training means."""
        feature = predictor.schema.single_number
        stored = predictor.metadata.get("chart")
        if feature is None or not stored or predictor.is_classifier:
            return None
        target = predictor.schema.target
        low, high = feature.training_range
        bins = list(stored.get("bins", []))
        line_values = [float(v) for v in predictor.predict_rows([(low,), (high,)])]
        interval = predictor.interval
        spread = 0.0 if interval is None else interval.half_width
        xs = [low, high] + [b["x"] for b in bins]
        ys = line_values + [b["mean"] for b in bins]
        ys += [v + d for v in line_values for d in (-spread, spread)]
        x_step = float(stored.get("x_step") or 1.0)
        y_step = float(stored.get("y_step") or _nice_step(min(ys), max(ys)))
        x = Scale(*_widen(min(xs), max(xs), x_step), cls.LEFT, cls.RIGHT)
        y = Scale(*_widen(min(ys), max(ys), y_step), cls.BOTTOM, cls.TOP)
        most = max((b["count"] for b in bins), default=1)
        x_unit = f" {feature.unit}" if feature.unit else ""
        y_unit = f" {target.unit}" if target.unit else ""
        points = [
            {
                "cx": x(b["x"]),
                "cy": y(b["mean"]),
                # Area grows with the number of rows, so sparse bins look light.
                "r": round(2 + 5 * math.sqrt(b["count"] / most), 1),
                "title": f"{b['x']:g}{x_unit}: mean {target.name.lower()} {b['mean']:.1f}"
                f"{y_unit} ({b['count']} rows)",
            }
            for b in bins
        ]
        line = (x(low), y(line_values[0]), x(high), y(line_values[1]))
        band = None
        if interval is not None:
            (start, end), q = line_values, interval.half_width
            corners = [(low, start + q), (high, end + q), (high, end - q), (low, start - q)]
            band = {
                "points": " ".join(f"{x(cx)},{y(cy)}" for cx, cy in corners),
                "title": f"{interval.coverage:.0%} prediction interval: the model ± "
                f"{q:.1f}{y_unit} ({interval.method})",
                "coverage": f"{interval.coverage:.0%}",
            }
        return cls(
            x=x, y=y, x_step=x_step, y_step=y_step, line=line, bins=points, band=band,
            low=low, high=high,
            x_label=feature.name + (f" ({feature.unit})" if feature.unit else ""),
            y_label=target.name + (f" ({target.unit})" if target.unit else ""),
            x_unit=x_unit, y_unit=y_unit,
        )  # fmt: skip

    def marker(self, x_value: float, value: float, prediction: Mapping[str, Any]) -> dict:
        """Return where the prediction point goes; off-chart values sit on the edge."""
        shown = prediction.get("height_inches", value)
        cx, cy = self.x(x_value), self.y(shown)
        # static/page.js places the label by the same rule.
        right_half = cx > (self.LEFT + self.RIGHT) / 2
        return {
            "cx": cx,
            "cy": cy,
            "label": f"{x_value:g}{self.x_unit} → {shown:.1f}{self.y_unit}",
            "label_x": cx - 10 if right_half else cx + 10,
            "label_y": cy + 20 if cy < self.TOP + 20 else cy - 10,
            "anchor": "end" if right_half else "start",
            "off_chart": not (self.x.contains(x_value) and self.y.contains(shown)),
        }


def _nice_step(low: float, high: float) -> float:
    span = (high - low) or 1.0
    return float(f"{span / 5:.1g}")
