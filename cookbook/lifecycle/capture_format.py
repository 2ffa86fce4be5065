"""How captured predictions are laid out: batches of JSON lines, found again by time key.

A batch is what one worker answered in one flush interval. Each answered row is one JSON
line, ``[request_id, row_index, ts, model_version, role, [input values], prediction,
answer]``; the feature names are kept once per batch and model version. Storing a batch
is then one row in the database, whatever the traffic: no insert and no index entry per
prediction.

Finding a record again (feedback may come days later) needs no index entry per record.
The service's own request ids begin with 14 hex digits of microseconds
(``cookbook.web.request_log.request_id``): a batch keeps the range of those time keys, so
feedback reads only the few batches whose range holds the id and finds its line with a
substring search. An id of another length (a client's own ``X-Request-ID``, mostly), or
one whose key is far from its batch's time, is listed in the store's key table instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

TIME_KEY_DIGITS = 14
REQUEST_ID_DIGITS = 32
# A time key more than this far before its batch began is not trusted to bound the batch
# (a client may send an id of the service's form): such an id goes in the key table.
KEY_SLACK_SECONDS = 60.0
OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY

# Positions in a record (a decoded line).
REQUEST_ID, ROW_INDEX, TS, MODEL_VERSION, ROLE, INPUTS, PREDICTION, ANSWER = range(8)


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

    def names_json(self) -> str:
        """Return the feature names, by model version, as JSON text."""
        return orjson.dumps(self.feature_names).decode()


def make_batch(records: Sequence[tuple]) -> Batch:
    """Return *records* as one Batch: tuples of (request_id, row_index, ts, model_version,
    role, feature names, input values, prediction, answer), as the requests left them."""
    body = bytearray()
    request_ids: dict[str, None] = {}  # unique, first seen first
    feature_names: dict[str, list[str]] = {}
    first_ts = last_ts = records[0][2]
    for request_id, index, ts, version, role, names, row, value, answer in records:
        body += orjson.dumps((request_id, index, ts, version, role, row, value, answer),
                             option=OPTIONS)  # fmt: skip
        request_ids[request_id] = None
        if version not in feature_names:
            feature_names[version] = list(names)
        if ts < first_ts:
            first_ts = ts
        elif ts > last_ts:
            last_ts = ts
    lowest, highest = time_key(first_ts - KEY_SLACK_SECONDS), time_key(last_ts + 1)
    keys, unkeyed = [], []
    for request_id in request_ids:
        key = key_of(request_id)
        if key is not None and lowest <= key <= highest:
            keys.append(key)
        else:
            unkeyed.append(request_id)
    return Batch(first_ts=first_ts, last_ts=last_ts, records=len(records), body=bytes(body),
                 key_min=min(keys, default=None), key_max=max(keys, default=None),
                 unkeyed_ids=unkeyed, feature_names=feature_names)  # fmt: skip


def decode(body: bytes) -> list[list[Any]]:
    """Return every record of a batch's body, in the order they were answered."""
    if not body:
        return []
    return orjson.loads(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")


def find(body: bytes, request_id: str) -> Iterator[list[Any]]:
    """Yield the records of *request_id* in a batch's body (a search, not a decode)."""
    needle = b'["' + request_id.encode() + b'",'
    start = body.find(needle)
    while start != -1:
        end = body.find(b"\n", start)
        end = len(body) if end == -1 else end
        # A line begins with its request id; the same bytes inside a line are an input.
        if start == 0 or body[start - 1] == 0x0A:
            yield orjson.loads(body[start:end])
        start = body.find(needle, end)
