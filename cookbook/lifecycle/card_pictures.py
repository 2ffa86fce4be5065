"""Draw the card's pictures as SVG: a classifier's reliability diagram and confusion matrix, and
any model's importance chart.

A classifier's two are drawn from ``model.json``'s ``diagnostics``
(``class_scoring.diagnostics_of``: the rows themselves are not kept), the importance chart from
its ``importance`` (``cookbook.core.importance``); all by hand: a few rectangles, lines and
texts, with every number written at a fixed precision, so the same model.json gives the same
bytes and a diff of two cards' pictures shows only what changed. Each picture stands alone (its
title names the rows and the figure it shows) and every mark has a ``<title>`` with its exact
figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

RELIABILITY, CONFUSION, IMPORTANCE = "reliability", "confusion", "importance"
PICTURES = (RELIABILITY, CONFUSION, IMPORTANCE)
FONT = 'font-family="sans-serif"'
LIGHT, DARK, GRID, INK = "#c6dbef", "#08519c", "#d9d9d9", "#252525"
CHAR_WIDTH = 7.0  # about one character of 12px sans-serif, to lay labels out
MAX_LABEL = 18  # characters of a class name shown in the matrix (its <title> has all)


def picture_paths(card: Path) -> dict[str, Path]:
    """Return where the pictures of the card at *card* go: ``<stem>.<picture>.svg`` beside it."""
    return {name: card.with_name(f"{card.stem}.{name}.svg") for name in PICTURES}


def draw_pictures(
    diagnostics: Mapping[str, Any], classes: Sequence[str], rows_name: str
) -> dict[str, str]:
    """Return each picture's SVG text, keyed by ``PICTURES``, for *diagnostics* of the rows
    *rows_name* names ("held-out rows")."""
    rows = int(diagnostics["rows"])
    return {
        RELIABILITY: reliability_svg(diagnostics["reliability"], f"{rows} {rows_name}"),
        CONFUSION: confusion_svg(classes, diagnostics["confusion"], f"{rows} {rows_name}"),
    }


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
            *body,
            "</svg>",
            "",
        ]
    )


def _text(
    x: float,
    y: float,
    text: str,
    size: int = 12,
    anchor: str = "middle",
    extra: str = "",
    fill: str = INK,
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" fill="{fill}" '
        f'text-anchor="{anchor}"{extra}>{escape(text)}</text>'
    )


def expected_calibration_error(bins: Sequence[Mapping[str, Any]]) -> float:
    """Return the ECE of reliability *bins*: the rows' weighted mean of |accuracy - confidence|
    (the same figure ``class_scoring`` reports, from the same bins)."""
    rows = sum(b["rows"] for b in bins)
    gaps = sum(b["rows"] * abs(b["accuracy"] - b["confidence"]) for b in bins)
    return gaps / rows if rows else 0.0


def reliability_svg(bins: Sequence[Mapping[str, Any]], rows_text: str) -> str:
    """Return the reliability diagram: per bin of the answered class's probability, the share
    of rows answered right (a bar over the bin, its rows written at its foot, and a point at
    the bin's mean probability), against the diagonal a calibrated model follows."""
    left, top, side, bottom, right = 56.0, 44.0, 260.0, 52.0, 20.0
    width, height = left + side + right, top + side + bottom

    def x(value: float) -> float:
        return left + value * side

    def y(value: float) -> float:
        return top + (1 - value) * side

    ece = expected_calibration_error(bins)
    title = f"Reliability on {rows_text}: ECE {ece:.3f}"
    body = [_text(width / 2, 20, title, 13)]
    for step in range(6):
        tick = step / 5
        body += [
            f'<line x1="{x(0):.1f}" y1="{y(tick):.1f}" x2="{x(1):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>',
            _text(x(0) - 6, y(tick) + 4, f"{tick:.1f}", 11, "end"),
            _text(x(tick), y(0) + 16, f"{tick:.1f}", 11),
        ]
    for point in bins:
        low, high, accuracy = point["low"], point["high"], point["accuracy"]
        body.append(
            f'<rect x="{x(low) + 1:.1f}" y="{y(accuracy):.1f}" '
            f'width="{(high - low) * side - 2:.1f}" height="{y(0) - y(accuracy):.1f}" '
            f'fill="{LIGHT}"><title>'
            f"{escape(_bin_words(point))}</title></rect>"
        )
        body.append(_text(x((low + high) / 2), y(0) - 5, str(point["rows"]), 9))  # its rows
    body.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" stroke="{INK}" '
        'stroke-width="1" stroke-dasharray="4 4"><title>a calibrated model</title></line>'
    )
    if bins:
        points = " ".join(f"{x(p['confidence']):.1f},{y(p['accuracy']):.1f}" for p in bins)
        body.append(f'<polyline points="{points}" fill="none" stroke="{DARK}" stroke-width="1.5"/>')
    for point in bins:
        body.append(
            f'<circle cx="{x(point["confidence"]):.1f}" cy="{y(point["accuracy"]):.1f}" r="3.5" '
            f'fill="{DARK}"><title>{escape(_bin_words(point))}</title></circle>'
        )
    body += [
        f'<rect x="{x(0):.1f}" y="{y(1):.1f}" width="{side:.1f}" height="{side:.1f}" '
        f'fill="none" stroke="{INK}" stroke-width="1"/>',
        _text(x(0.5), height - 14, "probability of the answered class"),
        _text(
            16, y(0.5), "share answered right", extra=f' transform="rotate(-90 16 {y(0.5):.1f})"'
        ),
    ]
    return _svg(width, height, title, body)


