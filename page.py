"""The home page: a form and a chart to try the model, in one Flask blueprint.

The server renders the whole page, the answer to a submitted weight included, so it
works without JavaScript; ``static/page.js`` then asks ``POST /predict`` for each new
weight and moves the chart's point without reloading. Neither side implements the
model: the server calls the same ``payload`` functions as ``POST /predict``, the
browser calls ``POST /predict`` itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, render_template, request

import mlib
import payload

blueprint = Blueprint("page", __name__)

# The app keeps the model and the metrics under these keys (see app.py).
_PREDICTOR = "mlib"
_METRICS = "metrics"
_SERVED = "served"

# Only the page's own files: no inline script, style or event handler, no other origin.
# app.RequestPlumbing sends it (and nosniff) with every response.
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


def request_body(weight_text: str) -> str:
    """Return the ``POST /predict`` body for what was typed in the weight field.

    A JSON number goes as typed and anything else as a string, so the API, not the
    page, decides what is wrong with it. ``static/page.js`` builds the same body.
    """
    text = weight_text.strip()
    if _JSON_NUMBER.fullmatch(text):
        return f'{{"Weight": {text}}}'
    return json.dumps({"Weight": text})


@blueprint.route("/", methods=["GET", "POST"])
def home() -> tuple[str, int]:
    """Render the page; with a ``weight`` (query or form field), render its answer too."""
    predictor: mlib.Predictor = current_app.extensions[_PREDICTOR]
    source = request.form if request.method == "POST" else request.args
    weight_text = source.get("weight")
    chart = Chart.for_model(predictor)
    prediction, marker, error, status = None, None, None, 200
    if weight_text is not None:
        try:
            document = payload.decode(request_body(weight_text))
            body = payload.predict(predictor, document)
        except payload.PayloadError as exc:
            error, status = str(exc), exc.status
        else:
            # A prediction made for the page counts in the ML metrics and drift like any other.
            current_app.extensions[_SERVED].observe(
                current_app.extensions[_METRICS], document["Weight"], body
            )
            prediction = body["prediction"]
            marker = chart.marker(float(document["Weight"]), prediction)
    page = render_template(
        "home.html",
        model=model_facts(predictor.metadata),
        chart=chart,
        marker=marker,
        weight_text=weight_text or "",
        prediction=prediction,
        error=error,
        predict_url=request.host_url + "predict",
    )
    return page, status


def model_facts(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the page says about the model, from its ``model.json``."""
    held_out = metadata.get("metrics", {}).get("held_out", {})
    low, high = metadata["training_range_lbs"]
    return {
        "version": metadata["model_version"],
        "trained_on": str(metadata.get("created_at", "unknown"))[:10],
        "rows": metadata.get("data", {}).get("rows"),
        "r2": held_out.get("r2"),
        "rmse": held_out.get("rmse"),
        "low_lbs": low,
        "high_lbs": high,
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
    line: tuple[float, float, float, float]
    bins: list[dict[str, Any]]

    @classmethod
    def for_model(cls, predictor: mlib.Predictor) -> Chart:
        """Lay out the chart of *predictor*'s line and its training data's binned means."""
        low, high = predictor.weight_range_lbs
        bins = list(predictor.metadata.get("height_by_weight", []))
        line_heights = [float(h) for h in predictor.predict_heights([low, high])]
        weights = [low, high] + [b["weight_lbs"] for b in bins]
        heights = line_heights + [b["mean_height_inches"] for b in bins]
        x = Scale(*_widen(min(weights), max(weights), 25), cls.LEFT, cls.RIGHT)
        y = Scale(*_widen(min(heights), max(heights), 2), cls.BOTTOM, cls.TOP)
        most = max((b["players"] for b in bins), default=1)
        points = [
            {
                "cx": x(b["weight_lbs"]),
                "cy": y(b["mean_height_inches"]),
                # Area grows with the number of players, so sparse bins look light.
                "r": round(2 + 5 * math.sqrt(b["players"] / most), 1),
                "title": f"{b['weight_lbs']:g} lb: mean height {b['mean_height_inches']:.1f} in "
                f"({b['players']} players)",
            }
            for b in bins
        ]
        line = (x(low), y(line_heights[0]), x(high), y(line_heights[1]))
        return cls(x=x, y=y, line=line, bins=points)

    def marker(self, weight_lbs: float, prediction: Mapping[str, Any]) -> dict[str, Any]:
        """Return where the prediction point goes; off-chart values sit on the edge."""
        height = prediction["height_inches"]
        cx, cy = self.x(weight_lbs), self.y(height)
        # static/page.js places the label by the same rule.
        right_half = cx > (self.LEFT + self.RIGHT) / 2
        return {
            "cx": cx,
            "cy": cy,
            "label": f"{weight_lbs:g} lb → {height:.1f} in",
            "label_x": cx - 10 if right_half else cx + 10,
            "label_y": cy + 20 if cy < self.TOP + 20 else cy - 10,
            "anchor": "end" if right_half else "start",
            "off_chart": not (self.x.contains(weight_lbs) and self.y.contains(height)),
        }
