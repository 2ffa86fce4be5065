"""Each answer format has one writer: a value and a column of values are written alike."""

import numpy as np
import pytest

from cookbook.core.answers import answer_writer, half_up, height_answer
from cookbook.core.schema import NumberFeature, Schema, Target

HEIGHTS = [71.5, 71.49, 71.95, 71.94999, 73.65, 0.04, 70.0, 83.5]


def test_a_column_of_heights_is_written_as_each_height_is():
    columns = height_answer(np.array(HEIGHTS))
    assert columns["height_inches"].tolist() == [height_answer(h)["height_inches"] for h in HEIGHTS]
    assert list(columns["height_human_readable"]) == [
        height_answer(h)["height_human_readable"] for h in HEIGHTS
    ]


@pytest.mark.parametrize(
    ("inches", "text"),
    [(71.5, "6 foot, 0 inches"), (71.49, "5 foot, 11 inches"), (71.9, "6 foot, 0 inches")],
)
def test_a_height_is_rounded_once_then_split(inches, text):
    assert height_answer(inches)["height_human_readable"] == text
    assert height_answer(np.array([inches]))["height_human_readable"] == [text]


def test_half_up_rounds_numbers_and_arrays_alike():
    values = [0.5, 1.5, 2.5, -0.5, 2.449999, 2.45]
    assert half_up(np.array(values), 10).tolist() == [half_up(v, 10) for v in values]
    assert [half_up(v) for v in (0.5, 1.5, 2.5)] == [1, 2, 3]  # halves up, not to even


def test_a_value_answer_writes_a_value_and_a_column_alike():
    feature = NumberFeature("Height", (60.0, 80.0), {"edges": [60, 80], "counts": [1]})
    schema = Schema("m", (feature,), Target("Weight"), answer_format="value", answer_digits=2)
    write = answer_writer(schema)
    values = [180.125, 180.135, 199.994999, -3.005]
    column = write(np.array(values))["Weight"].tolist()
    assert column == [write(v)["Weight"] for v in values]
    assert write(180.125) == {"Weight": 180.13}
