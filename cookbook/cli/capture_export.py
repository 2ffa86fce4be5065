"""``utilscli.py capture export``: captured rows as a CSV the drift and evaluate commands read.

Columns: ``request_id``, ``time`` (ISO 8601, UTC), ``model_version``, ``role``, the model's
features (named as in training), the answer's fields (written from the captured prediction
as the service wrote them), ``interval_low``/``interval_high``,
and the target (e.g. ``Height``): the true value where feedback arrived, empty otherwise,
so ``evaluate --data`` scores exactly the labelled rows. A classifier's answer is its
``label`` and one probability column per class, ``p_<class>`` as batch scoring writes them
(``Schema.table_fields``; no interval), and its target column holds the true labels.

When any exported row was answered with its explanation (``"explain": true``), three more
kinds of column follow the target: ``explanation_base``, ``explanation_prediction`` (the
unrounded value explained; a classifier's: the logit of the class it answered) and one
``contribution_<feature>`` per feature, plain numbers a data frame reads as floats
(``frame.filter(like="contribution_")``), so ``base + Σ contributions = prediction`` per
row; they are empty on the rows answered without one. An export with no explained row has
exactly the columns it had before explanations.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re

from cookbook.core.answers import answer_writer
from cookbook.core.classes import label_index
from cookbook.core.explained import BASE, CONTRIBUTIONS, EXPLAINED_VALUE
from cookbook.core.schema import Schema
from cookbook.lifecycle.capture_store import CaptureStore

# The roles whose answers were sent; a shadow's rows are scored only (see GET /rollout).
ANSWERING_ROLES = ("champion", "canary")
AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """Return the epoch seconds *text* names (an age like ``24h`` or an ISO date-time)."""
    if text is None:
        return None
    now = _dt.datetime.now(_dt.UTC).timestamp() if now is None else now
    match = AGE.match(text.strip())
    if match:
        return now - float(match.group(1)) * SECONDS[match.group(2)]
    try:
        moment = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an age (30m, 24h, 7d) nor an ISO date-time."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.timestamp()


def captured_csv(store: CaptureStore, schema: Schema, since: float | None) -> tuple[str, int]:
    """Return the CSV text of the captured rows and how many there are."""
    target = schema.target
    fields = list(schema.table_fields())  # a classifier's label and p_<class> columns
    if not target.is_classification:
        fields += ["interval_low", "interval_high"]
    rows = store.rows(since, roles=ANSWERING_ROLES)
    explained = any(row["explanation"] is not None for row in rows)
    header = ["request_id", "time", "model_version", "role", *schema.feature_names, *fields,
              target.name, *(explanation_header(schema) if explained else ())]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    answer_cells = _class_cells(schema) if target.is_classification else _value_cells(schema)
    for row in rows:
        moment = _dt.datetime.fromtimestamp(row["ts"], _dt.UTC).isoformat(timespec="milliseconds")
        writer.writerow([
            row["request_id"], moment, row["model_version"], row["role"],
            *(row["inputs"].get(name, "") for name in schema.feature_names),
            *answer_cells(row), _blank(row["actual"]),
            *(_explanation_cells(schema, row["explanation"]) if explained else ()),
        ])  # fmt: skip
    return buffer.getvalue(), len(rows)


def explanation_header(schema: Schema) -> list[str]:
    """Return the explanation's columns: its base, the value explained, and one
    ``contribution_<feature>`` per feature in the schema's order."""
    return ["explanation_base", "explanation_prediction",
            *(f"contribution_{name}" for name in schema.feature_names)]  # fmt: skip


def _explanation_cells(schema: Schema, explanation: dict | None) -> list:
    """Return a row's explanation cells (empty for a row answered without one)."""
    if explanation is None:
        return [""] * (2 + len(schema.feature_names))
    contributions = explanation[CONTRIBUTIONS]
    return [explanation[BASE], explanation[EXPLAINED_VALUE],
            *(_blank(contributions.get(name)) for name in schema.feature_names)]  # fmt: skip


def _value_cells(schema: Schema):
    """Return the writer of a regression's answer cells: its fields and its interval."""
    fields = schema.answer_fields()
    write_answer = answer_writer(schema)

    def cells(row: dict) -> list:
        answer = write_answer(row["prediction"])
        return [*(answer.get(field, "") for field in fields), _blank(row["interval_low"]),
                _blank(row["interval_high"])]  # fmt: skip

    return cells


def _class_cells(schema: Schema):
    """Return the writer of a classifier's answer cells: its label and probabilities (a row
    captured without its label gets the one the model answers at its own threshold)."""
    target = schema.target

    def cells(row: dict) -> list:
        probabilities = row["probabilities"]
        if probabilities is None:  # a number: another task's row, never this model's
            return [""] * (1 + len(target.classes))
        label = row["label"] or target.classes[label_index(target, probabilities, None)]
        return [label, *probabilities]

    return cells


def _blank(value: float | None) -> object:
    return "" if value is None else value
