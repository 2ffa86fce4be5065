"""How captured predictions are laid out: batches of JSON records, found again by time key.

A batch is what one worker answered in one flush interval, stored as one JSON array of
records, ``[request_id, row_index, ts, model_version, role, [input values], prediction,
interval_low, interval_high]``; the feature names are kept once per batch and model version.
A classifier's prediction is its answered label and its probabilities, in the order of its
classes, ``["malignant", [0.02, 0.98]]`` (the label is null when the request asked for the
probabilities only), and it has no interval; the facts of its model (classes, threshold,
prediction set) are kept once per model version, beside the batches. Storing a batch is then
one row in the database, whatever the traffic: no insert and no index entry per prediction.
A record holds facts only: the answer's other fields (the rounded height, its words) follow
from the prediction and the model's schema, so they are written when read (``capture
export``), not encoded and stored for every prediction.

A row answered with its explanation (the request asked ``"explain": true``) keeps its nine
fields too: the explanations are stored beside the batch, never in its body, as one JSON array
per batch that holds explained rows, ``[[position, [base, prediction, [contributions]]], ...]``
(the position of the record in the body; the contributions in the order of the batch's
feature names for its model version), in their own table (``capture_explanations``, written in
the batch's transaction). A batch without explained rows has none, so explaining costs nothing
to the requests that do not ask for it. Every body keeps the layout the builds from before
explanations read: rolled back to one of them, the service still exports and labels every
batch, and never looks at the explanations' table; retention deletes a batch's explanations
with it (``capture_writing``).

Finding a record again (feedback may come days later) needs no index entry per record.
The service's own request ids begin with 14 hex digits of microseconds
(``cookbook.web.request_log.request_id``): a batch keeps the range of those time keys, so
feedback reads only the few batches whose range holds the id and finds its record with a
substring search. An id of another length (a client's own ``X-Request-ID``, mostly), or
one whose key is far from its batch's time, is listed in the store's key table instead.

Batches written by the previous build (JSON lines, the whole answer in place of the two
interval bounds) are still read: ``decode`` and ``find`` return their records in this
layout; so are a classifier's records of the first build that served classifiers (the
probabilities alone: ``class_prediction`` reads both).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from cookbook.core.explained import BASE, CONTRIBUTIONS, EXPLAINED_VALUE, contributions_in_order

TIME_KEY_DIGITS = 14
REQUEST_ID_DIGITS = 32
# A time key more than this far before its batch began is not trusted to bound the batch
# (a client may send an id of the service's form): such an id goes in the key table.
KEY_SLACK_SECONDS = 60.0

# Positions in a record. A request queues an explained row with its explanation as one more
# item, at EXPLANATION: ``make_batch`` moves it to the batch's explanations, out of the body.
FIELDS = 9
(REQUEST_ID, ROW_INDEX, TS, MODEL_VERSION, ROLE, INPUTS, PREDICTION, INTERVAL_LOW,
 INTERVAL_HIGH, EXPLANATION) = range(FIELDS + 1)  # fmt: skip


def time_key(ts: float) -> str:
    """Return the time key of the epoch seconds *ts* (what a request id made then starts with)."""
    return f"{int(ts * 1_000_000):0{TIME_KEY_DIGITS}x}"


def key_of(request_id: str) -> str | None:
    """Return *request_id*'s time key when it has the length of the service's ids, else None.

    Keys are compared as text, so an id of that length but not of the service's making is
    still found by its key: either its key lies inside its batch's bounds, which then hold
    it, or it is listed in the key table.
    """
    return request_id[:TIME_KEY_DIGITS] if len(request_id) == REQUEST_ID_DIGITS else None


@dataclass(frozen=True)
class Batch:
    """Records ready to store: their lines, the range of their time keys, the rest of ids."""

    first_ts: float
    last_ts: float
    records: int
    body: bytes
    key_min: str | None
    key_max: str | None
    unkeyed_ids: list[str]  # request ids the key range does not cover
    feature_names: dict[str, list[str]]  # model version -> its feature names
    # A classifier's model version -> its facts (``class_tallies.ClassModel.to_json``).
    models: dict[str, str] = field(default_factory=dict)
    # The explained records' explanations by position (``encode_explanations``), or None
    # when no record of the batch was explained.
    explanations: bytes | None = None

    def names_json(self) -> str:
        """Return the feature names, by model version, as JSON text."""
        return orjson.dumps(self.feature_names).decode()


def make_batch(records: Sequence[Sequence[Any]], feature_names: Mapping[str, Sequence[str]],
               models: Mapping[str, str] | None = None) -> Batch:  # fmt: skip
    """Return *records* (in this module's layout, as the requests queued them: an explained
    row with its explanation after the nine fields) as one Batch; *feature_names* gives each
    of their model versions' feature names, *models* the facts of those that are classifiers.

    The writer thread does this for every flush, holding the interpreter while it runs:
    one encoding call for the whole batch, and C-level passes over the records (a batch
    without explained rows costs one more, its records' lengths).
    """
    explanations = None
    if max(map(len, records)) > FIELDS:
        explanations = encode_explanations(
            {at: r[EXPLANATION] for at, r in enumerate(records) if len(r) > FIELDS}
        )
        records = [r[:FIELDS] for r in records]
    body = orjson.dumps(records, option=orjson.OPT_SERIALIZE_NUMPY)
    times = list(map(itemgetter(TS), records))
    first_ts, last_ts = min(times), max(times)
    ids = list(map(itemgetter(REQUEST_ID), records))
    lowest, highest = time_key(first_ts - KEY_SLACK_SECONDS), time_key(last_ts + 1)
    key_min, key_max, unkeyed = _key_range(ids, lowest, highest)
    versions = sorted(set(map(itemgetter(MODEL_VERSION), records)))
    models = models or {}
    return Batch(first_ts=first_ts, last_ts=last_ts, records=len(records), body=body,
                 key_min=key_min, key_max=key_max, unkeyed_ids=unkeyed,
                 feature_names={v: list(feature_names[v]) for v in versions},
                 models={v: models[v] for v in versions if v in models},
                 explanations=explanations)  # fmt: skip


def _key_range(ids: list[str], lowest: str, highest: str
               ) -> tuple[str | None, str | None, list[str]]:  # fmt: skip
    """Return the range of *ids*' time keys that lies within [*lowest*, *highest*], and the
    ids (unique, in order) that range does not cover."""
    # Ids of one length compare as their keys do, so the range is two C passes over ids
    # that are all the service's own and all near the batch's time (nearly every batch).
    if set(map(len, ids)) == {REQUEST_ID_DIGITS}:
        key_min, key_max = min(ids)[:TIME_KEY_DIGITS], max(ids)[:TIME_KEY_DIGITS]
        if lowest <= key_min and key_max <= highest:
            return key_min, key_max, []
    unique = dict.fromkeys(ids)
    inside = [i for i in unique if lowest <= (key_of(i) or "") <= highest]
    keys = [i[:TIME_KEY_DIGITS] for i in inside]
    covered = set(inside)
    unkeyed = [i for i in unique if i not in covered]
    return min(keys, default=None), max(keys, default=None), unkeyed


def class_prediction(prediction: Any) -> tuple[str | None, list[float] | None]:
    """Return a captured prediction's answered label and probabilities, or (None, None)
    for a regression's number.

    A classifier's record of the first build that served classifiers holds the
    probabilities alone: its label is None (the model's own threshold answers it).
    """
    if not isinstance(prediction, list):
        return None, None
    if len(prediction) == 2 and isinstance(prediction[1], list):
        return prediction[0], prediction[1]
    return None, prediction


def compact_explanation(explanation: Mapping[str, Any],
                        feature_names: Sequence[str]) -> list[Any]:  # fmt: skip
    """Return an answer's explanation as a batch's explanations keep it: ``[base, prediction,
    [contributions in feature_names' order]]``."""
    return [explanation[BASE], explanation[EXPLAINED_VALUE],
            contributions_in_order(explanation, feature_names)]  # fmt: skip


def encode_explanations(explanations: Mapping[int, Sequence[Any]]) -> bytes:
    """Return a batch's explanations (compact, by the position of their record) as stored:
    ``[[position, [base, prediction, [contributions]]], ...]``."""
    return orjson.dumps([[at, compact] for at, compact in explanations.items()],
                        option=orjson.OPT_SERIALIZE_NUMPY)  # fmt: skip


def decode_explanations(body: bytes | memoryview | None) -> dict[int, list[Any]]:
    """Return a batch's stored explanations by the position of their record (none: {})."""
    return {at: compact for at, compact in orjson.loads(body)} if body else {}


def explanation_of(compact: Sequence[Any] | None,
                   feature_names: Sequence[str]) -> dict[str, Any] | None:  # fmt: skip
    """Return a stored explanation as the answer had it (contributions by feature name), or
    None for a row answered without one (*compact* is None)."""
    if compact is None:
        return None
    base, value, contributions = compact
    return {BASE: base, CONTRIBUTIONS: dict(zip(feature_names, contributions, strict=True)),
            EXPLAINED_VALUE: value}  # fmt: skip


def decode(body: bytes) -> list[list[Any]]:
    """Return every record of a batch's body, in the order they were answered."""
    if body.startswith(b"[["):
        return orjson.loads(body)
    if not body:
        return []
    # The previous build's JSON lines.
    return [_in_layout(record) for record in orjson.loads(
        b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")]  # fmt: skip


def _in_layout(record: list[Any]) -> list[Any]:
    """Return *record* in this layout (a record of the previous build ends with its answer)."""
    if len(record) >= FIELDS:
        return record
    interval = record[PREDICTION + 1].get("interval") or {}
    return [*record[: PREDICTION + 1], interval.get("low"), interval.get("high")]


_DECODER = json.JSONDecoder()


def find(body: bytes, request_id: str) -> Iterator[list[Any]]:
    """Yield the records of *request_id* in a batch's body (a search, not a decode)."""
    text = body.decode()
    needle = "[" + orjson.dumps(request_id).decode() + ","
    start = text.find(needle)
    while start != -1:
        # A record begins the body, follows the record before it ("],"), or begins a line
        # (the previous build's layout); the same text after '",' is an input list.
        boundary = start <= 1 or text[start - 1] == "\n" or text[start - 2 : start] == "],"
        end = start + len(needle)
        if boundary:
            try:
                record, end = _DECODER.raw_decode(text, start)
            except ValueError:  # not a record after all
                record = None
            if isinstance(record, list) and record[REQUEST_ID] == request_id:
                yield _in_layout(record)
        start = text.find(needle, end)
