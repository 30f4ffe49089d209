"""Fill ``ecs-task.json`` in with one deployed stack's values: the task definition the workflow registers.

``ecs-task.json`` names placeholder ARNs (account 123456789012, us-east-1) so that it can be read and
checked on its own. This script takes the stack's outputs (``aws cloudformation describe-stacks
--query 'Stacks[0].Outputs'``) and the image, and writes the real thing:

* the execution and task roles, the ``DATABASE_URL`` secret and the log group come from the stack;
* every other ARN (the ``API_KEYS`` secret) moves to the stack's account and region;
* with the stack's Cognito user pool, the server gets ``AUTH_JWKS_URL``, ``AUTH_ISSUER`` and
  ``AUTH_AUDIENCE``, and with its hosted domain the page's sign-in (``AUTH_AUTHORIZE_URL``,
  ``AUTH_TOKEN_URL``, ``AUTH_CLIENT_ID``); ``--no-api-keys`` drops the ``API_KEYS`` secret.

Usage: ``python deploy/render_task.py --outputs outputs.json --image URI [--no-api-keys] > task.json``.
Errors are one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent / "ecs-task.json"
PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION = "123456789012", "us-east-1"
REQUIRED = ("ExecutionRoleArn", "TaskRoleArn", "DatabaseUrlSecretArn", "LogGroupName")
AUTH = {"AUTH_JWKS_URL": "AuthJwksUrl", "AUTH_ISSUER": "AuthIssuer", "AUTH_AUDIENCE": "AuthAudience"}
_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:.+$")


class RenderError(Exception):
    """The outputs or the template cannot make a task definition; the message says why."""


def render(task: dict[str, Any], outputs: list[dict[str, str]], image: str, api_keys: bool = True) -> dict[str, Any]:
    """The task definition ``task`` with the stack's ``outputs`` and ``image`` filled in (a new dict)."""
    values = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    missing = [k for k in REQUIRED if not values.get(k)]
    if missing:
        raise RenderError(f"the stack's outputs lack {', '.join(missing)}: is it the IsCoolGPT stack?")
    found = _ARN.match(values["DatabaseUrlSecretArn"])
    if not found:
        raise RenderError(f"DatabaseUrlSecretArn is not a Secrets Manager ARN: {values['DatabaseUrlSecretArn']}")
    region, account = found.groups()
    # Every placeholder ARN and region moves to the stack's account and region.
    text = json.dumps(task).replace(f":{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:", f":{region}:{account}:")
    out: dict[str, Any] = json.loads(text)
    out["executionRoleArn"], out["taskRoleArn"] = values["ExecutionRoleArn"], values["TaskRoleArn"]
    container = out["containerDefinitions"][0]
    container["image"] = image
    container["secrets"] = [
        {**s, "valueFrom": values["DatabaseUrlSecretArn"]} if s["name"] == "DATABASE_URL" else s
        for s in container.get("secrets", []) if api_keys or s["name"] != "API_KEYS"]
    auth = {name: values[key] for name, key in AUTH.items() if values.get(key)}
    if auth and len(auth) != len(AUTH):
        raise RenderError(f"the stack gives only part of the sign-in settings: {', '.join(sorted(auth))}")
    if not auth and not api_keys:
        raise RenderError("--no-api-keys without the stack's Cognito user pool would leave the API open")
    if auth and values.get("CognitoDomainUrl"):  # the hosted domain: the page's Sign in button
        domain = values["CognitoDomainUrl"].rstrip("/")
        auth |= {"AUTH_AUTHORIZE_URL": f"{domain}/oauth2/authorize", "AUTH_TOKEN_URL": f"{domain}/oauth2/token",
                 "AUTH_CLIENT_ID": values["AuthAudience"]}
    container["environment"] = [e for e in container["environment"] if e["name"] not in auth] + [
        {"name": name, "value": value} for name, value in auth.items()]
    options = container["logConfiguration"]["options"]
    options["awslogs-group"], options["awslogs-region"] = values["LogGroupName"], region
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, required=True, help="the stack's outputs as JSON (describe-stacks)")
    parser.add_argument("--image", required=True, help="the image URI the task runs")
    parser.add_argument("--task", type=Path, default=TEMPLATE, help="the task definition to fill in")
    parser.add_argument("--no-api-keys", action="store_true", help="no API_KEYS secret: Cognito sign-in only")
    args = parser.parse_args(argv)
    try:
        task = json.loads(args.task.read_text())
        outputs = json.loads(args.outputs.read_text())
        rendered = render(task, outputs, args.image, api_keys=not args.no_api_keys)
    except (OSError, ValueError, KeyError, TypeError, RenderError) as exc:
        print(f"render_task: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(rendered, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
