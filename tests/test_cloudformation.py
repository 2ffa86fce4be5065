"""The Fargate and SageMaker templates pass cfn-lint and agree with the image, server and app."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml
from helpers import ANSWER_200_LBS, ROOT, arguments_of, exposed_port, service_uid

from cookbook.web.container import sagemaker_environment
from cookbook.web.server import ServerSettings

FARGATE = ROOT / "deploy" / "fargate" / "template.yaml"
SAGEMAKER = ROOT / "deploy" / "sagemaker" / "template.yaml"
DEPLOYING = ROOT / "docs" / "deploying.md"
GRACEFUL = ServerSettings().graceful_timeout_seconds  # the production server's
# Fargate's valid task sizes: CPU units -> the memory (MiB) each allows.
FARGATE_SIZES = {
    "256": {"512", "1024", "2048"},
    "512": {str(m) for m in range(1024, 4097, 1024)},
    "1024": {str(m) for m in range(2048, 8193, 1024)},
    "2048": {str(m) for m in range(4096, 16385, 1024)},
    "4096": {str(m) for m in range(8192, 30721, 1024)},
}


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess:
    """Run cfn-lint (the resource schemas ship in the wheel: no network, no account)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys, cfnlint.runner; sys.exit(cfnlint.runner.main())",
         *map(str, templates)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def load(template: Path) -> dict:
    """Parse a template, short tags (!Ref, !GetAtt, !Sub) included, as CloudFormation does."""
    return cfn_yaml.load(str(template))


def of_type(template: dict, kind: str) -> dict:
    """Return the one resource of type *kind* as {"name": ..., **resource}."""
    (found,) = [
        {"name": name, **resource}
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    ]
    return found


def has_route(app, path: str, method: str) -> bool:
    return any(rule.rule == path and method in rule.methods for rule in app.url_map.iter_rules())


@pytest.fixture(scope="module")
def fargate() -> dict:
    return load(FARGATE)


@pytest.fixture(scope="module")
def sagemaker() -> dict:
    return load(SAGEMAKER)


@pytest.fixture(scope="module")
def task(fargate) -> dict:
    return of_type(fargate, "AWS::ECS::TaskDefinition")["Properties"]


@pytest.fixture(scope="module")
def container(task) -> dict:
    (only,) = task["ContainerDefinitions"]
    return only


@pytest.fixture(scope="module")
def target_group(fargate) -> dict:
    return of_type(fargate, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]


# ------------------------------------------------------------------------ cfn-lint


@pytest.mark.parametrize("template", [FARGATE, SAGEMAKER], ids=["fargate", "sagemaker"])
def test_template_passes_cfn_lint(template):
    result = cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""  # no warnings or informational findings either


@pytest.mark.parametrize(
    ("template", "old", "new"),
    [(FARGATE, "HealthCheckPath: /ready", "HealthCheckPth: /ready"),
     (FARGATE, "NetworkMode: awsvpc", "NetworkMode: awsvcp"),
     (SAGEMAKER, "ModelDataUrl: !Ref ModelDataUrl", "ModelDataUri: !Ref ModelDataUrl"),
     (SAGEMAKER, "EndpointConfig.EndpointConfigName", "EndpointConfig.EndpointName")],
    ids=["misspelt-property", "bad-enum", "sagemaker-property", "bad-attribute"],
)  # fmt: skip
def test_cfn_lint_rejects_a_broken_copy(tmp_path, template, old, new):
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert re.search(r"\bE\d{4}\b", result.stdout), result.stdout  # an error, not a warning


def test_both_templates_are_plain_cloudformation(fargate, sagemaker):
    for template in (fargate, sagemaker):
        assert template["AWSTemplateFormatVersion"] == "2010-09-09"
        assert "Transform" not in template


