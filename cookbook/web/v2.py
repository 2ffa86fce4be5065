"""The Open Inference Protocol (KServe's "V2" REST API) over the served model's schema.

KServe, Seldon MLServer and NVIDIA Triton speak it, so their clients (``tritonclient.http``,
KServe's ``InferenceRESTClient``) work against this service unchanged. The model's name is
its schema's ``name`` and its version the model version the service reports. One input
tensor per feature (numbers as FP32, FP64, INT32 or INT64, categories as BYTES; shape
``[n]`` or ``[n, 1]``); one output tensor per answer field. Every validation rule of
``/predict`` applies, with its messages. The binary tensor extension is not supported:
the server metadata lists no extensions and a binary request is a 400.

A classifier answers two outputs: ``label`` (BYTES, shape ``[n]``) and ``probabilities``
(FP64, shape ``[n, k]``, the rows' probabilities flattened row-major as the protocol's
``data`` is, the classes in the schema's order). The model metadata lists the classes in
its ``parameters`` (``classes``, ``task``, and a binary model's ``positive_class`` and
``threshold``), and each ``probabilities`` output repeats them in its own ``parameters``.
A binary model takes ``{"threshold": t}`` in the request's ``parameters``.

Explanations: ``{"explain": true}`` in the request's ``parameters`` adds two outputs,
``contributions`` (FP64, shape ``[n, f]``, each row's contribution of every feature in the
schema's order, flattened row-major; the feature names in the output's ``parameters``) and
``base`` (FP64, ``[n]``), read from the same per-row explanations ``/predict`` answers:
``base + Σ contributions`` is the unrounded prediction (a classifier: the logit of the class
it answered). Asking for either by name in ``outputs`` implies ``explain``. The model
metadata lists both outputs when the model can explain; one that cannot answers 400, as
``/predict`` does, and more than ``MAX_EXPLAINED_ROWS`` rows are a 413.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

import cookbook
from cookbook.core.answer_options import EXPLAIN_FIELD, AnswerOptions
from cookbook.core.classes import LABEL, PROBABILITIES, THRESHOLD_FIELD
from cookbook.core.errors import InvalidInput, MlibError
from cookbook.core.explained import (
    BASE,
    CONTRIBUTIONS,
    EXPLANATION_FIELD,
    can_explain,
    contributions_in_order,
)
from cookbook.core.prediction import Predictor
from cookbook.core.schema import BINARY, CategoryFeature, Schema
from cookbook.core.validation import MAX_BATCH_ROWS, json_type
from cookbook.web import payload, readiness
from cookbook.web.access import open_route
from cookbook.web.canary import CANARY
from cookbook.web.responses import json_response
from cookbook.web.served import (
    CHAMPION,
    ServiceState,
    note_canary,
    request_id_of_request,
    service_state,
)

blueprint = Blueprint("v2", __name__, url_prefix="/v2")

NUMBER_TYPES = frozenset({"FP32", "FP64", "INT32", "INT64"})
# A request's "id" is echoed in the answer: a string, and not a long one.
MAX_ID_CHARACTERS = 256
# The outputs an explanation adds, after the answer's fields.
EXPLANATION_OUTPUTS = (CONTRIBUTIONS, BASE)
SERVER_NAME = "mlops-cookbook"
PLATFORM = "scikit-learn"


@blueprint.get("")
@open_route
def server_metadata() -> Response:
    """Return the server's name, version and protocol extensions (none: JSON tensors only)."""
    return json_response({"name": SERVER_NAME, "version": cookbook.__version__, "extensions": []})


@blueprint.get("/health/live")
@open_route
def live() -> Response:
    """Answer while the process is alive."""
    return json_response({"live": True})


@blueprint.get("/health/ready")
@open_route
def ready() -> Response:
    """Answer ``{"ready": true}`` when the model passes its probe, else 503."""
    ready = _ready()  # once: a hung model's probe takes PROBE_TIMEOUT each time
    return json_response({"ready": ready}, 200 if ready else 503)


