"""Continuous training end to end: `utilscli.py ct` on real data sets, `make ct`, and the
retrain workflow's own steps (its scripts, run for real; only GitHub's API is a stand-in)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import CANCER_FEATURES, COMMITTED_VERSION, ROOT, cancer_frame, run_script

from app import create_app
from cookbook.lifecycle.continuous import Outcome

WORKFLOW = ROOT / ".github" / "workflows" / "retrain.yml"
# GitHub's API is out of reach: this `gh` records its arguments and the body file it was given.
GH_STAND_IN = """#!/bin/sh
printf '%s\\n' "$@" > "$GH_CALLS"
for last; do :; done
cat "$last" > "$GH_CALLS.body"
"""


@pytest.fixture
def deployment(tmp_path):
    """A copy of the committed served pair and its registry: what a checkout serves."""
    folder = tmp_path / "deployment"
    folder.mkdir()
    for name in ("model.joblib", "model.json"):
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "models", folder / "models")
    return folder


@pytest.fixture
def datasets(tmp_path, data_file):
    """The original data, heights +0.3 in and +3 in, and heights shuffled between players."""
    frame = pd.read_csv(data_file)
    made = {"same": data_file}
    for name, change in {
        "shift_small": lambda f: f.assign(Height=f["Height"] + 0.3),
        "shift_large": lambda f: f.assign(Height=f["Height"] + 3.0),
        "shuffled": lambda f: f.assign(
            Height=np.random.default_rng(7).permutation(f["Height"].to_numpy())
        ),
    }.items():
        path = tmp_path / f"{name}.csv"
        change(frame).to_csv(path, index=False)
        made[name] = path
    return made


def ct(deployment: Path, data: Path, *extra: str, pr_file: Path | None = None):
    pr_file = pr_file or deployment / "pull-request.md"
    env = {"MODEL_PATH": str(deployment / "model.joblib"), "DATA_PATH": str(ROOT / "htwtmlb.csv")}
    return run_script("utilscli.py", "ct", "--data-url", data.as_uri(), "--pr-file",
                      str(pr_file), *extra, env=env)  # fmt: skip


def served_digest(deployment: Path) -> str:
    digest = hashlib.sha256()
    for name in ("model.joblib", "model.json"):
        digest.update((deployment / name).read_bytes())
    return digest.hexdigest()


def test_the_same_data_is_nothing_to_do(deployment, datasets):
    before = served_digest(deployment)
    result = ct(deployment, datasets["same"])
    assert result.returncode == Outcome.NOTHING_TO_DO.exit_code == 3, result.stderr
    assert "Nothing to do: the data is unchanged" in result.stdout
    assert hashlib.sha256(datasets["same"].read_bytes()).hexdigest() in result.stdout
    assert served_digest(deployment) == before
    assert not (deployment / "pull-request.md").exists()


def test_forcing_the_same_data_retrains_to_the_very_same_model(deployment, datasets):
    # The first forced run serves this machine's training: the committed model itself where
    # OpenBLAS runs the same kernels as where it was trained, else a model one ulp off it.
    first = ct(deployment, datasets["same"], "--force")
    assert first.returncode in (0, 3), first.stderr
    served = json.loads((deployment / "model.json").read_text())["model_version"]
    before = served_digest(deployment)
    result = ct(deployment, datasets["same"], "--force")
    assert result.returncode == 3, result.stderr
    assert f"gives the served model {served} again" in result.stdout
    assert served_digest(deployment) == before


def test_a_small_real_shift_is_promoted_with_its_pull_request(deployment, datasets):
    result = ct(deployment, datasets["shift_small"])
    assert result.returncode == Outcome.PROMOTED.exit_code == 0, result.stderr
    served = served_metadata(deployment)
    new_version = served["model_version"]
    assert new_version != COMMITTED_VERSION
    assert served["data"]["sha256"] == hashlib.sha256(
        datasets["shift_small"].read_bytes()).hexdigest()  # fmt: skip
    assert (deployment / "models" / new_version / "model.joblib").is_file()
    assert new_version in (deployment / "MODEL_CARD.md").read_text()
    title, blank, *body = (deployment / "pull-request.md").read_text().splitlines()
    assert title == f"Retrain: serve model {new_version} (was {COMMITTED_VERSION})"
    assert blank == ""
    text = "\n".join(body)
    assert "| new data, held out | 104 |" in text and "| golden: held-out rows" in text
    assert "WORSE" not in text and "## Drift against the served model" in text
    # The served model's importance beside each feature's drift, in the target's unit.
    assert "| feature | rows | PSI | verdict | KS | KS 5% critical | importance (inches) |" in text
    weight = next(line for line in text.splitlines() if line.startswith("| Weight |"))
    assert float(weight.rstrip(" |").rsplit("|", 1)[1]) > 0, weight
    # The promoted pair is what the service now answers with: heights about 0.3 in taller.
    client = create_app({"MODEL_PATH": str(deployment / "model.joblib"), "TESTING": True}
                        ).test_client()  # fmt: skip
    answer = client.post("/predict", json={"Weight": 200}).get_json()["prediction"]
    assert answer["height_inches"] == pytest.approx(73.6 + 0.3, abs=0.15)


@pytest.mark.parametrize("name", ["shuffled", "shift_large"])
def test_broken_labels_and_a_large_shift_are_refused_and_nothing_served_changes(
    deployment, datasets, name
):
    stale = deployment / "pull-request.md"
    stale.write_text("an old run's pull request\n")
    before = served_digest(deployment)
    result = ct(deployment, datasets[name])
    assert result.returncode == Outcome.REFUSED.exit_code == 4, result.stderr
    assert "Refused: the quality gate refused candidate" in result.stdout
    assert "golden" in result.stdout.splitlines()[-1]  # the golden set is what catches both
    assert served_digest(deployment) == before
    assert not stale.exists()  # never a pull request for a refused run


def test_force_promotes_a_large_shift_on_purpose_and_says_so(deployment, datasets):
    result = ct(deployment, datasets["shift_large"], "--force")
    assert result.returncode == 0, result.stderr
    text = (deployment / "pull-request.md").read_text()
    assert text.splitlines()[0].endswith("(forced)")
    assert "forced past the quality gate" in text and "WORSE" in text


def test_data_that_cannot_be_fetched_is_one_line_and_exit_1(deployment, tmp_path):
    result = ct(deployment, tmp_path / "absent.csv")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "absent.csv" in result.stderr


def test_make_ct_runs_the_same_command(deployment, datasets):
    env = {**os.environ, "MODEL_PATH": str(deployment / "model.joblib"),
           "DATA_PATH": str(ROOT / "htwtmlb.csv")}  # fmt: skip
    result = subprocess.run(
        ["make", "--no-print-directory", "ct", f"DATA_URL={datasets['shift_small'].as_uri()}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Promoted: candidate" in result.stdout
    assert served_metadata(deployment)["model_version"] != COMMITTED_VERSION


# ------------------------------------------------------------------ a served classifier


@pytest.mark.parametrize("family", ["logistic-regression", "hist-gradient-boosting"])
def test_ct_retrains_a_served_classifier_as_one_of_its_family(tmp_path, family):
    deployment = tmp_path / "deployment"
    first, later = tmp_path / "cancer.csv", tmp_path / "cancer-later.csv"
    cancer = cancer_frame()
    cancer.to_csv(first, index=False)
    cancer.assign(mean_texture=cancer["mean_texture"] + 0.05).to_csv(later, index=False)
    trained = run_script("utilscli.py", "retrain", "--task", "classification", "--estimator",
                         family, "--data", str(first), "--target", "diagnosis", "--features",
                         ",".join(CANCER_FEATURES), "--positive-class", "malignant",
                         "--coverage", "0.8", "--model-name",
                         str(deployment / "model.joblib"), env={})  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    before = served_metadata(deployment)["model_version"]

    result = ct(deployment, later)
    assert result.returncode == Outcome.PROMOTED.exit_code, result.stdout + result.stderr
    served = served_metadata(deployment)
    assert served["model_version"] != before
    assert served["hyperparameters"]["estimator"] == family
    target = served["schema"]["target"]
    assert target["task"] == "binary" and target["positive_class"] == "malignant"
    assert served["prediction_set"]["coverage"] == 0.8  # the served model's, kept
    assert "interval" not in served and served["diagnostics"]["rows"] == 57
    if family == "hist-gradient-boosting":
        assert served["serving"] == {"form": "onnx"}
    text = (deployment / "pull-request.md").read_text()
    assert "## Quality gate (log loss may rise by at most 0.05)" in text
    assert "## Prediction set" in text and "for 80% coverage" in text
    for name in ("MODEL_CARD.md", "MODEL_CARD.reliability.svg", "MODEL_CARD.confusion.svg"):
        assert f"/{name}`" in text and (deployment / name).is_file()  # listed and written
    assert served["model_version"] in (deployment / "MODEL_CARD.md").read_text()


# ------------------------------------------------------------------ the workflow


def test_the_workflow_is_weekly_and_on_demand_with_minimal_permissions():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML reads the key `on` as true
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"]  # weekly
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"data_url", "force"}
    assert workflow["permissions"] == {"contents": "read"}
    job = workflow["jobs"]["retrain"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    text = WORKFLOW.read_text()
    assert "secrets." not in text  # GITHUB_TOKEN only
    runs = [step.get("run", "") for step in job["steps"]]
    assert "scripts/ct_step.sh" in runs and "scripts/ct_pull_request.sh" in runs


def run_step(deployment: Path, folder: Path, data_url: str, **extra: str):
    """Run the workflow's training step as GitHub would, its files in *folder*."""
    env = {**os.environ, "MODEL_PATH": str(deployment / "model.joblib"),
           "DATA_PATH": str(ROOT / "htwtmlb.csv"), "DATA_URL_INPUT": data_url,
           "PR_FILE": str(folder / "pr.md"), "CT_LOG": str(folder / "ct.log"),
           "GITHUB_OUTPUT": str(folder / "output"), "GITHUB_STEP_SUMMARY": str(folder / "summary"),
           **extra}  # fmt: skip
    return subprocess.run([str(ROOT / "scripts" / "ct_step.sh")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "force", "outcome"),
    [("same", "", "nothing-to-do"), ("shift_small", "", "promoted"),
     ("shuffled", "", "refused"), ("shift_large", "true", "promoted")],
)  # fmt: skip
def test_the_workflow_step_turns_exit_codes_into_outcomes(deployment, datasets, tmp_path,
                                                          name, force, outcome):  # fmt: skip
    result = run_step(deployment, tmp_path, datasets[name].as_uri(), FORCE_INPUT=force)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "output").read_text() == f"outcome={outcome}\n"
    summary = (tmp_path / "summary").read_text()
    assert summary.startswith(f"## Continuous training: {outcome}\n")
    assert ("## Quality gate" in summary) == (outcome == "promoted")