def _bin_words(point: Mapping[str, Any]) -> str:
    return (
        f"probability {point['low']:.1f}-{point['high']:.1f}: {point['rows']} rows, mean "
        f"probability {point['confidence']:.3f}, answered right {point['accuracy']:.3f}"
    )


def _shade(share: float) -> str:
    """Return the colour of a cell holding *share* of its row: white to ``DARK``."""
    white, dark = (255, 255, 255), (8, 81, 156)
    red, green, blue = (round(w + (d - w) * share) for w, d in zip(white, dark, strict=True))
    return f"#{red:02x}{green:02x}{blue:02x}"


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def confusion_svg(classes: Sequence[str], matrix: Sequence[Sequence[int]], rows_text: str) -> str:
    """Return the confusion matrix: a row per true class, a column per answered class, each
    cell its count and its share of the row, shaded by that share."""
    cell = 64.0
    longest = max(len(_short(name)) for name in classes) * CHAR_WIDTH
    rotated = longest > cell - 8  # column labels too long to stand side by side
    left = 40 + longest + 10
    top = 70 + (longest * 0.71 if rotated else 18)
    count = len(classes)
    width = max(left + count * cell + 20 + (longest * 0.71 if rotated else 0), 320)
    height = top + count * cell + 20
    title = f"Confusion matrix on {rows_text}"
    body = [
        _text(width / 2, 20, title, 13),
        _text(left + count * cell / 2, 44, "answered class"),
        _text(
            16,
            top + count * cell / 2,
            "true class",
            extra=f' transform="rotate(-90 16 {top + count * cell / 2:.1f})"',
        ),
    ]
    for index, name in enumerate(classes):
        middle = left + (index + 0.5) * cell
        if rotated:
            body.append(
                _text(
                    middle,
                    top - 8,
                    _short(name),
                    anchor="start",
                    extra=f' transform="rotate(-45 {middle:.1f} {top - 8:.1f})"',
                )
            )
        else:
            body.append(_text(middle, top - 8, _short(name)))
        body.append(_text(left - 8, top + (index + 0.5) * cell + 4, _short(name), anchor="end"))
    for row, counts in enumerate(matrix):
        total = sum(counts)
        for column, value in enumerate(counts):
            share = value / total if total else 0.0
            x0, y0 = left + column * cell, top + row * cell
            colour = "#ffffff" if share > 0.5 else INK
            words = (
                f"true {classes[row]}, answered {classes[column]}: {value} rows, "
                f"{share:.1%} of the true {classes[row]}"
            )
            body += [
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="{_shade(share)}" stroke="{GRID}" stroke-width="1"><title>'
                f"{escape(words)}</title></rect>",
                _text(x0 + cell / 2, y0 + cell / 2, str(value), 14, fill=colour),
                _text(x0 + cell / 2, y0 + cell / 2 + 16, f"{share:.0%}", 10, fill=colour),
            ]
    return _svg(width, height, title, body)


def importance_svg(ranked: Sequence[tuple[str, float]], unit: str, rows_text: str) -> str:
    """Return the importance chart: one horizontal bar per feature of *ranked* (name and
    importance, the largest first), its length the importance in *unit*, its value at its end."""
    longest = max(len(_short(name)) for name, _value in ranked) * CHAR_WIDTH
    left, top, bar, gap, span, right = 20 + longest + 8, 48.0, 20.0, 8.0, 300.0, 70.0
    width = max(left + span + right, 360)
    height = top + len(ranked) * (bar + gap) + 36
    largest = max((value for _name, value in ranked), default=0.0) or 1.0
    title = f"Importance on {rows_text}: mean |contribution| in {unit}"
    body = [_text(width / 2, 20, title, 13)]
    for index, (name, value) in enumerate(ranked):
        y0 = top + index * (bar + gap)
        length = value / largest * span
        words = f"{name}: importance {value:.6g} {unit}, rank {index + 1}"
        body += [
            _text(left - 8, y0 + bar / 2 + 4, _short(name), anchor="end"),
            f'<rect x="{left:.1f}" y="{y0:.1f}" width="{length:.1f}" height="{bar:.1f}" '
            f'fill="{DARK}"><title>{escape(words)}</title></rect>',
            _text(left + length + 6, y0 + bar / 2 + 4, f"{value:.4g}", 11, "start"),
        ]
    axis = top + len(ranked) * (bar + gap)
    body += [
        f'<line x1="{left:.1f}" y1="{top - 4:.1f}" x2="{left:.1f}" y2="{axis:.1f}" '
        f'stroke="{INK}" stroke-width="1"/>',
        _text(left + span / 2, axis + 22, f"mean |contribution| ({unit})"),
    ]
    return _svg(width, height, title, body)
