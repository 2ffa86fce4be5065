"""The deploy recipes agree with the image, `make deploy` tags and pushes, nothing is hard-coded."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, arguments_of, exposed_port

README = ROOT / "README.md"
# The recipes moved out of the README into their own page, which the README links to.
DEPLOYING = ROOT / "docs" / "deploying.md"

# Files that describe where and how the service is deployed.
DELIVERY_FILES = [
    "Dockerfile", ".dockerignore", "Makefile", "README.md", "docs/deploying.md",
    "apprunner.yaml", "cookbook/web/lambda_handler.py", "scripts/docker_smoke.sh", ".ci/run",
    "scripts/eb_bundle.py",
    # Every recipe: templates, manifests, Dockerrun.aws.json and .ebextensions/*.config.
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "deploy").rglob("*")) if p.is_file()),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / ".github").rglob("*.yml"))),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests" / "events").glob("*.json"))),
]  # fmt: skip

HARD_CODED = {
    "an AWS account id": r"(?<![\d.])\d{12}(?![\d.])",
    "an AWS region": r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?"
    r"(?:east|west|north|south|central|northeast|southeast|northwest|southwest)-\d\b",
    "a Google Cloud region": r"\b(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-"
    r"(?:east|west|central|north|south|northeast|southeast|northwest|southwest)\d+\b",
    "an Azure region": r"\b(?:east|west|central|north|south|northcentral|southcentral|westcentral)"
    r"(?:us|europe|asia)\d?\b",
}


@pytest.mark.parametrize("what", sorted(HARD_CODED))
def test_no_account_id_or_region_is_hard_coded(what):
    pattern = re.compile(HARD_CODED[what], re.IGNORECASE)
    found = [
        f"{name}: {match.group(0)}"
        for name in DELIVERY_FILES
        for match in pattern.finditer((ROOT / name).read_text(encoding="utf-8"))
    ]
    assert found == [], f"{what} in {found}"


@pytest.mark.parametrize(
    "sample", ["us-east-1", "123456789012", "europe-west1", "westeurope", "eastus2"]
)
def test_the_hard_coding_check_can_fail(sample):
    assert any(re.search(p, f"x {sample} y", re.IGNORECASE) for p in HARD_CODED.values())


def test_apprunner_runs_the_containers_command_on_its_port():
    config = yaml.safe_load((ROOT / "apprunner.yaml").read_text())
    run = config["run"]
    (cmd,) = arguments_of("CMD")
    assert run["command"].split() == json.loads(cmd)
    assert run["network"] == {"port": exposed_port(), "env": "PORT"}
    install = "pip3 install --no-cache-dir -r requirements.txt"
    assert config["build"]["commands"]["build"] == run["pre-run"] == [install]
    assert config["runtime"] == "python" + run["runtime-version"].replace(".", "")
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert run["runtime-version"] in ci["jobs"]["test"]["strategy"]["matrix"]["python-version"]


def fake_docker(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Return an environment whose `docker` records its arguments (no registry is reachable)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "docker-calls"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    docker.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_make_deploy_builds_tags_and_pushes(tmp_path):
    env, calls = fake_docker(tmp_path)
    result = make("deploy", "REGISTRY=registry.example.com/team", "IMAGE=mlb-height:1.2", env=env)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "build --tag mlb-height:1.2 .",
        "tag mlb-height:1.2 registry.example.com/team/mlb-height:1.2",
        "push registry.example.com/team/mlb-height:1.2",
    ]


def test_make_deploy_without_registry_fails_before_building(tmp_path):
    env, calls = fake_docker(tmp_path)
    result = make("deploy", "REGISTRY=", env=env)
    assert result.returncode != 0
    assert "Error: set REGISTRY" in result.stderr
    assert not calls.exists(), "nothing was built or pushed"


def test_docker_build_passes_base_image_only_when_set(tmp_path):
    env, calls = fake_docker(tmp_path)
    assert make("docker-build", "BASE_IMAGE=local/python:3.11", env=env).returncode == 0
    assert make("docker-build", env=env).returncode == 0
    assert calls.read_text().splitlines() == [
        "build --build-arg BASE_IMAGE=local/python:3.11 --tag mlb-height:latest .",
        "build --tag mlb-height:latest .",
    ]


def test_docker_run_binds_loopback_8080(tmp_path):
    env, calls = fake_docker(tmp_path)
    assert make("docker-run", env=env).returncode == 0
    assert calls.read_text().splitlines()[-1] == (
        "run --rm --publish 127.0.0.1:8080:8080 mlb-height:latest"
    )


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=str)
def test_every_relative_link_of_the_docs_leads_to_a_file(page):
    targets = re.findall(r"\]\((?!https?:|mailto:|#)([^)#\s]+)", page.read_text(encoding="utf-8"))
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == [], f"{page.name} links to missing {missing}"


@pytest.mark.parametrize(
    "recipe",
    [*sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").iterdir() if p.is_dir()),
     "apprunner.yaml", "Dockerfile"],
)  # fmt: skip
def test_deploying_page_documents_every_recipe(recipe):
    assert recipe in DEPLOYING.read_text(encoding="utf-8")


def test_deploying_page_reports_a_measured_image_size():
    text = DEPLOYING.read_text()
    assert re.search(r"image size[^\n]*\b\d+ MB", text, re.IGNORECASE)


def test_deploying_page_commands_use_the_images_port_and_real_health_routes(client):
    text = DEPLOYING.read_text()
    ports = re.findall(r'--port (\d+)|WEBSITES_PORT=(\d+)|\\"Port\\": \\"(\d+)', text)
    assert len(ports) >= 4, ports
    assert {int(next(filter(None, groups))) for groups in ports} == {exposed_port()}
    health_paths = re.findall(r'Path=(/\w+)|"healthCheckPath": "(/\w+)"', text)
    assert len(health_paths) == 2
    for groups in health_paths:
        assert client.get(next(filter(None, groups))).status_code == 200