def test_the_workflow_step_fails_when_ct_fails(deployment, tmp_path):
    result = run_step(deployment, tmp_path, (tmp_path / "absent.csv").as_uri())
    assert result.returncode == 1
    assert (tmp_path / "output").read_text() == "outcome=failed\n"


def test_the_pull_request_step_pushes_a_branch_and_opens_the_pull_request(tmp_path):
    """Real git and a real push (to a local bare remote); `gh` stands in for GitHub's API."""
    origin, checkout, bin_dir = tmp_path / "origin.git", tmp_path / "checkout", tmp_path / "bin"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(checkout)], check=True)
    (checkout / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "ct_pull_request.sh", checkout / "scripts")
    (checkout / "model.json").write_text('{"model_version": "old"}\n')
    for command in (["add", "--all"], ["commit", "--quiet", "-m", "start"],
                    ["remote", "add", "origin", str(origin)],
                    ["push", "--quiet", "origin", "main"]):  # fmt: skip
        subprocess.run([*git, *command], cwd=checkout, check=True)
    (checkout / "model.json").write_text('{"model_version": "new"}\n')  # what ct promoted
    (checkout / "MODEL_CARD.md").write_text("# card\n")
    pr_file = tmp_path / "pull-request.md"
    pr_file.write_text("Retrain: serve model new (was old)\n\nThe body.\n| a | b |\n")
    bin_dir.mkdir()
    calls = tmp_path / "gh-calls"
    (bin_dir / "gh").write_text(GH_STAND_IN)
    (bin_dir / "gh").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PR_FILE": str(pr_file),
           "GH_TOKEN": "unused", "GITHUB_RUN_ID": "42", "GH_CALLS": str(calls)}  # fmt: skip
    result = subprocess.run([str(checkout / "scripts" / "ct_pull_request.sh")], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    branches = subprocess.run(["git", "branch", "--list"], cwd=origin, capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
    branch = next(line.strip() for line in branches.splitlines() if "ct/retrain-" in line)
    assert branch.endswith("-42")
    pushed = subprocess.run(["git", "show", "--stat", "--format=%s", branch], cwd=origin,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert pushed.startswith("Retrain: serve model new (was old)")
    assert "MODEL_CARD.md" in pushed and "model.json" in pushed
    arguments = calls.read_text().splitlines()
    assert arguments[:6] == ["pr", "create", "--base", "main", "--head", branch]
    assert arguments[6:8] == ["--title", "Retrain: serve model new (was old)"]
    assert Path(f"{calls}.body").read_text() == "The body.\n| a | b |\n"


def served_metadata(deployment: Path) -> dict:
    return json.loads((deployment / "model.json").read_text())