def _ready() -> bool:
    try:
        readiness.probe_served()
    except MlibError:
        return False
    return True


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<version>")
@open_route
def model_metadata(name: str, version: str | None = None) -> Response:
    """Return the model's name, versions, platform, and its input and output tensors."""
    predictor = _model(name, version)
    schema = predictor.schema
    inputs = [
        {"name": f.name, "datatype": "BYTES" if isinstance(f, CategoryFeature) else "FP64",
         "shape": [-1]}
        for f in schema.features
    ]  # fmt: skip
    outputs = [
        {"name": field, "datatype": _output_type(field), "shape": _output_shape(schema, field)}
        for field in output_names(predictor)
    ]
    canary = service_state().canary
    versions = [predictor.version] + ([canary.predictor.version] if canary else [])
    body = {"name": schema.name, "versions": versions, "platform": PLATFORM,
            "inputs": inputs, "outputs": outputs}  # fmt: skip
    if schema.target.is_classification:
        body["parameters"] = class_parameters(schema)
    return json_response(body)


def class_parameters(schema: Schema) -> dict[str, Any]:
    """Return what a client needs to read a classifier's outputs: its task and classes, in
    the order of the ``probabilities`` columns, and a binary model's positive class and
    threshold."""
    target = schema.target
    parameters: dict[str, Any] = {"task": target.task, "classes": list(target.classes)}
    if target.task == BINARY:
        parameters["positive_class"] = target.positive_class
        parameters["threshold"] = target.threshold
    return parameters


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<version>/ready")
@open_route
def model_ready(name: str, version: str | None = None) -> Response:
    """Answer 200 ``{"ready": true}`` when the model passes its probe, else 503."""
    predictor = _model(name, version)
    ready = _ready()
    return json_response({"name": predictor.schema.name, "ready": ready}, 200 if ready else 503)


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    """Predict for the rows in the request's input tensors; one output tensor per field."""
    answer, canary_version = infer_answer(
        service_state(), name, version, request.get_data(cache=False),
        request.headers.get("Inference-Header-Content-Length"),
        request.headers.get("X-Canary-Key"), request_id_of_request(),
    )  # fmt: skip
    note_canary(canary_version)
    return json_response(answer)


def infer_answer(state: ServiceState, name: str, version: str | None, body: bytes,
                 binary_length: str | None, canary_key: str | None,
                 request_id: str) -> tuple[dict[str, Any], str | None]:  # fmt: skip
    """Return an inference request's answer and, when the unversioned route chose the
    canary, its version; raise ``InvalidInput``. *binary_length* is the request's
    ``Inference-Header-Content-Length``. No Flask here: the Flask view and the hot path
    both call it."""
    predictor = _model(name, version, state)
    role = CANARY if state.canary and predictor is state.canary.predictor else CHAMPION
    canary_version = None
    if version is None:  # the unversioned route is routed like /predict
        predictor, role = state.answering(canary_key)
        canary_version = predictor.version if role == CANARY else None
    if binary_length:
        raise InvalidInput("The binary tensor extension is not supported: send JSON tensors.")
    document = payload.decode(body, "send a V2 inference request")
    if not isinstance(document, dict):
        raise InvalidInput('An inference request must be a JSON object with "inputs".')
    document_id = document.get("id")
    if document_id is not None and (not isinstance(document_id, str)
                                    or len(document_id) > MAX_ID_CHARACTERS):  # fmt: skip
        raise InvalidInput(f'"id" must be a string of at most {MAX_ID_CHARACTERS} characters.')
    parameters = document.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput('"parameters" must be an object.')
    requested = _requested_outputs(predictor, document.get("outputs"))
    options = _answer_options(predictor, parameters or {}, requested or [])
    columns = _columns(predictor, document.get("inputs"))
    wanted = _default_outputs(predictor, options) if requested is None else requested
    rows, values, _ = predictor.predict_request(columns)
    answers = predictor.response_body(rows, values, True, options)["predictions"]
    state.record(rows, values, {"predictions": answers}, request_id, predictor, role)
    answer: dict[str, Any] = {"model_name": predictor.schema.name,
                              "model_version": predictor.version}  # fmt: skip
    if document_id is not None:
        answer["id"] = document_id
    answer["outputs"] = [_output_tensor(predictor.schema, field, answers) for field in wanted]
    warnings = [item.get("warning") for item in answers]
    if any(warnings):
        answer["parameters"] = {"warnings": warnings}
    return answer, canary_version


