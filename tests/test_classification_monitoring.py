"""Classifiers monitored and rolled out: capture, feedback and /quality, a shadow and a canary,
drift of the answered classes, evaluate, and a capture store of the previous build.

breast_cancer (binary, "malignant" the positive class) and iris (multiclass), each served as
a folded logistic regression and as a tree model from ONNX. The store's running figures are
compared with ``class_scoring.score_classes`` on the same labelled rows: log loss, Brier
score, accuracy, ECE and set coverage to rounding; ROC AUC within the bound the binned
tallies report beside it (half the share of positive-negative pairs that share one of 100
probability bins), and within 0.01 on these rows.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import (
    CANCER_FEATURES,
    IRIS_FEATURES,
    metric,
    retrain_classifier,
    wait_for_rows,
)

from app import create_app
from cookbook.cli.capture_export import captured_csv
from cookbook.cli.rollout import candidate_of, status_lines
from cookbook.core.classes import label_index
from cookbook.core.psi import expected_class_counts, psi_from_counts
from cookbook.lifecycle import evaluation
from cookbook.lifecycle.artifacts import load_estimator, load_predictor
from cookbook.lifecycle.capture_database import TABLES
from cookbook.lifecycle.capture_feedback import Feedback
from cookbook.lifecycle.capture_reader import open_reader
from cookbook.lifecycle.capture_writing import Record
from cookbook.lifecycle.class_scoring import label_indices, predicted_class_counts, score_classes
from cookbook.lifecycle.class_tallies import auc_bin, binned_roc_auc
from cookbook.lifecycle.classifying import LOGISTIC, estimator_outputs
from cookbook.lifecycle.conformal import set_coverage
from cookbook.lifecycle.model_spec import ModelSpec
from cookbook.lifecycle.training import held_out_rows
from cookbook.lifecycle.vectorized import predict_frame
from utilscli import cli

# name -> (data set, target, features, task, family): conftest's classifiers.
MODELS = {
    "binary-logistic": ("cancer", "diagnosis", CANCER_FEATURES, "binary", LOGISTIC),
    "binary-trees": ("cancer", "diagnosis", CANCER_FEATURES, "binary", "hist-gradient-boosting"),
    "multiclass-logistic": ("iris", "species", IRIS_FEATURES, "multiclass", LOGISTIC),
    "multiclass-trees": ("iris", "species", IRIS_FEATURES, "multiclass", "random-forest"),
}
AUC_TOLERANCE = 0.01


@pytest.fixture
def data(classification_data) -> dict[str, Path]:
    return classification_data


@pytest.fixture
def trained(classifier):
    """Return ``train(name)``: the model of ``MODELS[name]``, trained once per run."""
    return lambda name: classifier(*MODELS[name][3:])


def serve(model_file: Path, capture_url: str, **config):
    app = create_app({"MODEL_PATH": str(model_file), "TESTING": True,
                      "CAPTURE_ENV": {"CAPTURE_URL": capture_url}, **config})  # fmt: skip
    return app.test_client()


def rows_of(data: dict[str, Path], name: str, count: int, seed: int = 2) -> pd.DataFrame:
    frame = pd.read_csv(data[MODELS[name][0]])
    return frame.sample(min(count, len(frame)), random_state=seed)


def batch_of(frame: pd.DataFrame, features: list[str]) -> dict[str, list]:
    return {name: frame[name].tolist() for name in features}


def probabilities_of(answers: list[dict]) -> list[list[float]]:
    return [list(answer["probabilities"].values()) for answer in answers]


def label_all(client, request_id: str, labels: list[str]):
    return client.post("/feedback", json=[{"request_id": request_id, "index": i, "actual": label}
                                          for i, label in enumerate(labels)])  # fmt: skip


# ------------------------------------------------------------- capture and quality


@pytest.mark.parametrize("name", list(MODELS))
def test_quality_equals_score_classes_on_the_labelled_rows(trained, data, store, name):
    model_file = trained(name)
    predictor = load_predictor(model_file)
    target = predictor.schema.target
    _, target_name, features, _, _ = MODELS[name]
    client = serve(model_file, store.url)
    frame = rows_of(data, name, 150)
    answer = client.post("/predict", json=batch_of(frame, features),
                         headers={"X-Request-ID": "q1"})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    answers = answer.get_json()["predictions"]
    captured = {row["row_index"]: row for row in wait_for_rows(store, len(frame))}
    assert len(captured) == len(frame)
    for index, sent in enumerate(answers):  # the label and probabilities that were answered
        assert captured[index]["label"] == sent["label"]
        assert captured[index]["probabilities"] == list(sent["probabilities"].values())
        assert captured[index]["prediction"] is None

    truth = frame[target_name].tolist()
    joined = label_all(client, "q1", truth)
    assert joined.status_code == 200 and len(joined.get_json()["joined"]) == len(frame)
    report = client.get("/quality").get_json()["versions"][predictor.version]
    probabilities = probabilities_of(answers)
    expected = score_classes(target, truth, probabilities)
    assert report["labelled"] == expected["rows"] == len(frame)
    for key in ("log_loss", "brier", "accuracy", "ece"):
        assert report[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key
    quantile = predictor.prediction_set.quantile
    assert report["set_coverage"] == pytest.approx(
        set_coverage(np.array(probabilities), label_indices(target, truth), quantile))  # fmt: skip
    if target.task == "binary":
        error = abs(report["roc_auc"] - expected["roc_auc"])
        assert error <= report["roc_auc_max_error"] + 1e-12 and error <= AUC_TOLERANCE
    else:
        assert report["roc_auc"] is None
    actual = {row["row_index"]: row["actual"] for row in store.rows()}
    assert [actual[i] for i in range(len(frame))] == truth
    scraped = client.get("/metrics").get_data(as_text=True)
    version = predictor.version
    assert f'model_quality_log_loss{{version="{version}"}} {report["log_loss"]!r}' in scraped
    assert f'model_set_coverage{{version="{version}"}}' in scraped
    assert "model_quality_mae" not in scraped  # a regression's gauges stay out


def test_accuracy_counts_the_label_that_was_answered(trained, data, tmp_path):
    model_file = trained("binary-logistic")
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    client = serve(model_file, url)
    frame = rows_of(data, "binary-logistic", 200)
    row = frame[frame["diagnosis"] == "malignant"].iloc[0]
    body = {name: float(row[name]) for name in CANCER_FEATURES}
    answer = client.post("/predict?threshold=0.999999999", json=body,
                         headers={"X-Request-ID": "t1"}).get_json()["prediction"]  # fmt: skip
    assert answer["label"] == "benign"  # the threshold answered benign
    wait_for_rows(open_reader(url), 1)
    joined = client.post("/feedback", json={"request_id": "t1", "actual": "malignant"})
    assert joined.status_code == 200
    report = client.get("/quality").get_json()["versions"][load_predictor(model_file).version]
    assert report["labelled"] == 1 and report["accuracy"] == 0.0


@pytest.mark.parametrize(
    ("actual", "words"),
    [
        ("sick", '"actual" \'sick\' is not a class of this model: its classes are "benign", '
                 '"malignant"'),
        (1, '"actual" must be the true label, one of the classes "benign", "malignant" (as '
            "text), got 1"),
        (0.5, "got 0.5"),
        (True, "got a boolean"),
        (None, "got null"),
        (["malignant"], "got a list"),
    ],
)  # fmt: skip
def test_a_classifiers_feedback_is_one_of_its_classes(trained, tmp_path, actual, words):
    client = serve(trained("binary-logistic"), f"sqlite:///{tmp_path}/c.sqlite3")
    response = client.post("/feedback", json={"request_id": "p1", "actual": actual})
    assert response.status_code == 400
    assert words in response.get_json()["error"]


def test_a_label_for_a_regression_is_refused(trained_model, tmp_path):
    client = serve(trained_model, f"sqlite:///{tmp_path}/c.sqlite3")
    response = client.post("/feedback", json={"request_id": "p1", "actual": "tall"})
    assert response.status_code == 400
    assert "\"actual\" must be a number, got 'tall'" in response.get_json()["error"]


def test_the_export_writes_labels_and_probabilities_that_evaluate_scores(trained, data, tmp_path):
    model_file = trained("multiclass-logistic")
    predictor = load_predictor(model_file)
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    client = serve(model_file, url)
    frame = rows_of(data, "multiclass-logistic", 60)
    answers = client.post("/predict", json=batch_of(frame, IRIS_FEATURES),
                          headers={"X-Request-ID": "e1"}).get_json()["predictions"]  # fmt: skip
    store = open_reader(url)
    wait_for_rows(store, len(frame))
    truth = frame["species"].tolist()
    assert label_all(client, "e1", truth[:40]).status_code == 200  # the rest stay unlabelled
    text, count = captured_csv(store, predictor.schema, None)
    exported = tmp_path / "captured.csv"
    exported.write_text(text)
    table = pd.read_csv(exported).sort_values("request_id", kind="stable")
    assert count == len(frame)
    assert list(table.columns[-5:]) == ["label", "p_setosa", "p_versicolor", "p_virginica",
                                        "species"]  # fmt: skip
    assert sorted(table["label"]) == sorted(a["label"] for a in answers)
    assert table["species"].notna().sum() == 40
    report = evaluation.evaluate(model_file, exported)
    quality = client.get("/quality").get_json()["versions"][predictor.version]
    assert report["overall"]["rows"] == quality["labelled"] == 40
    assert report["overall"]["log_loss"] == pytest.approx(quality["log_loss"], rel=1e-9)


# ---------------------------------------------------- a store of the previous build


def previous_ddl(store) -> list[str]:
    """The capture tables as the build before classifier monitoring created them."""
    real, blob = store.float_type, store.blob_type
    return [
        f"""CREATE TABLE capture_batches (
            id {store.id_type}, first_ts {real} NOT NULL, last_ts {real} NOT NULL,
            records INTEGER NOT NULL, key_min TEXT, key_max TEXT,
            feature_names TEXT NOT NULL, body {blob} NOT NULL)""",
        """CREATE TABLE capture_keys (
            request_id TEXT NOT NULL, batch_id BIGINT NOT NULL,
            PRIMARY KEY (request_id, batch_id))""",
        f"""CREATE TABLE capture_labels (
            request_id TEXT NOT NULL, row_index INTEGER NOT NULL, role TEXT NOT NULL,
            model_version TEXT NOT NULL, ts {real} NOT NULL, prediction {real} NOT NULL,
            interval_low {real}, interval_high {real}, actual {real} NOT NULL,
            actual_ts {real} NOT NULL, PRIMARY KEY (request_id, row_index, role))""",
        f"""CREATE TABLE capture_quality (
            minute BIGINT NOT NULL, model_version TEXT NOT NULL, role TEXT NOT NULL,
            labelled BIGINT NOT NULL, abs_error {real} NOT NULL,
            squared_error {real} NOT NULL, error {real} NOT NULL,
            with_interval BIGINT NOT NULL, inside BIGINT NOT NULL,
            PRIMARY KEY (minute, model_version, role))""",
        f"""CREATE TABLE capture_rollout (
            minute BIGINT NOT NULL, shadow_version TEXT NOT NULL, scored BIGINT NOT NULL,
            abs_difference {real} NOT NULL, beyond BIGINT NOT NULL,
            labelled BIGINT NOT NULL, champion_abs_error {real} NOT NULL,
            shadow_abs_error {real} NOT NULL, PRIMARY KEY (minute, shadow_version))""",
        """CREATE TABLE capture_rollout_bins (
            hour BIGINT NOT NULL, shadow_version TEXT NOT NULL, bin INTEGER NOT NULL,
            count BIGINT NOT NULL, PRIMARY KEY (hour, shadow_version, bin))""",
    ]


def test_a_store_of_the_previous_build_reads_and_is_brought_up_to_date(trained, data, store):
    model_file = trained("binary-logistic")
    predictor = load_predictor(model_file)
    with store.connect() as db:
        for table in TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in previous_ddl(store):
            db.execute(statement)
    row = rows_of(data, "binary-logistic", 1).iloc[0]
    inputs = {name: float(row[name]) for name in CANCER_FEATURES}
    probabilities = list(predictor.predict_row(tuple(inputs.values())))
    now = time.time()
    # What the previous build wrote: a regression's labelled record, and a classifier's
    # record holding its probabilities alone.
    store.write([
        Record("old-value", 0, now - 2, "regression1", "champion", {"Weight": 200.0}, 73.0,
               70.0, 76.0),
        Record("old-class", 0, now - 2, predictor.version, "champion", inputs, probabilities,
               None, None),
    ])  # fmt: skip
    with store.connect() as db:
        db.execute(store.sql("INSERT INTO capture_labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                   ("old-value", 0, "champion", "regression1", now - 2, 73.0, 70.0, 76.0, 74.0,
                    now - 1))  # fmt: skip
    readers = [store] + ([open_reader(store.url)] if store.url.startswith("sqlite") else [])
    for reader in readers:  # read as it is, before any migration
        rows = {row["request_id"]: row for row in reader.rows()}
        assert (rows["old-value"]["prediction"], rows["old-value"]["actual"]) == (73.0, 74.0)
        assert rows["old-class"]["probabilities"] == probabilities
        assert rows["old-class"]["label"] is None and rows["old-class"]["actual"] is None

    # The service starts on it: the tables are brought up to date and it labels both kinds.
    client = serve(model_file, store.url)
    with store.connect() as db:
        assert "actual_label" in store.columns(db, "capture_labels")
        assert "inside_set" in store.columns(db, "capture_quality")
    truth = str(row["diagnosis"])
    assert client.post("/feedback", json={"request_id": "old-class",
                                          "actual": truth}).status_code == 200  # fmt: skip
    answered = predictor.schema.target.classes[label_index(predictor.schema.target,
                                                           probabilities, None)]  # fmt: skip
    report = client.get("/quality").get_json()["versions"][predictor.version]
    assert report["labelled"] == 1 and report["accuracy"] == float(answered == truth)
    assert {row["request_id"]: row["actual"] for row in store.rows()} == {
        "old-value": 74.0, "old-class": truth}  # fmt: skip
    assert store.add_feedback([Feedback("old-value", 0, 75.0)])["already"] == ["old-value"]
    store.write([Record("new-value", 0, time.time(), "regression1", "champion",
                        {"Weight": 180.0}, 71.0, 68.0, 74.0)])  # fmt: skip
    assert store.add_feedback([Feedback("new-value", 0, 72.0)])["joined"] == ["new-value"]
    assert store.quality(3600)["regression1"]["mae"] == pytest.approx(1.0)
    # A true value of the other kind is refused, and nothing is stored for it.
    store.write([Record("later", 0, time.time(), "regression1", "champion", {"Weight": 190.0},
                        72.0, 69.0, 75.0)])  # fmt: skip
    assert store.add_feedback([Feedback("later", 0, "malignant")])["mismatched"] == ["later"]
    assert store.add_feedback([Feedback("later", 0, 73.0)])["joined"] == ["later"]


# ------------------------------------------------------------------ shadow and canary


def test_a_classifier_shadow_reports_label_agreement_and_probability_differences(
    trained, data, tmp_path
):
    champion_file, shadow_file = trained("binary-logistic"), trained("binary-trees")
    champion, shadow = load_predictor(champion_file), load_predictor(shadow_file)
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    client = serve(champion_file, url, SHADOW_MODEL_PATH=str(shadow_file), ROLLOUT_TOLERANCE=0.05)
    frame = rows_of(data, "binary-logistic", 80, seed=5)
    answer = client.post("/predict", json=batch_of(frame, CANCER_FEATURES),
                         headers={"X-Request-ID": "s1"})  # fmt: skip
    assert answer.headers["X-Model-Version"] == champion.version
    captured = wait_for_rows(open_reader(url), 2 * len(frame), seconds=3.0)
    assert sorted({(r["role"], r["model_version"]) for r in captured}) == [
        ("champion", champion.version), ("shadow", shadow.version)]  # fmt: skip
    truth = frame["diagnosis"].tolist()
    assert label_all(client, "s1", truth).status_code == 200
    report = client.get("/rollout").get_json()
    figures = report["shadow"]

    rows = [tuple(r) for r in frame[CANCER_FEATURES].itertuples(index=False)]
    ours, theirs = champion.predict_rows(rows), shadow.predict_rows(rows)
    target = champion.schema.target
    positive = target.positive_index
    differences = [abs(t[positive] - o[positive]) for o, t in zip(ours, theirs, strict=True)]
    agreed = [label_index(target, o, None) == label_index(target, t, None)
              for o, t in zip(ours, theirs, strict=True)]  # fmt: skip
    assert figures["n"] == figures["labelled"] == len(frame)
    assert figures["mean_abs_difference"] == pytest.approx(np.mean(differences), abs=1e-12)
    assert figures["share_beyond_tolerance"] == pytest.approx(np.mean(np.array(differences) > 0.05))
    assert figures["label_agreement"] == pytest.approx(np.mean(agreed))
    for who, values in (("champion", ours), ("shadow", theirs)):
        expected = score_classes(target, truth, values)
        assert figures[f"{who}_log_loss"] == pytest.approx(expected["log_loss"], rel=1e-9)
        assert figures[f"{who}_accuracy"] == pytest.approx(expected["accuracy"])
    assert "champion_mae" not in figures
    assert metric(client, "model_shadow_abs_difference_count") == len(frame)
    # Quality keeps to what was answered; the status names what a classifier is judged on.
    assert list(client.get("/quality").get_json()["versions"]) == [champion.version]
    lines = "\n".join(status_lines(report))
    assert "same label: " in lines and "log loss champion" in lines
    version, why = candidate_of(report, len(frame), 1.0)
    backed = figures["shadow_log_loss"] <= figures["champion_log_loss"] * 2
    assert (version == shadow.version) is backed and "log loss" in why, why


def test_a_shadow_of_other_classes_is_refused(trained, data, tmp_path):
    relabelled = tmp_path / "relabelled.csv"
    frame = pd.read_csv(data["cancer"])
    frame["diagnosis"] = frame["diagnosis"].map({"malignant": "M", "benign": "B"})
    frame.to_csv(relabelled, index=False)
    other = tmp_path / "other" / "model.joblib"
    retrain_classifier(relabelled, other, "--target", "diagnosis", "--features",
                       ",".join(CANCER_FEATURES))  # fmt: skip
    client = serve(trained("binary-logistic"), f"sqlite:///{tmp_path}/c.sqlite3",
                   SHADOW_MODEL_PATH=str(other))  # fmt: skip
    refused = client.get("/rollout").get_json()["shadow_refused"]
    assert ("predicts the binary classes B, M; the champion predicts the binary classes "
            "benign, malignant") in refused  # fmt: skip


def test_a_classifier_canary_is_judged_on_log_loss(trained, data, tmp_path):
    champion_file, canary_file = trained("multiclass-logistic"), trained("multiclass-trees")
    champion, canary = load_predictor(champion_file), load_predictor(canary_file)
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    client = serve(champion_file, url, CANARY_MODEL_PATH=str(canary_file), CANARY_FRACTION=0.5)
    frame = rows_of(data, "multiclass-logistic", 150, seed=7)
    answered: dict[str, tuple[list, list]] = {champion.version: ([], []), canary.version: ([], [])}
    for i, (_, row) in enumerate(frame.iterrows()):
        headers = {"X-Request-ID": f"c{i}", "X-Canary-Key": f"user-{i}"}
        response = client.post("/predict", json={n: row[n] for n in IRIS_FEATURES},
                               headers=headers)  # fmt: skip
        probabilities, labels = answered[response.headers["X-Model-Version"]]
        probabilities.append(list(response.get_json()["prediction"]["probabilities"].values()))
        labels.append(row["species"])
    assert all(len(labels) > 20 for _, labels in answered.values())
    wait_for_rows(open_reader(url), len(frame))
    truth = frame["species"].tolist()
    feedback = [{"request_id": f"c{i}", "actual": label} for i, label in enumerate(truth)]
    assert client.post("/feedback", json=feedback).status_code == 200
    report = client.get("/rollout").get_json()
    target = champion.schema.target
    log_loss = {}
    for who, version in (("champion", champion.version), ("canary", canary.version)):
        probabilities, labels = answered[version]
        expected = score_classes(target, labels, probabilities)
        quality = report[who]["quality"]
        assert quality["labelled"] == len(labels)
        assert quality["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-9)
        assert quality["accuracy"] == pytest.approx(expected["accuracy"])
        log_loss[who] = expected["log_loss"]
    for tolerance in (0.0, 0.5, 1.0):
        version, why = candidate_of(report, 20, tolerance)
        backed = log_loss["canary"] <= log_loss["champion"] * (1 + tolerance)
        assert (version == canary.version) is backed and "log loss" in why, why
    assert "log loss" in "\n".join(status_lines(report))


# ------------------------------------------------------------------------- drift


def expected_counts(predictor) -> list[float]:
    """The classes the model answered for its held-out rows, in its class order."""
    return expected_class_counts(predictor.metadata, predictor.schema.target.classes)


def test_drift_expects_the_classes_answered_on_the_held_out_rows(trained, data):
    model_file = trained("multiclass-trees")
    predictor = load_predictor(model_file)
    held_out = held_out_rows(data["iris"], ModelSpec.of_schema(predictor.schema))
    probabilities = estimator_outputs(load_estimator(model_file), held_out, predictor.schema)
    answered = predicted_class_counts(predictor.schema.target, probabilities)
    assert expected_counts(predictor) == [answered[c] for c in predictor.schema.target.classes]
    assert sum(expected_counts(predictor)) == predictor.metadata["data"]["rows_test"]
    assert expected_class_counts({}, ["a", "b"]) is None  # a model without diagnostics


def test_online_drift_compares_the_answered_classes(trained, data):
    model_file = trained("binary-logistic")
    predictor = load_predictor(model_file)
    target = predictor.schema.target
    expected = expected_counts(predictor)
    client = create_app({"MODEL_PATH": str(model_file), "TESTING": True,
                         "CAPTURE_ENV": {"CAPTURE_FRACTION": "0"}}).test_client()  # fmt: skip
    held_out = held_out_rows(data["cancer"], ModelSpec.of_schema(predictor.schema))
    client.post("/predict", json=batch_of(held_out, CANCER_FEATURES))
    report = client.get("/drift").get_json()
    classes = report["predicted_classes"]
    assert classes["target"] == "diagnosis"
    assert classes["bins"] == {"window_counts": expected, "categories": list(target.classes)}
    assert classes["psi"] == 0.0 and classes["verdict"] == "ok"
    # Only malignant tumours now: the answers shift, whatever each input does.
    frame = pd.read_csv(data["cancer"])
    malignant = frame[frame["diagnosis"] == "malignant"].head(150)
    answers = client.post("/predict", json=batch_of(malignant, CANCER_FEATURES)).get_json()
    window = list(expected)
    for answer in answers["predictions"]:
        window[target.classes.index(answer["label"])] += 1
    shifted = client.get("/drift").get_json()
    psi = psi_from_counts(expected, window)
    assert shifted["predicted_classes"]["psi"] == round(psi, 6)
    assert shifted["predicted_classes"]["verdict"] == "alert" and shifted["verdict"] == "alert"
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'model_predicted_class_drift_psi{target="diagnosis"}' in scraped


def test_offline_drift_compares_the_answered_classes(trained, data, tmp_path):
    model_file = trained("binary-logistic")  # folded: its answers are its estimator's
    predictor = load_predictor(model_file)
    held_out = held_out_rows(data["cancer"], ModelSpec.of_schema(predictor.schema))
    same, malignant = tmp_path / "held_out.csv", tmp_path / "malignant.csv"
    held_out.to_csv(same, index=False)
    frame = pd.read_csv(data["cancer"])
    frame[frame["diagnosis"] == "malignant"].to_csv(malignant, index=False)
    env = {"MODEL_PATH": str(model_file)}
    result = CliRunner().invoke(cli, ["drift", "--data", str(same), "--json"], env=env)
    classes = json.loads(result.output)["predicted_classes"]
    assert classes["psi"] == 0.0 and classes["rows"] == len(held_out)
    assert [b["class"] for b in classes["bins"]] == ["benign", "malignant"]
    shifted = CliRunner().invoke(cli, ["drift", "--data", str(malignant)], env=env)
    assert shifted.exit_code == 2, shifted.output
    assert "diagnosis as the model answers it" in shifted.output
    assert "Verdict: alert" in shifted.output
    report = json.loads(CliRunner().invoke(cli, ["drift", "--data", str(malignant), "--json"],
                                           env=env).output)  # fmt: skip
    assert report["predicted_classes"]["verdict"] == "alert"
    assert report["predicted_classes"]["bins"][1]["actual_share"] > 0.8


# ---------------------------------------------------------------------- evaluate


def test_evaluate_scores_a_classifier_with_its_metrics(trained, data, tmp_path):
    model_file = trained("binary-trees")
    predictor = load_predictor(model_file)
    env = {"MODEL_PATH": str(model_file)}
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(data["cancer"]), "--json"],
                                env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    overall = json.loads(result.output)["overall"]
    frame = pd.read_csv(data["cancer"])
    truth = frame["diagnosis"].tolist()
    probabilities = predict_frame(predictor, frame)
    expected = score_classes(predictor.schema.target, truth, probabilities)
    for key in ("log_loss", "brier", "accuracy", "roc_auc", "ece", "rows"):
        assert overall[key] == pytest.approx(expected[key], rel=1e-12), key
    assert overall["set_coverage"] == pytest.approx(set_coverage(
        probabilities, label_indices(predictor.schema.target, truth),
        predictor.prediction_set.quantile))  # fmt: skip
    table = CliRunner().invoke(cli, ["evaluate", "--data", str(data["cancer"])], env=env)
    for header in ("log loss", "ROC AUC", "set coverage"):
        assert header in table.output
    # Per value of a categorical column, each group scored alike.
    frame["size"] = np.where(frame["mean_radius"] > 14, "large", "small")
    grouped_file = tmp_path / "grouped.csv"
    frame.to_csv(grouped_file, index=False)
    grouped = evaluation.evaluate(model_file, grouped_file, group_by="size")
    assert sorted(grouped["by_group"]) == ["large", "small"]
    assert sum(g["rows"] for g in grouped["by_group"].values()) == len(frame)
    # A label the model does not know is one line, not a traceback.
    frame.loc[0, "diagnosis"] = "unsure"
    unknown = tmp_path / "unknown.csv"
    frame.to_csv(unknown, index=False)
    refused = CliRunner().invoke(cli, ["evaluate", "--data", str(unknown)], env=env)
    assert refused.exit_code == 1
    assert "['unsure'] are not among the classes ['benign', 'malignant']" in refused.output
    assert len(refused.output.strip().splitlines()) == 1


# ------------------------------------------------------------------- the binned AUC


@pytest.mark.parametrize("separation", [0.0, 0.5, 1.5, 4.0])
def test_the_binned_auc_is_within_its_bound_of_the_exact_one(separation):
    from sklearn.metrics import roc_auc_score

    rng = random.Random(11)
    logits = [(rng.random() < 0.4, rng.gauss(0, 1)) for _ in range(3000)]
    truth = [positive for positive, _ in logits]
    scores = [1 / (1 + np.exp(-(noise + (separation if positive else -separation))))
              for positive, noise in logits]  # fmt: skip
    bins: dict[int, list[int]] = {}
    for positive, score in zip(truth, scores, strict=True):
        counts = bins.setdefault(auc_bin(score), [0, 0])
        counts[0 if positive else 1] += 1
    auc, bound = binned_roc_auc({b: (p, n) for b, (p, n) in bins.items()})
    exact = roc_auc_score(truth, scores)
    assert abs(auc - exact) <= bound
    assert bound <= 0.01  # a few thousandths here; the error itself is smaller still
    assert binned_roc_auc({3: (5, 0)}) == (None, None)
