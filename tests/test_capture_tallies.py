"""Running tallies give the figures a pass over every record would, from sums alone."""

from __future__ import annotations

import math
import random
import time

import pytest

from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_tallies import (
    BIN_RATIO,
    RolloutTally,
    bin_of,
    bin_value,
    percentile,
)
from cookbook.lifecycle.capture_writing import Record


@pytest.mark.parametrize("difference", [0.0, 1e-12, 1e-6, 0.0123, 0.5, 1.0, 3.7, 250.0, 1e9])
def test_a_bin_stands_for_its_values_within_half_a_bin(difference):
    value = bin_value(bin_of(difference))
    if difference < 1e-9:
        assert value == 0.0
    else:
        assert abs(value - difference) / difference <= math.sqrt(BIN_RATIO) - 1


def test_the_percentile_of_binned_differences_is_within_five_percent_of_the_exact_one():
    rng = random.Random(7)
    differences = [abs(rng.gauss(0, 1.5)) for _ in range(5000)]
    tally = RolloutTally()
    tally.add_scores(time.time(), "v2", differences, tolerance=1.0)
    bins = {b: n for (_, _, b), n in tally.bins.items()}
    exact = sorted(differences)[math.ceil(0.95 * len(differences)) - 1]
    assert percentile(bins, 0.95) == pytest.approx(exact, rel=0.05)
    assert percentile({}, 0.95) is None


def test_the_stores_figures_equal_a_pass_over_the_records(store):
    rng = random.Random(3)
    now = time.time()
    records, pairs, feedback = [], [], []
    for i in range(300):
        ts = now - rng.uniform(0, 3000)  # across many minutes
        champion, shadow = rng.uniform(65, 80), rng.uniform(65, 80)
        records.append(Record(f"r{i}", 0, ts, "v1", "champion", {"Weight": 200.0}, champion,
                              champion - 3, champion + 3))  # fmt: skip
        records.append(Record(f"r{i}", 0, ts, "v2", "shadow", {"Weight": 200.0}, shadow,
                              shadow - 3, shadow + 3))  # fmt: skip
        pairs.append((champion, shadow))
        if i % 3 == 0:
            feedback.append(Feedback(f"r{i}", 0, rng.uniform(65, 80)))
    store.write(records)
    tally = RolloutTally()
    for champion, shadow in zip(records[::2], records[1::2], strict=True):
        tally.add_scores(champion.ts, "v2", [abs(shadow.prediction - champion.prediction)], 2.0)
    store.add_rollout(tally)
    store.add_feedback(feedback)

    actual = {item.request_id: item.actual for item in feedback}
    labelled = [(i, c, s) for i, (c, s) in enumerate(pairs) if f"r{i}" in actual]
    errors = [c - actual[f"r{i}"] for i, c, _ in labelled]
    quality = store.quality(3600)["v1"]
    assert quality["labelled"] == len(errors)
    assert quality["mae"] == pytest.approx(sum(map(abs, errors)) / len(errors))
    assert quality["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)))
    assert quality["bias"] == pytest.approx(sum(errors) / len(errors))
    assert quality["interval_coverage"] == pytest.approx(
        sum(abs(e) <= 3 for e in errors) / len(errors))  # fmt: skip

    differences = [abs(s - c) for c, s in pairs]
    rollout = store.rollout(3600, "v2", tolerance=2.0)
    assert rollout["n"] == len(pairs)
    assert rollout["mean_abs_difference"] == pytest.approx(sum(differences) / len(pairs))
    assert rollout["share_beyond_tolerance"] == pytest.approx(
        sum(d > 2.0 for d in differences) / len(pairs))  # fmt: skip
    exact_p95 = sorted(differences)[math.ceil(0.95 * len(differences)) - 1]
    assert rollout["p95_abs_difference"] == pytest.approx(exact_p95, rel=0.05)
    assert rollout["labelled"] == len(labelled)
    assert rollout["champion_mae"] == pytest.approx(
        sum(abs(c - actual[f"r{i}"]) for i, c, _ in labelled) / len(labelled))  # fmt: skip
    assert rollout["shadow_mae"] == pytest.approx(
        sum(abs(s - actual[f"r{i}"]) for i, _, s in labelled) / len(labelled))  # fmt: skip
    # A narrower window keeps only its own minutes.
    assert store.quality(60).get("v1", {"labelled": 0})["labelled"] < len(errors)
