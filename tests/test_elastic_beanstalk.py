"""The Elastic Beanstalk bundle: Dockerrun.aws.json v1 and .ebextensions agree with the image
and the app, as far as can be checked offline, and `make eb-bundle` zips them at its root.

No validator for either file ships offline: Elastic Beanstalk checks them only on deployment
(the EB CLI zips and uploads them as they are), and there is no published JSON schema for
Dockerrun.aws.json v1. So the rules here are the ones AWS's Elastic Beanstalk guide documents,
and each check is shown to fail on a broken copy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile

import pytest
import yaml
from helpers import ROOT, exposed_port

from cookbook.web.server import ServerSettings

BUNDLE = ROOT / "deploy" / "elastic-beanstalk"
DOCKERRUN = BUNDLE / "Dockerrun.aws.json"
EXTENSIONS = BUNDLE / ".ebextensions"
FARGATE = ROOT / "deploy" / "fargate" / "template.yaml"
DEPLOYING = ROOT / "docs" / "deploying.md"
# The image as the other AWS recipes name it (the Fargate and SageMaker templates' headers).
ECR_PLACEHOLDER = "<account>.dkr.ecr.<region>.amazonaws.com/mlb-height:<tag>"

# Dockerrun.aws.json v1 (single container, the Docker platform): its keys and their members.
DOCKERRUN_V1 = {
    "AWSEBDockerrunVersion": None,
    "Authentication": {"Bucket", "Key"},
    "Image": {"Name", "Update"},
    "Ports": {"ContainerPort", "HostPort"},
    "Volumes": {"HostDirectory", "ContainerDirectory"},
    "Logging": None,
    "Entrypoint": None,
    "Command": None,
}
# The options used here, in the namespaces Elastic Beanstalk documents for them
# ("General options for all environments"), each with every option that namespace has.
EB_OPTIONS = {
    "aws:elasticbeanstalk:application": {"Application Healthcheck URL"},
    "aws:elasticbeanstalk:environment:process:default": {
        "DeregistrationTimeout", "HealthCheckInterval", "HealthCheckPath", "HealthCheckTimeout",
        "HealthyThresholdCount", "MatcherHTTPCode", "Port", "Protocol", "StickinessEnabled",
        "StickinessLBCookieDuration", "StickinessType", "UnhealthyThresholdCount",
    },
}  # fmt: skip
EXTENSION_KEYS = {
    "option_settings", "packages", "groups", "users", "sources", "files", "commands",
    "services", "container_commands", "Resources", "Outputs",
}  # fmt: skip


def dockerrun_problems(document: dict) -> list[str]:
    """Return how *document* breaks the Dockerrun.aws.json v1 rules or disagrees with the image."""
    problems = [f"unknown key {key}" for key in document if key not in DOCKERRUN_V1]
    if document.get("AWSEBDockerrunVersion") != "1":
        problems.append('AWSEBDockerrunVersion is not "1" (2 is for the ECS-managed platform)')
    image = document.get("Image", {})
    problems += [f"unknown key Image.{key}" for key in image if key not in DOCKERRUN_V1["Image"]]
    if not isinstance(image.get("Name"), str) or not image["Name"]:
        problems.append("no Image.Name")
    if image.get("Update") not in ("true", "false"):
        problems.append('Image.Update is not "true" or "false"')
    ports = document.get("Ports", [])
    if len(ports) != 1:
        problems.append("not exactly one port (the Docker platform proxies to the first)")
    for port in ports:
        problems += [f"unknown key Ports.{key}" for key in port if key not in DOCKERRUN_V1["Ports"]]
        container_port = port.get("ContainerPort")
        if not (isinstance(container_port, str) and container_port.isdigit()):
            problems.append(f"ContainerPort {container_port!r} is not a port number as a string")
        elif int(container_port) != exposed_port():
            problems.append(f"ContainerPort {container_port} is not the image's {exposed_port()}")
    return problems


def extension_problems(config: dict) -> list[str]:
    """Return how an .ebextensions config breaks the documented keys, namespaces and options."""
    problems = [f"unknown key {key}" for key in config if key not in EXTENSION_KEYS]
    settings = config.get("option_settings", {})
    if not isinstance(settings, dict):
        return [*problems, "option_settings is not a map of namespaces"]
    for namespace, options in settings.items():
        if namespace not in EB_OPTIONS:
            problems.append(f"namespace {namespace} is not one this check knows")
            continue
        known = EB_OPTIONS[namespace]
        problems += [f"{namespace} has no option {name}" for name in options if name not in known]
        problems += [
            f"{namespace}: {name} is not a string" for name, value in options.items()
            if not isinstance(value, str)
        ]  # fmt: skip
    return problems


def load_extensions() -> dict[str, dict]:
    return {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(EXTENSIONS.glob("*.config"))
    }


def option(name: str, namespace: str) -> str:
    (value,) = [
        config["option_settings"][namespace][name]
        for config in load_extensions().values()
        if name in config.get("option_settings", {}).get(namespace, {})
    ]
    return value


@pytest.fixture(scope="module")
def dockerrun() -> dict:
    return json.loads(DOCKERRUN.read_text(encoding="utf-8"))


# -------------------------------------------------------------- Dockerrun.aws.json


def test_dockerrun_follows_the_v1_rules_and_the_image(dockerrun):
    assert dockerrun_problems(dockerrun) == []
    assert dockerrun["Image"]["Update"] == "true"  # pull the tag again on every deployment
    (port,) = dockerrun["Ports"]
    assert int(port["ContainerPort"]) == exposed_port() == ServerSettings().port == 8080


def test_dockerrun_names_the_image_as_the_other_aws_recipes(dockerrun):
    assert dockerrun["Image"]["Name"] == ECR_PLACEHOLDER
    assert ECR_PLACEHOLDER in FARGATE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "problem"),
    [({"AWSEBDockerrunVersion": 2}, "AWSEBDockerrunVersion"),
     ({"Ports": [{"ContainerPort": "80"}]}, "ContainerPort 80 is not the image's"),
     ({"Ports": [{"ContainerPort": 8080}]}, "ContainerPort 8080 is not a port number"),
     ({"Ports": []}, "not exactly one port"),
     ({"containerDefinitions": []}, "unknown key containerDefinitions"),
     ({"Image": {"Name": "x", "Update": True}}, "Image.Update"),
     ({"Image": {"Update": "true"}}, "no Image.Name")],
    ids=["version-2", "port-80", "port-not-a-string", "no-port", "v2-key", "update-bool",
         "no-name"],
)  # fmt: skip
def test_dockerrun_check_refuses_a_broken_copy(dockerrun, change, problem):
    problems = dockerrun_problems({**dockerrun, **change})
    assert any(found.startswith(problem) for found in problems), problems


# ---------------------------------------------------------------------- .ebextensions


def test_ebextensions_use_documented_namespaces_and_options():
    configs = load_extensions()
    assert configs, "no .ebextensions/*.config"
    for name, config in configs.items():
        assert isinstance(config, dict), name
        assert extension_problems(config) == [], name


@pytest.mark.parametrize(
    ("config", "problem"),
    [({"option_settings": {"aws:elasticbeanstalk:application": {"HealthCheckPath": "/ready"}}},
      "aws:elasticbeanstalk:application has no option HealthCheckPath"),
     ({"option_settings": {"aws:elasticbeanstalk:environment:process:defualt": {}}},
      "namespace aws:elasticbeanstalk:environment:process:defualt"),
     ({"option_setings": {}}, "unknown key option_setings"),
     ({"option_settings": {"aws:elasticbeanstalk:environment:process:default":
                           {"DeregistrationTimeout": 30}}}, "aws:elasticbeanstalk:environment")],
    ids=["option-in-the-wrong-namespace", "misspelt-namespace", "misspelt-key", "not-a-string"],
)  # fmt: skip
def test_ebextensions_check_refuses_a_broken_config(config, problem):
    assert any(found.startswith(problem) for found in extension_problems(config))


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("aws:elasticbeanstalk:application", "Application Healthcheck URL"),
     ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")],
)  # fmt: skip
def test_health_check_asks_readiness_which_answers_200(app, client, namespace, name):
    path = option(name, namespace)
    assert path == "/ready"
    assert any(rule.rule == path and "GET" in rule.methods for rule in app.url_map.iter_rules())
    answer = client.get(path)
    assert answer.status_code == 200 and answer.get_json()["status"] == "ready"


def test_draining_outlasts_the_graceful_timeout():
    process = "aws:elasticbeanstalk:environment:process:default"
    assert option("MatcherHTTPCode", process) == "200"
    assert int(option("DeregistrationTimeout", process)) > ServerSettings().graceful_timeout_seconds


# ----------------------------------------------------------------------- the bundle


def test_make_eb_bundle_zips_both_at_the_root_with_the_image(tmp_path):
    bundle = tmp_path / "out" / "bundle.zip"
    image = "registry.example.com/team/mlb-height:1.2"
    result = subprocess.run(
        ["make", "--no-print-directory", "eb-bundle", f"IMAGE_URI={image}", f"EB_BUNDLE={bundle}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert names == ["Dockerrun.aws.json", *(f".ebextensions/{n}" for n in load_extensions())]
        packed = json.loads(archive.read("Dockerrun.aws.json"))
        for name in load_extensions():
            assert archive.read(f".ebextensions/{name}") == (EXTENSIONS / name).read_bytes()
    assert packed["Image"]["Name"] == image
    assert dockerrun_problems(packed) == []


@pytest.mark.parametrize("image", ["", ECR_PLACEHOLDER])
def test_make_eb_bundle_needs_a_real_image(tmp_path, image):
    bundle = tmp_path / "bundle.zip"
    result = subprocess.run(
        ["make", "--no-print-directory", "eb-bundle", f"IMAGE_URI={image}", f"EB_BUNDLE={bundle}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "IMAGE_URI": ""},
    )  # fmt: skip
    assert result.returncode != 0
    assert re.search(r"Error: (set IMAGE_URI|'.*' is not an image)", result.stderr)
    assert not bundle.exists()


def test_deploying_page_documents_the_bundle():
    text = DEPLOYING.read_text(encoding="utf-8")
    section = text.split("## AWS Elastic Beanstalk\n", 1)[1].split("\n## ", 1)[0]
    for command in ("make eb-bundle IMAGE_URI=", "eb init", "eb create", "eb deploy"):
        assert command in section, command
