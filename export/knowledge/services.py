"""Which botocore service a document is about, from the names other packages give services.

awscli names a service by its command (``s3api``, ``configservice``),
aws-cdk-lib by its module (``aws-elasticloadbalancingv2``, ``aws-s3-deployment``)
and CloudFormation by its namespace (``AWS::ElasticLoadBalancingV2::Listener``).
Each is matched, lower-cased with only letters and digits kept, against what
botocore's own models call the service: its directory, endpoint prefix, signing
name, service id and full name (``Amazon``/``AWS`` dropped). The few names that
match none, or several, are listed in ``ALIASES``; they are naming facts, not
a ranking.
"""

from __future__ import annotations

import re
from functools import lru_cache

from export.knowledge.corpus import botocore_data, botocore_services, latest_model, load_model

ALIASES = {
    "s3api": "s3", "configservice": "config", "deploy": "codedeploy",  # awscli's renamed commands
    "cognito": "cognito-idp", "cognitoidentitypool": "cognito-identity", "elasticsearch": "es",  # CDK / CloudFormation
    "bedrockagentcore": "bedrock-agentcore-control", "elasticloadbalancing": "elb", "msk": "kafka",
    "macie": "macie2", "inspectorv2": "inspector2", "cassandra": "keyspaces", "s3express": "s3",
    "timestream": "timestream-write", "lex": "lexv2-models",
    "sam": "lambda", "serverless": "lambda",  # AWS::Serverless::Function is a Lambda function
}


def normalise(name: str) -> str:
    """``Elastic Load Balancing v2`` and ``ElasticLoadBalancingV2`` alike: ``elasticloadbalancingv2``."""
    name = re.sub(r"^(amazon|aws)[\s-]+", "", name.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]", "", name.lower())


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every normalised name botocore gives a service -> its id; a name two services share is left out."""
    claimed: dict[str, set[str]] = {}
    for service in botocore_services():
        meta = load_model(latest_model(botocore_data() / service)).get("metadata", {})  # type: ignore[arg-type]
        assert isinstance(meta, dict)
        names = {service, *(str(meta[k]) for k in ("endpointPrefix", "signingName", "serviceId",
                                                  "serviceFullName", "serviceAbbreviation") if meta.get(k))}
        for name in names:
            claimed.setdefault(normalise(name), set()).add(service)
    return {name: next(iter(ids)) for name, ids in claimed.items() if len(ids) == 1}


def resolve(name: str) -> str | None:
    """The botocore service id ``name`` refers to, or None when none does."""
    key = name.lower()
    if key in ALIASES:
        return ALIASES[key]
    if (botocore_data() / key).is_dir():
        return key
    return _names().get(normalise(name))


def resolve_module(module: str) -> str | None:
    """A CDK module's service: ``aws-s3-deployment`` -> ``s3`` (trailing parts dropped until a name matches)."""
    if not module.startswith("aws-"):
        return None
    parts = module[4:].split("-")
    for end in range(len(parts), 0, -1):
        if (found := resolve("".join(parts[:end]))) is not None:
            return found
    return None