def _model(name: str, version: str | None, state: ServiceState | None = None) -> Predictor:
    """Return the model a route names: the champion, or the canary by its version."""
    state = state or service_state()
    predictor = state.served.predictor
    if name != predictor.schema.name:
        raise InvalidInput(f"No model {name!r}: this server serves {predictor.schema.name!r}.", 404)
    if version is None or version == predictor.version:
        return predictor
    if state.canary is not None and version == state.canary.predictor.version:
        return state.canary.predictor
    raise InvalidInput(
        f"No version {version!r} of {name!r}: the served version is {predictor.version!r}.",
        404,
    )


def output_names(predictor: Predictor) -> list[str]:
    """Return every output the model can answer: its answer's fields, then the explanation's
    when it can explain."""
    explained = EXPLANATION_OUTPUTS if can_explain(predictor) else ()
    return [*predictor.schema.answer_fields(), *explained]


def _default_outputs(predictor: Predictor, options: AnswerOptions) -> list[str]:
    """Return the outputs of a request that names none: the answer's fields, and the
    explanation's when it asked for one."""
    return [*predictor.schema.answer_fields(), *(EXPLANATION_OUTPUTS if options.explain else ())]


def _output_type(field: str) -> str:
    return "BYTES" if field in ("height_human_readable", LABEL) else "FP64"


def _output_shape(schema: Schema, field: str) -> list[int]:
    """Return an output's shape in the model metadata: ``[-1]``, ``[-1, k]`` for the
    probabilities of a classifier of k classes, ``[-1, f]`` for the contributions of f
    features."""
    if field == PROBABILITIES:
        return [-1, len(schema.target.classes)]
    return [-1, len(schema.features)] if field == CONTRIBUTIONS else [-1]


