"""Shipping files, checked offline: the ECS task definition against botocore's ECS model and the server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
import yaml
from botocore.validate import ParamValidator

from server.settings import Settings
from tests.conftest import ROOT, start_server


@pytest.fixture(scope="module")
def task() -> dict[str, Any]:
    return json.loads((ROOT / "ecs-task.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def container(task: dict[str, Any]) -> dict[str, Any]:
    return task["containerDefinitions"][0]  # type: ignore[no-any-return]


def test_task_definition_matches_ecs_register_task_definition_input(task: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("ecs")  # bundled with botocore: offline
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task, shape)
    assert not report.has_errors(), report.generate_report()


def test_task_is_a_fargate_awsvpc_task_sized_from_measured_memory(task: dict[str, Any]) -> None:
    assert (task["networkMode"], task["requiresCompatibilities"]) == ("awsvpc", ["FARGATE"])
    assert (task["cpu"], task["memory"]) == ("1024", "2048")  # peak RSS measured at 331 MiB


def test_variables_are_server_settings(container: dict[str, Any]) -> None:
    known = {name.upper() for name in Settings.model_fields}
    names = {e["name"] for e in container["environment"]} | {s["name"] for s in container["secrets"]}
    assert names <= known, names - known
    assert {s["name"] for s in container["secrets"]} == {"API_KEYS", "DATABASE_URL"}  # never in plain text


def test_port_health_path_and_stop_timeout_agree_with_the_server(container: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert container["portMappings"][0]["containerPort"] == int(env["PORT"]) == Settings.model_fields["port"].default
    assert "http://127.0.0.1:8080/health" in " ".join(container["healthCheck"]["command"])
    assert container["stopTimeout"] == int(env["DRAIN_SECONDS"])


def test_dockerfile_and_task_agree(container: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^EXPOSE 8080$", dockerfile, re.MULTILINE)
    assert re.search(rf"^USER {container['user']}$", dockerfile, re.MULTILINE)
    assert "DRAIN_SECONDS=30" in dockerfile


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short-form tags (!Ref, !If, ...) only need to parse here, not to resolve.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return dict(yaml.load((ROOT / "deploy" / "ecs-service.yaml").read_text(), Loader=Loader))


def test_load_balancer_drains_as_long_as_the_server(container: dict[str, Any], template: dict[str, Any]) -> None:
    assert template["Parameters"]["DrainSeconds"]["Default"] == container["stopTimeout"]
    assert template["Resources"]["TargetGroup"]["Properties"]["HealthCheckPath"] == "/health"


def test_the_server_keeps_idle_connections_longer_than_the_load_balancer(template: dict[str, Any]) -> None:
    # Whoever closes an idle connection first may lose a request sent into it (tests/test_keepalive.py).
    attributes = template["Resources"]["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]
    alb = int(next(a["Value"] for a in attributes if a["Key"] == "idle_timeout.timeout_seconds"))
    assert alb < Settings.model_fields["keep_alive_seconds"].default


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_compose_servers_pass_only_server_settings_and_share_the_database(compose: dict[str, Any]) -> None:
    known = {name.upper() for name in Settings.model_fields}
    servers = [s for name, s in compose["services"].items() if name != "db"]
    assert len(servers) == 2  # the scaled-out shape: two servers, one database
    assert all(set(s["environment"]) <= known for s in servers)
    urls = {s["environment"]["DATABASE_URL"] for s in servers}
    assert urls == {"postgresql://iscoolgpt:${POSTGRES_PASSWORD:-iscoolgpt-local}@db:5432/iscoolgpt"}
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-iscoolgpt-local}"


def test_compose_gives_a_draining_server_its_time(compose: dict[str, Any]) -> None:
    grace = {s["stop_grace_period"] for name, s in compose["services"].items() if name != "db"}
    assert grace == {"35s"} and int(Settings.model_fields["drain_seconds"].default) < 35


def filter_matches(pattern: str, line: dict[str, Any]) -> bool:
    """CloudWatch's JSON filter pattern, for the form the stack uses: ``{ $.a = "x" && $.b >= 500 }``."""
    terms = pattern.strip().removeprefix("{").removesuffix("}").split("&&")
    for term in terms:
        field, op, value = re.fullmatch(r'\s*\$\.(\w+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*', term).groups()  # type: ignore[union-attr]
        if field not in line:
            return False
        wanted = json.loads(value)
        ops = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
               "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
        if not ops[op](line[field], wanted):
            return False
    return True


@pytest.fixture(scope="module")
def json_log(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Real request lines of a server with LOG_FORMAT=json, as the task definition runs it, by path."""
    log = tmp_path_factory.mktemp("json-log") / "server.log"
    proc, url = start_server(int8_dir, log, LOG_FORMAT="json", DATABASE_URL="none")
    try:
        httpx.post(f"{url}/chat/", json={"question": "What is Amazon S3?", "temperature": 0}, timeout=60)
        httpx.get(f"{url}/no-such-page", timeout=10)
        httpx.get(f"{url}/health", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return {line["path"]: line for line in lines if line.get("logger") == "iscoolgpt.access"}


def test_the_stacks_metric_filters_read_the_servers_json_request_lines(
        template: dict[str, Any], json_log: dict[str, dict[str, Any]]) -> None:
    filters = {r["Properties"]["FilterName"]: r["Properties"] for r in template["Resources"].values()
               if r["Type"] == "AWS::Logs::MetricFilter"}
    lines = [json_log[path] for path in ("/chat/", "/no-such-page", "/health")]
    matched = {name: tuple(filter_matches(f["FilterPattern"], line) for line in lines) for name, f in filters.items()}
    # Health checks (every load balancer node, every 10 s) would water the error rate down: not requests.
    assert matched == {"iscoolgpt-requests": (True, True, False), "iscoolgpt-5xx": (False, False, False),
                       "iscoolgpt-503": (False, False, False), "iscoolgpt-chat-latency": (True, False, False)}
    value = filters["iscoolgpt-chat-latency"]["MetricTransformations"][0]["MetricValue"]
    assert isinstance(lines[0][value.removeprefix("$.")], float)
