"""CloudFormation resource schemas, as cfn-lint ships them (MIT-0), as documents.

cfn-lint carries the registry schema of every resource type CloudFormation
offers (``AWS::S3::Bucket`` ...): what the resource is, often its quotas, and a
description of each property. One document per resource type: its description,
then one line per described property. Markdown links keep their words, and
CloudFormation's double backticks go.
"""

from __future__ import annotations

import json
import re
import zipfile

from export.knowledge.corpus import Document, tidy
from export.knowledge.services import resolve

PROVIDERS = "cfnlint/data/schemas/providers/us-east-1.json"  # type name -> schema file, for one region
SCHEMA = "cfnlint/data/schemas/resources/{name}.json"
REFERENCE = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-{service}-{resource}.html"
_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]*\)")
_TICKS = re.compile(r"``?([^`]+)``?")


def _plain(text: str) -> str:
    return tidy(_TICKS.sub(r"\1", _LINK.sub(r"\1", text)))


def documents(wheel: zipfile.ZipFile, services: set[str] | None) -> list[Document]:
    """Every resource type whose service is in ``services`` (default: all)."""
    providers: dict[str, str] = json.loads(wheel.read(PROVIDERS))
    docs: list[Document] = []
    for type_name, schema_name in sorted(providers.items()):
        parts = type_name.split("::")
        if len(parts) != 3:
            continue
        service = resolve(parts[1])
        if services is not None and service not in services:
            continue
        schema = json.loads(wheel.read(SCHEMA.format(name=schema_name)))
        lines = [_plain(str(schema.get("description") or ""))]
        for prop, spec in sorted((schema.get("properties") or {}).items()):
            if isinstance(spec, dict) and spec.get("description"):
                lines.append(f"{prop}: {_plain(str(spec['description']))}")
        text = tidy("\n".join(x for x in lines if x))
        if not text:
            continue
        url = REFERENCE.format(service=parts[1].lower(), resource=parts[2].lower())
        docs.append(Document(f"cloudformation/{type_name}", f"CloudFormation {type_name}", text, url, service,
                             "cloudformation"))
    return docs
