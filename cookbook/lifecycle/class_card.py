"""A classifier's sections of the model card: its classes, scores, pictures and prediction set.

``modelcard`` writes everything a regression and a classifier share (the model, features,
data, golden set and libraries) and asks this module for what differs: how the label is
chosen, the classification metrics, the reliability diagram and confusion matrix drawn from
``model.json``'s ``diagnostics`` (``card_pictures``), and the split-conformal set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cookbook.core.linear import ClassifierForm
from cookbook.core.schema import BINARY, Target
from cookbook.lifecycle.card_parts import (
    coverage_lines,
    linear_terms,
    number,
    rows_words,
    share,
)
from cookbook.lifecycle.card_pictures import CONFUSION, RELIABILITY

COLUMNS = (
    ("Log loss", "log_loss", 4),
    ("Brier", "brier", 4),
    ("Accuracy", "accuracy", 3),
    ("ROC AUC", "roc_auc", 3),
    ("ECE", "ece", 3),
)
FAMILY = "logistic regression"  # a classifier's linear baseline


def classes_text(target: Target) -> str:
    """Return the classes as the card writes them: `no`, `yes`."""
    return ", ".join(f"`{name}`" for name in target.classes)


def negative_class(target: Target) -> str:
    """Return a binary model's other class than its positive one."""
    return target.classes[1 - target.positive_index]


def rule_text(target: Target) -> str:
    """Return how the model picks its label."""
    if target.task == BINARY:
        other = negative_class(target)
        return (
            f"answers `{target.positive_class}` when its probability is at least "
            f"{target.threshold:g}, else `{other}`"
        )
    return "answers the most probable class"


def target_lines(target: Target, features: str) -> list[str]:
    """Return the model section's line on what it predicts and how it picks the label."""
    return [
        f"- Predicts `{target.name}`, one of {classes_text(target)} ({target.task}), from "
        f"{features}: {rule_text(target)}"
    ]


def folded_lines(form: ClassifierForm, target: Target) -> list[str]:
    """Return how the folded classifier computes its probabilities."""
    error = f"(folded from the estimator, max relative error {form.max_relative_error:.1e})"
    if len(form.logits) == 1:  # the log-odds of the second class, as decision_function gives
        return [
            f"- Served as p(`{target.classes[1]}`) = logistic({linear_terms(form.logits[0])}) "
            f"{error}"
        ]
    lines = [f"- Served as the softmax of one logit per class {error}:"]
    lines += [
        f"  - `{name}`: {linear_terms(logit)}"
        for name, logit in zip(target.classes, form.logits, strict=True)
    ]
    return lines


def metric_notes(target: Target) -> list[str]:
    """Return what each metric in the table measures."""
    lines = [
        "",
        "- Log loss (nats) and Brier score judge the probabilities, accuracy the labels; lower "
        "log loss, Brier and ECE are better",
        "- ECE: the rows' mean gap between the answered class's probability and how often it is "
        "right, over 10 equal bins",
    ]
    if target.task == BINARY:
        other = negative_class(target)
        lines.append(
            f"- ROC AUC: how often a `{target.positive_class}` row gets a higher "
            f"probability of `{target.positive_class}` than a `{other}` row (0.5 is chance)"
        )
    return lines


def diagnostics_lines(
    metadata: Mapping[str, Any], target: Target, pictures: Mapping[str, str]
) -> list[str]:
    """Return the pictures' section: links to *pictures* (file names beside the card, by
    ``card_pictures.PICTURES``) and the confusion matrix as a table."""
    stored = metadata.get("diagnostics")
    lines = ["", "## Calibration and errors", ""]
    if not stored:
        return [
            *lines,
            "- No pictures: this model was saved before `model.json` kept its "
            "`diagnostics`; retrain to draw them.",
        ]
    rows = f"{stored['rows']} {rows_words(metadata)}"
    lines += [
        f"Drawn from the {rows} (kept in `model.json` as `diagnostics`).",
        "",
        f"![Reliability diagram on the {rows}: share answered right against the probability "
        f"of the answered class]({pictures[RELIABILITY]})",
        "",
        f"![Confusion matrix on the {rows}]({pictures[CONFUSION]})",
        "",
        f"| true \\ answered | {' | '.join(_cell(name) for name in target.classes)} |",
        "|" + "---|" * (1 + len(target.classes)),
    ]
    lines += [
        f"| {_cell(name)} | {' | '.join(str(count) for count in counts)} |"
        for name, counts in zip(target.classes, stored["confusion"], strict=True)
    ]
    return lines


def _cell(name: str) -> str:
    # A code span shows a class name as it is (no HTML, no emphasis); a bar would end the cell.
    return f"`{name}`".replace("|", "\\|")


def set_lines(metadata: Mapping[str, Any]) -> list[str]:
    """Return the prediction set's section: its rule, calibration and coverage."""
    calibration = metadata.get("prediction_set")
    if not calibration:
        return []
    coverage, quantile = calibration.get("coverage"), calibration.get("quantile")
    floor = None if quantile is None else 1 - quantile
    return [
        "",
        "## Prediction set",
        "",
        f"- Method: {calibration.get('method', 'split-conformal')}; every answer carries a `set`"
        f" of the classes whose probability is at least {number(floor, 4)}, meant to hold the "
        f"true class for {share(coverage)} of cases",
        f"- Threshold: 1 - q, where q is the ceil((n + 1) × {coverage})-th smallest score "
        "(1 - the probability of the true class) of\n"
        f"  n = {calibration.get('calibration_rows', 'n/a')} calibration rows "
        f"({calibration.get('calibration', 'held-out rows')}); mean set size there "
        f"{number(calibration.get('mean_set_size'), 2)} classes",
        *coverage_lines(metadata, calibration, "set"),
        "- A set holds several classes where the model hesitates and none where no class is "
        "likely enough; like any\n  conformal set, it assumes rows like the training data.",
    ]


def limitation_line(metadata: Mapping[str, Any], target: Target) -> str:
    """Return the first limitation: how often it is right, and how well it ranks."""
    held_out = metadata.get("metrics", {}).get("held_out", {})
    auc = f" and ROC AUC {number(held_out.get('roc_auc'), 2)}" if target.task == BINARY else ""
    return (
        f"- Accuracy on {rows_words(metadata)} is about {number(held_out.get('accuracy'), 2)}"
        f"{auc}; its probabilities say how sure to be. Use it for groups, not for one case."
    )
