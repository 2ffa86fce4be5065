"""The capture batches: records, time keys, and finding a record again without an index."""

from __future__ import annotations

import time

import orjson
import pytest

from cookbook.lifecycle import capture_format as fmt
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_format import Batch, make_batch
from cookbook.lifecycle.capture_writing import Record


def service_id(ts: float) -> str:
    """An id of the form the service makes (request_log.request_id), made at *ts*."""
    return fmt.time_key(ts) + "0123456789abcdef01"


def queued(request_id: str, ts: float, row=(200.0,), index: int = 0, value: float = 73.0
           ) -> tuple:  # fmt: skip
    """One answered row as a request queues it for the writer."""
    return (request_id, index, ts, "v1", "champion", row, value, value - 3, value + 3)


def test_a_batch_keeps_the_range_of_its_time_keys_and_lists_the_other_ids():
    now = time.time()
    ids = [service_id(now - 0.4), service_id(now - 0.1), "client-chose-this",
           service_id(now - 86_400), service_id(now - 0.1)]  # fmt: skip
    batch = make_batch([queued(request_id, now - 0.3) for request_id in ids], {"v1": ["Weight"]})
    assert (batch.key_min, batch.key_max) == (ids[0][:14], ids[1][:14])
    # A client's own id, and one of the service's form whose time is a day off, are listed.
    assert batch.unkeyed_ids == ["client-chose-this", ids[3]]
    assert batch.records == 5 and len(fmt.decode(batch.body)) == 5
    assert batch.feature_names == {"v1": ["Weight"]}


def test_find_matches_record_starts_only():
    names = {"v1": ("team", "Weight")}
    # A categorical input equal to another request's id must not be taken for that request,
    # and brackets and quotes inside an input do not end a record.
    body = make_batch([queued("r1", 1.0, ("r2", 200.0)),
                       queued("r2", 1.0, ('x],["r2",', 180.0), 0, 71.0),
                       queued("r2", 1.0, ("y", 190.0), 1, 72.0)], names).body  # fmt: skip
    found = list(fmt.find(body, "r2"))
    assert [(r[fmt.REQUEST_ID], r[fmt.ROW_INDEX], r[fmt.INPUTS][0]) for r in found] == [
        ("r2", 0, 'x],["r2",'), ("r2", 1, "y")]  # fmt: skip
    assert found[0][fmt.INTERVAL_LOW :] == [68.0, 74.0]
    assert list(fmt.find(body, "r")) == []
    assert fmt.decode(body)[1] == found[0]


def previous_build_body(records: list[tuple]) -> bytes:
    """A batch body as the previous build wrote it: JSON lines ending with the answer."""
    return b"".join(orjson.dumps([*r[: fmt.PREDICTION + 1], {
        "height_inches": r[fmt.PREDICTION],
        "interval": {"low": r[fmt.INTERVAL_LOW], "high": r[fmt.INTERVAL_HIGH]}}]) + b"\n"
        for r in records)  # fmt: skip


def test_batches_of_the_previous_build_are_read_in_this_layout():
    records = [queued("r1", 1.0), queued("r2", 1.0, value=70.0), queued("r2", 1.0, index=1)]
    body = previous_build_body(records)
    expected = orjson.loads(orjson.dumps(records))  # as read back: lists
    assert fmt.decode(body) == expected
    assert list(fmt.find(body, "r1")) == expected[:1]
    assert list(fmt.find(body, "r2")) == expected[1:]


def record(request_id: str, ts: float, predicted: float = 73.0, role: str = "champion",
           index: int = 0) -> Record:  # fmt: skip
    return Record(request_id, index, ts, "v1", role, {"Weight": 200.0}, predicted,
                  predicted - 3, predicted + 3)  # fmt: skip


def test_a_store_reads_and_labels_the_previous_builds_batches(store):
    now = time.time()
    old = [queued(service_id(now - 1), now - 1, value=72.0)]
    with store.connect() as db:
        store.insert_batch(
            db,
            Batch(
                now - 1,
                now - 1,
                1,
                previous_build_body(old),
                old[0][0][:14],
                old[0][0][:14],
                [],
                {"v1": ["Weight"]},
            ),
        )
    store.write([record(service_id(now - 0.5), now - 0.5)])
    assert [(r["prediction"], r["interval_low"]) for r in store.rows()] == [
        (72.0, 69.0),
        (73.0, 70.0),
    ]
    assert store.add_feedback([Feedback(old[0][0], 0, 70.0)])["joined"] == [old[0][0]]
    assert store.quality(3600)["v1"]["interval_coverage"] == 1.0


def test_feedback_finds_service_ids_among_many_batches(store):
    now = time.time()
    wanted = []
    for b in range(200):  # 200 half-second batches of 5 requests
        ts = now - 100 + b / 2
        ids = [service_id(ts + i / 100) for i in range(5)]
        store.write([record(request_id, ts + 0.01) for request_id in ids])
        if b % 40 == 7:
            wanted.append(ids[3])
    outcome = store.add_feedback([Feedback(request_id, 0, 70.0) for request_id in wanted])
    assert outcome == {"joined": wanted, "unknown": [], "already": [], "mismatched": []}
    never = service_id(now - 50.123)  # inside the batches' time, never captured
    assert store.add_feedback([Feedback(never, 0, 70.0)])["unknown"] == [never]
    assert store.quality(3600)["v1"]["labelled"] == len(wanted)


def test_a_shadow_record_in_a_later_batch_is_labelled_too(store):
    now = time.time()
    request_id = service_id(now - 1)
    store.write([record(request_id, now - 0.99)])
    store.write([record(service_id(now - 0.5), now - 0.5)])
    store.write([record(request_id, now - 0.2, predicted=74.5, role="shadow")])
    assert store.add_feedback([Feedback(request_id, 0, 74.0)])["joined"] == [request_id]
    rollout = store.rollout(3600, "v1", tolerance=1.0)
    assert (rollout["labelled"], rollout["champion_mae"], rollout["shadow_mae"]) == (1, 1.0, 0.5)
    assert list(store.quality(3600)) == ["v1"]  # the shadow's label is /rollout's, not quality's


def test_a_request_id_captured_twice_is_its_first_capture(store):
    now = time.time()
    store.write([record("same", now - 2, predicted=70.0)])
    store.write([record("same", now - 1, predicted=71.0)])
    assert [r["prediction"] for r in store.rows()] == [70.0]
    store.add_feedback([Feedback("same", 0, 72.0)])
    assert store.quality(3600)["v1"]["mae"] == pytest.approx(2.0)


def test_retention_takes_the_key_table_and_the_labels_with_the_batches(store):
    now = time.time()
    for i in range(6):
        store.write([record(f"client-{i}", now - 60 + i)])
    store.add_feedback([Feedback(f"client-{i}", 0, 72.0) for i in range(6)])
    assert store.trim(max_rows=2) == 4
    with store.connect() as db:
        keys = sorted(row[0] for row in db.execute("SELECT request_id FROM capture_keys"))
        labels = sorted(row[0] for row in db.execute("SELECT request_id FROM capture_labels"))
    assert keys == labels == ["client-4", "client-5"]
    outcome = store.add_feedback([Feedback("client-0", 0, 72.0)])
    assert outcome["unknown"] == ["client-0"]  # trimmed: unknown or expired