def _output_tensor(schema: Schema, field: str, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the output tensor of one answer field over every row's answer."""
    if field in EXPLANATION_OUTPUTS:
        return _explanation_tensor(schema, field, answers)
    if field != PROBABILITIES:
        return {"name": field, "datatype": _output_type(field), "shape": [len(answers)],
                "data": [answer[field] for answer in answers]}  # fmt: skip
    classes = schema.target.classes
    return {
        "name": field,
        "datatype": "FP64",
        "shape": [len(answers), len(classes)],
        "parameters": {"classes": list(classes)},
        # Row-major: the protocol's data is the tensor flattened, its last index fastest.
        "data": [p for answer in answers for p in answer[PROBABILITIES].values()],
    }


def _explanation_tensor(schema: Schema, field: str, answers: list[dict[str, Any]]
                        ) -> dict[str, Any]:  # fmt: skip
    """Return the ``base`` ([n]) or ``contributions`` ([n, f], row-major, features in the
    schema's order) tensor of every row's explanation."""
    explanations = [answer[EXPLANATION_FIELD] for answer in answers]
    if field == BASE:
        return {"name": BASE, "datatype": "FP64", "shape": [len(answers)],
                "data": [explanation[BASE] for explanation in explanations]}  # fmt: skip
    names = schema.feature_names
    return {
        "name": CONTRIBUTIONS,
        "datatype": "FP64",
        "shape": [len(answers), len(names)],
        "parameters": {"features": list(names)},
        "data": [c for explanation in explanations
                 for c in contributions_in_order(explanation, names)],
    }  # fmt: skip


def _answer_options(predictor: Predictor, parameters: dict[str, Any],
                    requested: list[str]) -> AnswerOptions:  # fmt: skip
    """Return the answer options of the request's ``parameters`` and ``outputs``: a binary
    model's ``threshold`` (a regression ignores it, as ``/predict`` ignores the field), and
    ``explain``, a boolean, implied by asking for an explanation's output.

    They are read as ``/predict`` reads its body's fields, so the same values are refused
    with the same messages, a model that cannot explain included.
    """
    explain = parameters.get(EXPLAIN_FIELD, False)
    if not isinstance(explain, bool):
        raise InvalidInput(f'The parameter "{EXPLAIN_FIELD}" must be true or false, got '
                           f"{json_type(explain)}.")  # fmt: skip
    fields: dict[str, Any] = {}
    if THRESHOLD_FIELD in parameters:
        fields[THRESHOLD_FIELD] = parameters[THRESHOLD_FIELD]
    if explain or any(name in EXPLANATION_OUTPUTS for name in requested):
        fields[EXPLAIN_FIELD] = True
    return predictor.read_options(fields, {})


def _columns(predictor: Predictor, inputs: Any) -> dict[str, list]:
    """Return the ``/predict`` batch document held by the request's input tensors."""
    schema = predictor.schema
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(f"\"inputs\" must be a list of tensors, one per feature: "
                            f"{', '.join(schema.feature_names)}.")  # fmt: skip
    columns: dict[str, list] = {}
    for tensor in inputs:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInput('Each input tensor must be an object with a "name".')
        name = tensor["name"]
        try:
            feature = schema.feature(name)
        except KeyError:
            raise InvalidInput(f"Unknown input {name!r}: the inputs are "
                                f"{', '.join(schema.feature_names)}.") from None  # fmt: skip
        if name in columns:
            raise InvalidInput(f"Input {name!r} is given twice.")
        columns[name] = _tensor_data(tensor, isinstance(feature, CategoryFeature))
    missing = [name for name in schema.feature_names if name not in columns]
    if missing:
        raise InvalidInput(f"Missing input tensor(s) {', '.join(missing)}.")
    return columns


def _tensor_data(tensor: dict, is_category: bool) -> list:
    name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
    expected = "BYTES" if is_category else "FP32, FP64, INT32 or INT64"
    if (is_category and datatype != "BYTES") or (not is_category and datatype not in NUMBER_TYPES):
        raise InvalidInput(f"Input {name!r} must have datatype {expected}, got {datatype!r}.")
    if (
        not isinstance(shape, list)
        or len(shape) not in (1, 2)
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InvalidInput(f"Input {name!r} must have shape [n] or [n, 1], got {shape!r}.")
    rows = shape[0]
    if rows < 1:
        raise InvalidInput(f"Input {name!r} has no rows: send at least one.")
    if rows > MAX_BATCH_ROWS:
        raise InvalidInput(
            f"Input {name!r} has {rows} rows; the most one request may carry is "
            f"{MAX_BATCH_ROWS}: split the batch.", status=413,
        )  # fmt: skip
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInput(f'Input {name!r} must carry its values in "data", a list.')
    if data and all(isinstance(row, list) for row in data):  # [[200], [180]] for shape [n, 1]
        if not all(len(row) == 1 for row in data):
            raise InvalidInput(f"Input {name!r}: each row of a [n, 1] tensor holds one value.")
        data = [row[0] for row in data]
    if len(data) != rows:
        raise InvalidInput(f"Input {name!r} has shape {shape!r} but {len(data)} values.")
    return data


def _requested_outputs(predictor: Predictor, outputs: Any) -> list[str] | None:
    """Return the outputs a request names, or None when it names none (then it gets every
    output it asked for)."""
    known = [*predictor.schema.answer_fields(), *EXPLANATION_OUTPUTS]
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise InvalidInput('"outputs" must be a list of objects with a "name".')
    wanted = []
    for output in outputs:
        if output.get("name") not in known:
            raise InvalidInput(f"Unknown output {payload.shorten(output.get('name'))}: the "
                               f"outputs are {', '.join(output_names(predictor))}.")  # fmt: skip
        parameters = output.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidInput(f"The parameters of output {output['name']!r} must be an object.")
        if (parameters or {}).get("binary_data"):
            raise InvalidInput("The binary tensor extension is not supported: ask for JSON.")
        wanted.append(output["name"])
    return wanted
