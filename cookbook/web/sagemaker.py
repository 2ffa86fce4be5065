"""Amazon SageMaker's container contract: ``GET /ping`` and ``POST /invocations``.

SageMaker starts the image with ``serve`` (``cookbook.web.container``) and sends
``/invocations`` either the ``/predict`` JSON body (``application/json``) or CSV rows of
feature values in schema order with no header (``text/csv``). The answer comes in the
``Accept`` type: the ``/predict`` JSON by default, or ``text/csv`` with one value per
line (the answer's first field: ``height_inches`` for the MLB models).

A classifier takes ``/predict``'s answer options (``output``, a binary model's
``threshold``) in the JSON body or the query string. Its CSV answer is one label per line,
or, when the request asks for ``output=probabilities``, one column per class (the schema's
order, no header). SageMaker's ``InvokeEndpoint`` passes no query string but passes the
``Accept`` header, so the CSV answer's option may also come as a media type parameter:
``Accept: text/csv;output=probabilities`` (the body, then the query, win over it).
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, request
from werkzeug.http import parse_options_header

from cookbook.core.classes import LABEL, OUTPUT_FIELD, PROBABILITIES
from cookbook.core.errors import InvalidInput, MlibError
from cookbook.core.prediction import Predictor
from cookbook.core.schema import CategoryFeature
from cookbook.web import payload, readiness
from cookbook.web.access import open_route
from cookbook.web.canary import CANARY
from cookbook.web.responses import CSV_CONTENT_TYPE, TextAnswer, json_response, text_response
from cookbook.web.served import ServiceState, note_canary, request_id_of_request, service_state

blueprint = Blueprint("sagemaker", __name__)

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"


@blueprint.get("/ping")
@open_route
def ping() -> Response:
    """Answer 200 when the model is loaded and passes its probe, else 503."""
    try:
        readiness.probe_served()
    except MlibError as exc:
        return json_response({"error": str(exc)}, 503)
    return json_response({"status": "ready"})


@blueprint.post("/invocations")
def invocations() -> Response:
    """Predict for a JSON body or CSV rows; answer in the ``Accept`` type."""
    answer, canary_version = invocations_answer(
        service_state(), request.get_data(cache=False), request.headers.get("Content-Type"),
        request.headers.get("Accept"), request.args.to_dict(),
        request.headers.get("X-Canary-Key"), request_id_of_request(),
    )  # fmt: skip
    note_canary(canary_version)
    if isinstance(answer, TextAnswer):
        return text_response(answer)
    return json_response(answer)


def invocations_answer(state: ServiceState, raw: bytes, content_type: str | None,
                       accept: str | None, query: dict[str, str], canary_key: str | None,
                       request_id: str) -> tuple[dict | TextAnswer, str | None]:  # fmt: skip
    """Return the answer to ``/invocations`` (JSON, or CSV text) and, when the canary
    answered, its version; raise ``InvalidInput`` (406 for an ``Accept`` type it cannot
    answer in, 415 for a ``Content-Type`` it cannot read). No Flask here: the Flask view and
    the hot path both call it."""
    answer_type, answer_parameters = _answer_type(accept)
    if answer_type is None:
        raise InvalidInput(f"Cannot answer in {accept!r}: accept {JSON_TYPE} or {CSV_TYPE}.", 406)
    # The media type as werkzeug's ``request.mimetype`` reads it.
    media_type = parse_options_header(content_type or "")[0].lower() or JSON_TYPE
    predictor, role = state.answering(canary_key)
    canary_version = predictor.version if role == CANARY else None
    # A classifier's answer options: the body's, else the query's, else the Accept type's.
    options = {**answer_parameters, **query}
    if media_type == JSON_TYPE:
        body, rows, values = payload.answer_body(predictor, raw, options)
    elif media_type == CSV_TYPE:
        body, rows, values = payload.predict(predictor, csv_columns(predictor, raw), options)
    else:
        raise InvalidInput(
            f"Content-Type {media_type!r} is not supported: send {JSON_TYPE} (the /predict "
            f"body) or {CSV_TYPE} (rows of {', '.join(predictor.schema.feature_names)}).",
            415,
        )
    state.record(rows, values, body, request_id, predictor, role)
    if answer_type == CSV_TYPE:
        answers = body["predictions"] if "predictions" in body else [body["prediction"]]
        if predictor.is_classifier:
            text = class_csv(answers)
        else:
            field = predictor.schema.answer_fields()[0]
            text = "".join(f"{answer[field]}\n" for answer in answers)
        return TextAnswer(text, CSV_CONTENT_TYPE), canary_version
    return body, canary_version


def class_csv(answers: list[dict]) -> str:
    """Return a classifier's CSV answer: one label per line, or, for answers that carry only
    the probabilities (``output=probabilities``), one column per class in the schema's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for answer in answers:
        if LABEL in answer:
            writer.writerow([answer[LABEL]])
        else:
            writer.writerow([repr(p) for p in answer[PROBABILITIES].values()])
    return buffer.getvalue()


def _answer_type(accept: str | None) -> tuple[str | None, dict[str, str]]:
    """Return the answer's type for an ``Accept`` header and, for CSV, the answer option
    its media type carries (``text/csv;output=probabilities``)."""
    if not accept:
        return JSON_TYPE, {}
    for part in accept.split(","):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        kind = kind.lower()
        if kind in (JSON_TYPE, "*/*", "application/*"):
            return JSON_TYPE, {}
        if kind in (CSV_TYPE, "text/*"):
            return CSV_TYPE, _media_options(parameters)
    return None, {}


def _media_options(parameters: list[str]) -> dict[str, str]:
    """Return the ``output`` option among a media type's parameters (others are ignored)."""
    options = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == OUTPUT_FIELD:
            options[OUTPUT_FIELD] = value.strip().strip('"')
    return options


def csv_columns(predictor: Predictor, raw: bytes) -> dict[str, list]:
    """Return the ``/predict`` batch document for CSV rows in schema order (no header)."""
    features = predictor.schema.features
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The CSV body is not UTF-8 text.") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""))
                if row and any(cell.strip() for cell in row)]  # fmt: skip
    except csv.Error as exc:
        raise InvalidInput(f"The CSV body is not valid CSV: {exc}.") from None
    if not rows:
        raise InvalidInput(
            f"The CSV body has no rows: send {', '.join(f.name for f in features)} per line."
        )
    columns: dict[str, list] = {f.name: [] for f in features}
    for line, row in enumerate(rows, start=1):
        if len(row) != len(features):
            raise InvalidInput(
                f"CSV row {line} has {len(row)} values; the model takes {len(features)}: "
                f"{', '.join(f.name for f in features)}."
            )
        for feature, cell in zip(features, row, strict=True):
            columns[feature.name].append(
                cell.strip() if isinstance(feature, CategoryFeature) else _number(cell)
            )
    return columns


def _number(cell: str) -> float | str:
    # A cell that is not a number goes on as text, so validation says what is wrong with it.
    try:
        return float(cell)
    except ValueError:
        return cell.strip()
