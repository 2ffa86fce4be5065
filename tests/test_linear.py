"""The folded linear form: one evaluation, the same floats for a row and for columns."""

import math

import numpy as np
import pandas as pd
import pytest

from cookbook.core.errors import ModelError
from cookbook.core.linear import LinearForm
from cookbook.lifecycle.vectorized import evaluate_frame

FORM = LinearForm(
    intercept=12.345678901,
    coefficients={"Weight": 0.1234567, "Age": -0.03},
    offsets={"Position": {"Catcher": 0.7, "Shortstop": -1.1}},
)
NAMES = ("Position", "Weight", "Age")  # schema order need not be the form's order


def test_rows_and_columns_give_the_same_floats():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "Position": rng.choice(["Catcher", "Shortstop"], 500),
            "Weight": rng.uniform(100, 300, 500),
            "Age": rng.uniform(20, 40, 500),
        }
    )
    columns = evaluate_frame(FORM, frame)
    evaluate = FORM.row_evaluator(NAMES)
    rows = [evaluate(row) for row in frame[list(NAMES)].itertuples(index=False)]
    assert columns.tolist() == rows  # bit for bit, not approximately


def test_a_mapping_of_arrays_is_evaluated_like_a_frame():
    columns = {"Position": np.array(["Catcher"], dtype=object), "Weight": np.array([200]),
               "Age": np.array([30.0])}  # fmt: skip
    expected = 12.345678901 + 0.1234567 * 200 - 0.03 * 30 + 0.7
    assert math.isclose(evaluate_frame(FORM, columns)[0], expected, rel_tol=1e-15)


def test_the_frame_is_not_written_to():
    frame = pd.DataFrame({"Weight": [1.0, 2.0]})
    evaluate_frame(LinearForm(1.0, {"Weight": 2.0}, {}), frame)
    assert frame["Weight"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("names", [("Weight", "Age"), ("Position", "Weight", "Age", "Extra")])
def test_a_form_that_does_not_match_the_features_is_refused(names):
    with pytest.raises(ModelError, match="folded form"):
        FORM.row_evaluator(names)
