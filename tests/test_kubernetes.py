"""The Kubernetes manifests (and the EKS overlay) validate against the real schemas and agree
with the image and app."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT, exposed_port, service_uid

from cookbook.web.server import ServerSettings

KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = KUBERNETES / "base"
EKS = KUBERNETES / "eks"
RESOURCES = ["deployment.yaml", "service.yaml", "hpa.yaml"]
GRACEFUL = ServerSettings().graceful_timeout_seconds  # the production server's
LB = "service.beta.kubernetes.io/aws-load-balancer-"  # the AWS Load Balancer Controller's


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
    # deploy/kubernetes is the base as it is; kustomize refuses an overlay inside its base.
    top = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    assert top["resources"] == ["base"] and "patches" not in top


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
    assert pod["spec"]["terminationGracePeriodSeconds"] > GRACEFUL


def test_image_name_matches_the_makefile_and_kustomization(container):
    default_image = re.search(r"^IMAGE \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert container["image"] == default_image
    name = default_image.split(":")[0]
    for folder in (KUBERNETES, EKS):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert [image["name"] for image in kustomization["images"]] == [name]


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


# ------------------------------------------------------------------ Amazon EKS overlay


def merge(base: dict, patch: dict) -> dict:
    """Return *base* with the map *patch* merged in, as a strategic-merge patch of maps does."""
    merged = dict(base)
    for key, value in patch.items():
        assert not isinstance(value, list), f"{key}: lists merge by key, which this does not do"
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def render_eks() -> dict[str, dict]:
    """Return the EKS overlay's resources by kind: the base with the overlay's patches."""
    overlay = yaml.safe_load((EKS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert overlay["resources"] == ["../base"]
    resources = {doc["kind"]: doc for doc in map(load, load("kustomization.yaml")["resources"])}
    for entry in overlay["patches"]:
        patch = yaml.safe_load((EKS / entry["path"]).read_text(encoding="utf-8"))
        target = resources[entry["target"]["kind"]]
        assert target["metadata"]["name"] == entry["target"]["name"] == patch["metadata"]["name"]
        resources[target["kind"]] = merge(target, patch)
    return resources


@pytest.fixture(scope="module")
def eks() -> dict[str, dict]:
    return render_eks()


def test_eks_overlay_passes_strict_schema_validation(tmp_path, eks):
    paths = []
    for kind, resource in eks.items():
        paths.append(tmp_path / f"{kind}.yaml")
        paths[-1].write_text(yaml.safe_dump(resource), encoding="utf-8")
    result = validate(*paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed ") == len(RESOURCES), result.stdout


def test_eks_service_is_an_internet_facing_nlb_to_the_pods(eks):
    service = eks["Service"]
    assert service["spec"]["type"] == "LoadBalancer"
    annotations = service["metadata"]["annotations"]
    assert annotations[LB + "type"] == "external"  # the controller's NLB, not the in-tree one
    assert annotations[LB + "nlb-target-type"] == "ip"  # pod IPs, not node ports
    assert annotations[LB + "scheme"] == "internet-facing"
    # The rest of the Service is the base's: the same pods, the same port to the container.
    base = load("service.yaml")
    assert service["spec"]["selector"] == base["spec"]["selector"]
    assert service["spec"]["ports"] == base["spec"]["ports"]


def test_eks_load_balancer_checks_readiness_like_the_probe(client, eks):
    annotations = eks["Service"]["metadata"]["annotations"]
    (container,) = eks["Deployment"]["spec"]["template"]["spec"]["containers"]
    path = annotations[LB + "healthcheck-path"]
    assert path == container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert annotations[LB + "healthcheck-protocol"] == "http"
    assert annotations[LB + "healthcheck-port"] == "traffic-port"  # the pod's 8080
    assert client.get(path).status_code == 200


def test_eks_draining_fits_between_the_graceful_timeout_and_the_grace_period(eks):
    attributes = eks["Service"]["metadata"]["annotations"][LB + "target-group-attributes"]
    delay = int(dict(item.split("=") for item in attributes.split(","))[
        "deregistration_delay.timeout_seconds"
    ])  # fmt: skip
    grace = eks["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert GRACEFUL < delay <= grace


def test_eks_overlay_changes_only_the_service(eks):
    for kind, name in (("Deployment", "deployment.yaml"), ("HorizontalPodAutoscaler", "hpa.yaml")):
        assert eks[kind] == load(name)
    assert set(eks["Service"]["metadata"]) == {"name", "labels", "annotations"}


def test_merge_refuses_a_patch_with_a_list():
    with pytest.raises(AssertionError, match="lists merge by key"):
        merge({"spec": {"ports": []}}, {"spec": {"ports": [{"port": 8080}]}})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", [KUBERNETES, EKS], ids=["base", "eks"])
def test_kubectl_kustomize_renders_what_the_tests_check(eks, folder):
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout)}
    expected = eks if folder == EKS else {doc["kind"]: doc for doc in map(load, RESOURCES)}
    assert rendered == expected