def test_make_lint_delivery_lints_every_template():
    # What `make lint-delivery` would run (-n: print the commands, run none of them).
    commands = subprocess.run(
        ["make", "--no-print-directory", "-n", "lint-delivery"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    (line,) = [line for line in commands if "cfn-lint" in line]
    linted = set(line.split()[1:])
    assert linted == {
        str(p.relative_to(ROOT)) for p in (ROOT / "deploy").glob("*/template.yaml")
    } >= {"deploy/lambda/template.yaml", str(FARGATE.relative_to(ROOT)),
          str(SAGEMAKER.relative_to(ROOT))}  # fmt: skip


# ----------------------------------------------------------------- Fargate: the task


def test_task_is_fargate_awsvpc_with_a_valid_size(fargate, task):
    assert task["NetworkMode"] == "awsvpc"
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    params = fargate["Parameters"]
    assert task["Cpu"] == {"Ref": "Cpu"} and task["Memory"] == {"Ref": "Memory"}
    cpu, memory = params["Cpu"]["Default"], params["Memory"]["Default"]
    assert (cpu, memory) == ("512", "1024")
    assert memory in FARGATE_SIZES[cpu]
    assert set(params["Cpu"]["AllowedValues"]) <= set(FARGATE_SIZES)


def test_execution_role_has_the_managed_task_execution_policy(fargate, task):
    role = fargate["Resources"][task["ExecutionRoleArn"]["Fn::GetAtt"][0]]
    assert role["Type"] == "AWS::IAM::Role"
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    (policy,) = role["Properties"]["ManagedPolicyArns"]
    assert policy["Fn::Sub"].endswith(":policy/service-role/AmazonECSTaskExecutionRolePolicy")
    assert "RoleName" not in role["Properties"]  # so CAPABILITY_IAM is enough
    assert "--capabilities CAPABILITY_IAM" in FARGATE.read_text(encoding="utf-8")


def test_container_runs_the_image_on_its_port_and_environment(fargate, container):
    assert container["Image"] == {"Ref": "ImageUri"}
    assert fargate["Parameters"]["ImageUri"]["Type"] == "String"
    (mapping,) = container["PortMappings"]
    assert mapping["ContainerPort"] == exposed_port() == 8080
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert env["PORT"] == str(exposed_port())
    assert env["WEB_CONCURRENCY"] == {"Ref": "WebConcurrency"}
    assert ServerSettings.from_environ({"PORT": env["PORT"]}).port == exposed_port()


def test_container_runs_as_the_images_user_on_a_read_only_root(task, container):
    assert container["User"] == str(service_uid()) == "10001"
    assert container["ReadonlyRootFilesystem"] is True
    # The Prometheus multiprocess folder and reload snapshots are in /tmp: a task volume.
    (mount,) = container["MountPoints"]
    assert mount["ContainerPath"] == "/tmp" and mount["ReadOnly"] is False
    assert mount["SourceVolume"] in {volume["Name"] for volume in task["Volumes"]}


def test_stop_timeout_exceeds_the_graceful_timeout(container):
    assert GRACEFUL < container["StopTimeout"] <= 120  # Fargate's maximum


def test_container_health_check_asks_health_with_python(client, container):
    check = container["HealthCheck"]
    command = check["Command"]
    assert command[:3] == ["CMD", "python", "-c"]  # exec form: slim images have no shell tools
    assert "curl" not in " ".join(command) and "urllib" in command[3]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", command[3])
    assert int(url[1]) == exposed_port() and url[2] == "/health"
    assert client.get(url[2]).status_code == 200
    assert check["Timeout"] < check["Interval"]
    # The same probe as the Dockerfile's HEALTHCHECK.
    (dockerfile_check,) = arguments_of("HEALTHCHECK")
    assert "urllib" in dockerfile_check and "/health" in dockerfile_check
    # The probe itself is valid Python that names a real route.
    compile(command[3], "<healthcheck>", "exec")


def test_logs_go_to_a_retained_log_group(fargate, container):
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    group = fargate["Resources"][logs["Options"]["awslogs-group"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert fargate["Parameters"]["LogRetentionDays"]["Default"] > 0
    assert logs["Options"]["awslogs-region"] == {"Ref": "AWS::Region"}


# ------------------------------------------------------- Fargate: load balancer, service


def test_target_group_checks_readiness_on_the_container_port(client, target_group, container):
    assert target_group["TargetType"] == "ip"  # awsvpc tasks register by IP
    assert target_group["Port"] == container["PortMappings"][0]["ContainerPort"] == 8080
    assert target_group["HealthCheckPath"] == "/ready"
    assert target_group["Matcher"] == {"HttpCode": "200"}
    assert client.get("/ready").status_code == 200


def test_ready_and_health_are_real_get_routes(app):
    assert has_route(app, "/ready", "GET") and has_route(app, "/health", "GET")
    assert not has_route(app, "/readyz", "GET")  # the check above can fail


def test_deregistration_delay_exceeds_the_graceful_timeout(target_group):
    attributes = {a["Key"]: a["Value"] for a in target_group["TargetGroupAttributes"]}
    assert int(attributes["deregistration_delay.timeout_seconds"]) == 30 > GRACEFUL


def test_listener_forwards_port_80_to_the_target_group(fargate):
    listener = of_type(fargate, "AWS::ElasticLoadBalancingV2::Listener")["Properties"]
    assert listener["Port"] == 80 and listener["Protocol"] == "HTTP"
    (action,) = listener["DefaultActions"]
    target_group = of_type(fargate, "AWS::ElasticLoadBalancingV2::TargetGroup")["name"]
    assert action == {"Type": "forward", "TargetGroupArn": {"Ref": target_group}}
    balancer = of_type(fargate, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert listener["LoadBalancerArn"] == {"Ref": balancer["name"]}
    assert balancer["Properties"]["Subnets"] == {"Ref": "PublicSubnetIds"}
    assert fargate["Parameters"]["PublicSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"


def test_only_the_load_balancer_reaches_the_service_port(fargate):
    service = of_type(fargate, "AWS::ECS::Service")["Properties"]
    (group_ref,) = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    (rule,) = fargate["Resources"][group_ref["Ref"]]["Properties"]["SecurityGroupIngress"]
    assert (rule["FromPort"], rule["ToPort"]) == (exposed_port(), exposed_port())
    assert "CidrIp" not in rule and "CidrIpv6" not in rule
    balancer = of_type(fargate, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    (balancer_group,) = balancer["SecurityGroups"]
    assert rule["SourceSecurityGroupId"] == balancer_group
    balancer_rules = fargate["Resources"][balancer_group["Ref"]]["Properties"]
    assert {(r["FromPort"], r["ToPort"]) for r in balancer_rules["SecurityGroupIngress"]} == {
        (80, 80)
    }


def test_service_runs_the_task_behind_the_target_group(fargate, container):
    resource = of_type(fargate, "AWS::ECS::Service")
    service = resource["Properties"]
    assert capacity_problems(fargate, "FARGATE") == []  # on demand, by a capacity provider
    task = of_type(fargate, "AWS::ECS::TaskDefinition")["name"]
    assert service["TaskDefinition"] == {"Ref": task}
    (balancer,) = service["LoadBalancers"]
    assert balancer["ContainerName"] == container["Name"]
    assert balancer["ContainerPort"] == exposed_port()
    target_group = of_type(fargate, "AWS::ElasticLoadBalancingV2::TargetGroup")["name"]
    assert balancer["TargetGroupArn"] == {"Ref": target_group}
    assert service["HealthCheckGracePeriodSeconds"] > 0
    assert service["DesiredCount"] == {"Ref": "DesiredCount"}
    assert (
        resource["DependsOn"] == of_type(fargate, "AWS::ElasticLoadBalancingV2::Listener")["name"]
    )


# ------------------------------------------------------------ Fargate: Fargate Spot


def capacity_problems(template: dict, provider: str) -> list[str]:
    """Return what ECS would refuse in the service's launch with CapacityProvider=*provider*."""
    service = of_type(template, "AWS::ECS::Service")["Properties"]
    cluster = of_type(template, "AWS::ECS::Cluster")["Properties"]
    resolved = [
        {**item, "CapacityProvider": provider}
        if item.get("CapacityProvider") == {"Ref": "CapacityProvider"} else item
        for item in service.get("CapacityProviderStrategy", [])
    ]  # fmt: skip
    problems = []
    if "LaunchType" in service and resolved:
        problems.append("a LaunchType and a capacity provider strategy")  # ECS refuses both
    if not resolved:
        problems.append("no capacity provider strategy")
    for item in resolved:
        if item["CapacityProvider"] not in cluster.get("CapacityProviders", []):
            problems.append(f"{item['CapacityProvider']} is not one of the cluster's providers")
        if not 0 <= item.get("Weight", 0) <= 1000 or not 0 <= item.get("Base", 0) <= 100_000:
            problems.append(f"{item} has a weight or base out of ECS's range")
    if sum(item.get("Weight", 0) for item in resolved) == 0:
        problems.append("no provider has a weight above 0")
    if sum(1 for item in resolved if item.get("Base", 0)) > 1:
        problems.append("a base on more than one provider")
    return problems


def test_capacity_provider_is_on_demand_or_spot(fargate):
    parameter = fargate["Parameters"]["CapacityProvider"]
    assert parameter["AllowedValues"] == ["FARGATE", "FARGATE_SPOT"]
    assert parameter["Default"] == "FARGATE"  # Spot is a choice, not the default
    cluster = of_type(fargate, "AWS::ECS::Cluster")["Properties"]
    assert cluster["CapacityProviders"] == parameter["AllowedValues"]


@pytest.mark.parametrize("provider", ["FARGATE", "FARGATE_SPOT"])
def test_each_capacity_provider_renders_a_valid_strategy(tmp_path, fargate, provider):
    assert capacity_problems(fargate, provider) == []
    service = of_type(fargate, "AWS::ECS::Service")["Properties"]
    assert "LaunchType" not in service
    assert service["CapacityProviderStrategy"] == [
        {"CapacityProvider": {"Ref": "CapacityProvider"}, "Weight": 1}
    ]
    # The template with this provider as its default passes cfn-lint too.
    text = FARGATE.read_text(encoding="utf-8")
    assert text.count("Default: FARGATE\n") == 1
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace("Default: FARGATE\n", f"Default: {provider}\n"))
    result = cfn_lint(copy)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [("      TaskDefinition: !Ref TaskDefinition", "      LaunchType: FARGATE\n"
      "      TaskDefinition: !Ref TaskDefinition", "a LaunchType and a capacity provider"),
     ("CapacityProviders: [FARGATE, FARGATE_SPOT]", "CapacityProviders: [FARGATE]",
      "FARGATE_SPOT is not one of the cluster's providers"),
     ("          Weight: 1\n", "          Weight: 0\n", "no provider has a weight above 0")],
    ids=["launch-type-too", "spot-not-in-cluster", "no-weight"],
)  # fmt: skip
def test_capacity_check_finds_what_ecs_refuses(tmp_path, old, new, problem):
    # cfn-lint passes all three (it does not know these rules): the check above must not.
    text = FARGATE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    problems = capacity_problems(load(broken), "FARGATE_SPOT")
    assert any(found.startswith(problem) for found in problems), problems


def test_spot_notice_leaves_time_to_drain(container, target_group):
    # ECS stops a Spot task two minutes after its notice: SIGTERM, then SIGKILL after
    # StopTimeout. Draining (deregistration) and the server's graceful stop fit in that.
    attributes = {a["Key"]: a["Value"] for a in target_group["TargetGroupAttributes"]}
    spot_notice_seconds = 120
    assert GRACEFUL < container["StopTimeout"] <= spot_notice_seconds
    assert int(attributes["deregistration_delay.timeout_seconds"]) <= spot_notice_seconds


def test_cpu_target_tracking_scales_the_service(fargate):
    target = of_type(fargate, "AWS::ApplicationAutoScaling::ScalableTarget")
    props = target["Properties"]
    assert props["ServiceNamespace"] == "ecs"
    assert props["ScalableDimension"] == "ecs:service:DesiredCount"
    service = of_type(fargate, "AWS::ECS::Service")["name"]
    cluster = of_type(fargate, "AWS::ECS::Cluster")["name"]
    assert props["ResourceId"] == {"Fn::Sub": f"service/${{{cluster}}}/${{{service}.Name}}"}
    assert props["MinCapacity"] == {"Ref": "DesiredCount"}
    assert props["MaxCapacity"] == {"Ref": "MaxCount"}
    params = fargate["Parameters"]
    assert 1 <= params["DesiredCount"]["Default"] < params["MaxCount"]["Default"]
    policy = of_type(fargate, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": target["name"]}
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
    assert metric == "ECSServiceAverageCPUUtilization"
    assert 0 < tracking["TargetValue"] < 100


def test_outputs_the_load_balancer_url(fargate):
    balancer = of_type(fargate, "AWS::ElasticLoadBalancingV2::LoadBalancer")["name"]
    assert fargate["Outputs"]["ServiceUrl"]["Value"] == {
        "Fn::Sub": f"http://${{{balancer}.DNSName}}"
    }


# ------------------------------------------------------------------------ SageMaker


def test_sagemaker_model_runs_the_image_with_the_artefact(sagemaker):
    model = of_type(sagemaker, "AWS::SageMaker::Model")["Properties"]
    params = sagemaker["Parameters"]
    container = model["PrimaryContainer"]
    assert container["Image"] == {"Ref": "ImageUri"} and "Default" not in params["ImageUri"]
    assert container["ModelDataUrl"] == {"Ref": "ModelDataUrl"}
    assert re.fullmatch(params["ModelDataUrl"]["AllowedPattern"], "s3://bucket/x/model.tar.gz")
    assert not re.fullmatch(params["ModelDataUrl"]["AllowedPattern"], "s3://bucket/model.joblib")
    assert model["ExecutionRoleArn"] == {"Ref": "ExecutionRoleArn"}


def test_sagemaker_endpoint_serves_the_model_through_its_config(sagemaker):
    model = of_type(sagemaker, "AWS::SageMaker::Model")["name"]
    config = of_type(sagemaker, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ModelName"] == {"Fn::GetAtt": [model, "ModelName"]}
    assert variant["InstanceType"] == {"Ref": "InstanceType"}
    assert variant["InitialInstanceCount"] == {"Ref": "InitialInstanceCount"}
    assert sagemaker["Parameters"]["InstanceType"]["Default"] in {"ml.t2.medium", "ml.m5.large"}
    endpoint = of_type(sagemaker, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config["name"], "EndpointConfigName"]}


def test_serve_listens_on_8080_and_reads_the_sagemaker_model_dir(tmp_path):
    assert sagemaker_environment({})["PORT"] == str(exposed_port()) == "8080"
    (tmp_path / "model.joblib").write_bytes(b"")
    env = sagemaker_environment({"SM_MODEL_DIR": str(tmp_path)})
    assert env["MODEL_PATH"] == str(tmp_path / "model.joblib")


def test_sagemaker_contract_routes_exist_and_answer(app, client):
    assert has_route(app, "/ping", "GET") and has_route(app, "/invocations", "POST")
    assert client.get("/ping").status_code == 200
    # What the header's `invoke-endpoint --content-type text/csv --body 200` sends.
    answer = client.post(
        "/invocations", data="200", content_type="text/csv", headers={"Accept": "text/csv"}
    )
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.get_data(as_text=True).split() == [str(ANSWER_200_LBS["height_inches"])]
    json_answer = client.post("/invocations", json={"Weight": 200})
    assert json_answer.status_code == 200
    assert json_answer.get_json() == client.post("/predict", json={"Weight": 200}).get_json()


def test_sagemaker_header_documents_the_artefact_and_commands():
    text = SAGEMAKER.read_text(encoding="utf-8")
    assert "tar -czf model.tar.gz model.joblib model.json" in text
    assert "0644" in text and str(service_uid()) in text
    assert "aws s3 cp model.tar.gz s3://" in text
    assert "aws cloudformation deploy" in text
    assert re.search(r"invoke-endpoint .*\n.*--content-type text/csv .*--body 200", text)


@pytest.mark.parametrize("template", [FARGATE, SAGEMAKER], ids=["fargate", "sagemaker"])
def test_header_pushes_to_ecr_with_placeholders(template):
    text = template.read_text(encoding="utf-8")
    assert "aws ecr get-login-password | docker login" in text
    push = "make deploy REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com IMAGE=mlb-height:<tag>"
    assert push in text


@pytest.mark.parametrize("template", [FARGATE, SAGEMAKER], ids=lambda p: p.parent.name)
def test_deploying_page_shows_how_to_deploy_each_template(template):
    # A shell command of the page (continuation lines joined) deploys this very template.
    text = DEPLOYING.read_text(encoding="utf-8").replace("\\\n", " ")
    commands = [line for line in text.splitlines() if "aws cloudformation deploy" in line]
    assert any(
        f"--template-file {template.relative_to(ROOT)}" in command for command in commands
    ), commands
