"""Reading the capture store: the captured rows, and the summaries from the running sums."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from cookbook.lifecycle import capture_format as fmt
from cookbook.lifecycle.capture_database import EXPLANATIONS_TABLE, CaptureDatabase
from cookbook.lifecycle.capture_feedback import SHADOW_ROLE
from cookbook.lifecycle.capture_format import class_prediction
from cookbook.lifecycle.capture_tallies import (
    QUALITY_COLUMNS,
    ROLLOUT_COLUMNS,
    hour_of,
    minute_of,
    quality_report,
    rollout_report,
)
from cookbook.lifecycle.class_tallies import BIN_COLUMNS


class CaptureSummaries(CaptureDatabase):
    """Read captured rows, and /quality's and /rollout's figures."""

    def _batches(self, db: Any, since: float | None
                 ) -> Iterator[tuple[dict, list[list[Any]], dict[int, list[Any]]]]:  # fmt: skip
        """Yield (feature names by version, records, explanations by record position) of
        each batch holding records from *since*, oldest first."""
        # A store made before explanations has no table of them until the service starts on
        # it, and a reader must not create it: its batches then have no explanations. An
        # explanation joins the batch of its id and first_ts only (``capture_database.ddl``).
        if self.has_table(db, EXPLANATIONS_TABLE):
            query = ("SELECT b.feature_names, b.body, e.body FROM capture_batches b"
                     f" LEFT JOIN {EXPLANATIONS_TABLE} e"
                     " ON e.batch_id = b.id AND e.first_ts = b.first_ts")  # fmt: skip
        else:
            query = "SELECT b.feature_names, b.body, NULL FROM capture_batches b"
        params: tuple = ()
        if since is not None:
            query, params = query + " WHERE b.last_ts >= ?", (since,)
        for names, body, explained in db.execute(self.sql(query + " ORDER BY b.id"), params):
            yield orjson.loads(names), fmt.decode(bytes(body)), fmt.decode_explanations(explained)

    def rows(self, since: float | None = None, roles: Sequence[str] | None = None
             ) -> list[dict[str, Any]]:  # fmt: skip
        """Return the captured rows (oldest first), from *since* (epoch seconds) if given,
        of the given *roles* only if given; a row captured twice is the first capture."""
        with self.connect(write=False) as db:
            labels = self._labels(db, since)
            found: dict[tuple, dict[str, Any]] = {}
            for names, records, explanations in self._batches(db, since):
                for at, record in enumerate(records):
                    request_id, index, ts, version, role, inputs, predicted, low, high = (
                        record[: fmt.FIELDS])  # fmt: skip
                    key = (request_id, index, role)
                    wanted = (since is None or ts >= since) and (roles is None or role in roles)
                    if not wanted or key in found:
                        continue
                    label, probabilities = class_prediction(predicted)
                    found[key] = {
                        "request_id": request_id, "row_index": index, "ts": ts,
                        "model_version": version, "role": role,
                        "inputs": dict(zip(names[version], inputs, strict=True)),
                        "prediction": None if probabilities is not None else predicted,
                        "label": label, "probabilities": probabilities,
                        "interval_low": low, "interval_high": high,
                        "explanation": fmt.explanation_of(explanations.get(at), names[version]),
                        "actual": labels.get(key),
                    }  # fmt: skip
        return sorted(found.values(), key=lambda r: (r["ts"], r["request_id"], r["row_index"]))

    def _labels(self, db: Any, since: float | None) -> dict[tuple[str, int, str], Any]:
        """Return the true values (a classifier's: labels) by (request id, row, role), of the
        rows captured from *since*; a store of an earlier build has no ``actual_label``."""
        # Labels carry their record's time: only those of the rows asked for are read.
        query, params = "SELECT * FROM capture_labels", ()
        if since is not None:
            query, params = query + " WHERE ts >= ?", (since,)
        cursor = db.execute(self.sql(query), params)
        names = [column[0] for column in cursor.description]
        at = {name: names.index(name) for name in ("request_id", "row_index", "role", "actual")}
        text = names.index("actual_label") if "actual_label" in names else None
        labels = {}
        for row in cursor:
            actual = row[at["actual"]] if text is None or row[text] is None else row[text]
            labels[(row[at["request_id"]], row[at["row_index"]], row[at["role"]])] = actual
        return labels

    def quality(self, window_seconds: float) -> dict[str, dict[str, Any]]:
        """Return, per model version, the labelled rows' count, MAE, RMSE, bias and the
        share whose true value lay inside the prediction interval (a classifier's log loss,
        Brier score, accuracy, ROC AUC, ECE and set coverage), over the window's minutes
        (the bins of AUC and ECE: its hours), for the roles that answer (a shadow's labels
        are /rollout's)."""
        since = time.time() - window_seconds
        sums = ", ".join(f"SUM({c})" for c in QUALITY_COLUMNS)
        bin_sums = ", ".join(f"SUM({c})" for c in BIN_COLUMNS)
        with self.connect(write=False) as db:
            rows = db.execute(
                self.sql(f"SELECT model_version, role, {sums} FROM capture_quality"
                         " WHERE minute >= ? AND role <> ? GROUP BY model_version, role"),
                (minute_of(since), SHADOW_ROLE),
            ).fetchall()  # fmt: skip
            bins = db.execute(
                self.sql(f"SELECT model_version, kind, bin, {bin_sums} FROM capture_class_bins"
                         " WHERE hour >= ? AND role <> ? GROUP BY model_version, kind, bin"),
                (hour_of(since), SHADOW_ROLE),
            ).fetchall()  # fmt: skip
            models = self.class_models(db)
        return quality_report(rows, bins, models)

    def rollout(self, window_seconds: float, shadow_version: str, tolerance: float,
                classifier: bool = False) -> dict[str, Any]:  # fmt: skip
        """Return how the shadow compared with the champion over the window: its rows'
        differences (the percentile from the window's hours) and, where feedback arrived,
        both models' MAE on the same rows (a *classifier*'s label agreement, and both
        models' log loss and accuracy)."""
        since = time.time() - window_seconds
        sums = ", ".join(f"SUM({c})" for c in ROLLOUT_COLUMNS)
        with self.connect(write=False) as db:
            totals = db.execute(
                self.sql(f"SELECT {sums} FROM capture_rollout"
                         " WHERE minute >= ? AND shadow_version = ?"),
                (minute_of(since), shadow_version),
            ).fetchone()  # fmt: skip
            bins = db.execute(
                self.sql("SELECT bin, SUM(count) FROM capture_rollout_bins"
                         " WHERE hour >= ? AND shadow_version = ? GROUP BY bin"),
                (hour_of(since), shadow_version),
            ).fetchall()  # fmt: skip
        return rollout_report(totals if totals and totals[0] is not None else None,
                              dict(bins), tolerance, classifier)  # fmt: skip
