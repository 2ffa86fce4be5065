"""The Kubernetes manifests validate against the real schemas and agree with the image and app."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT, exposed_port, service_uid

from cookbook.web.server import ServerSettings

MANIFESTS = ROOT / "deploy" / "kubernetes"
RESOURCES = ["deployment.yaml", "service.yaml", "hpa.yaml"]


def validate(*paths) -> subprocess.CompletedProcess:
    """Run `kubernetes-validate --strict` (schemas ship in the wheel: no network)."""
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pod() -> dict:
    return load("deployment.yaml")["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (only,) = pod["spec"]["containers"]
    return only


def test_every_manifest_passes_strict_schema_validation():
    result = validate(*(MANIFESTS / name for name in RESOURCES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed ") == len(RESOURCES), result.stdout
    kustomization = load("kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(RESOURCES)


def test_strict_validation_rejects_a_misspelt_field(tmp_path):
    # Proves the check above can fail: strict mode refuses properties the schema lacks.
    text = (MANIFESTS / "deployment.yaml").read_text().replace("periodSeconds", "periodSecs", 1)
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text)
    result = validate(broken)
    assert result.returncode != 0
    assert "periodSecs" in result.stdout + result.stderr


def test_ports_agree_with_the_dockerfile(container):
    (port,) = container["ports"]
    assert port["containerPort"] == exposed_port() == 8080
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PORT"] == str(port["containerPort"])
    service = load("service.yaml")["spec"]
    assert [p["targetPort"] for p in service["ports"]] == [port["name"]]


@pytest.mark.parametrize(
    ("probe", "path"), [("readinessProbe", "/ready"), ("livenessProbe", "/health")]
)
def test_probes_ask_real_routes_on_the_container_port(client, container, probe, path):
    http_get = container[probe]["httpGet"]
    assert http_get["path"] == path
    assert http_get["port"] in {p["name"] for p in container["ports"]}
    assert client.get(path).status_code == 200


def test_runs_as_the_images_non_root_user_read_only(pod, container):
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == service_uid()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The Prometheus multiprocess folder and reload snapshots are in /tmp: it must be a volume.
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_requests_limits_and_graceful_shutdown(pod, container):
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    graceful = ServerSettings().graceful_timeout_seconds  # the production server's
    assert pod["spec"]["terminationGracePeriodSeconds"] > graceful


def test_image_name_matches_the_makefile_and_kustomization(container):
    default_image = re.search(r"^IMAGE \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert container["image"] == default_image
    name = default_image.split(":")[0]
    assert [image["name"] for image in load("kustomization.yaml")["images"]] == [name]


def test_service_and_autoscaler_target_the_deployment(pod):
    deployment = load("deployment.yaml")
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert load("service.yaml")["spec"]["selector"].items() <= labels.items()
    hpa = load("hpa.yaml")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 < hpa["minReplicas"] < hpa["maxReplicas"]
