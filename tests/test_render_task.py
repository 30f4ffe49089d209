"""deploy/render_task.py: ecs-task.json filled in with a stack's outputs is a task definition ECS takes,
passing the server only settings it has, and all the stack's shape needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

from deploy.render_task import AUTH, REQUIRED, RenderError, render
from server.settings import Settings, load_settings
from tests.conftest import ROOT

ACCOUNT, REGION = "210987654321", "eu-west-1"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/iscoolgpt:0123abcd"


def stack_outputs(cognito: bool) -> list[dict[str, str]]:
    """What describe-stacks returns for deploy/ecs-service.yaml, one value per output the template declares."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    declared = yaml.load((ROOT / "deploy" / "ecs-service.yaml").read_text(), Loader=Loader)["Outputs"]
    values = {
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/iscoolgpt-ExecutionRole-1AB2C3",
        "TaskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/iscoolgpt-TaskRole-4DE5F6",
        "DatabaseUrlSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:iscoolgpt/database-url-AbCdEf",
        "LogGroupName": "/ecs/iscoolgpt",
        "AuthJwksUrl": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Abc123/.well-known/jwks.json",
        "AuthIssuer": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Abc123",
        "AuthAudience": "4c0ff33clientid",
        "CognitoDomainUrl": f"https://iscoolgpt-chat.auth.{REGION}.amazoncognito.com",
    }
    kept = [k for k in values if k in declared and (cognito or k not in {*AUTH.values(), "CognitoDomainUrl"})]
    return [{"OutputKey": k, "OutputValue": values[k]} for k in kept]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return json.loads((ROOT / "ecs-task.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=[False, True], ids=["keys", "cognito"])
def rendered(request: pytest.FixtureRequest, template: dict[str, Any]) -> dict[str, Any]:
    return render(template, stack_outputs(request.param), IMAGE)


def test_the_template_declares_every_output_the_renderer_reads() -> None:
    keys = {o["OutputKey"] for o in stack_outputs(cognito=True)}
    assert set(REQUIRED) | set(AUTH.values()) | {"CognitoDomainUrl"} <= keys


def test_rendered_task_is_what_ecs_register_task_definition_takes(rendered: dict[str, Any]) -> None:
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    report = ParamValidator().validate(rendered, shape.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_rendered_task_names_only_the_stacks_account_and_region(rendered: dict[str, Any]) -> None:
    text = json.dumps(rendered)
    assert "123456789012" not in text and "us-east-1" not in text
    assert rendered["containerDefinitions"][0]["image"] == IMAGE


def test_rendered_task_passes_only_server_settings_and_all_the_stack_needs(rendered: dict[str, Any]) -> None:
    container = rendered["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(env) | set(secrets) <= {name.upper() for name in Settings.model_fields}
    # The metric filters read JSON lines; conversations live in the stack's database; the ALB reaches 8080.
    assert (env["LOG_FORMAT"], env["HOST"], env["PORT"]) == ("json", "0.0.0.0", "8080")
    assert secrets["DATABASE_URL"].endswith(":secret:iscoolgpt/database-url-AbCdEf")
    assert container["logConfiguration"]["options"]["awslogs-region"] == REGION


def test_cognito_outputs_become_the_servers_sign_in_settings(template: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in render(template, stack_outputs(True), IMAGE,
                                                 api_keys=False)["containerDefinitions"][0]["environment"]}
    assert env["AUTH_ISSUER"] == f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Abc123"
    assert env["AUTH_AUDIENCE"] == env["AUTH_CLIENT_ID"] == "4c0ff33clientid"
    assert env["AUTH_TOKEN_URL"] == f"https://iscoolgpt-chat.auth.{REGION}.amazoncognito.com/oauth2/token"


def test_no_api_keys_without_cognito_is_refused(template: dict[str, Any]) -> None:
    with pytest.raises(RenderError, match="would leave the API open"):
        render(template, stack_outputs(False), IMAGE, api_keys=False)


def test_the_command_line_fails_in_one_line_on_another_stacks_outputs(tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text(json.dumps([{"OutputKey": "Url", "OutputValue": "https://x"}]))
    done = subprocess.run([sys.executable, "deploy/render_task.py", "--outputs", str(tmp_path / "outputs.json"),
                           "--image", IMAGE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "lack ExecutionRoleArn" in done.stderr


def test_rendered_environment_is_settings_the_server_starts_with(rendered: dict[str, Any]) -> None:
    env = {e["name"].lower(): e["value"] for e in rendered["containerDefinitions"][0]["environment"]}
    settings = load_settings(env_file=None, **env)  # raises SettingsError, naming the variable, if not
    assert (settings.log_format, settings.num_threads, settings.max_batch_size) == ("json", 1, 16)
