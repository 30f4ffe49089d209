"""The knowledge base's sources: which packages they come from, pinned, and how each is read.

``--knowledge`` takes a comma list of these names, or ``default`` (the AWS set:
botocore + awscli + cdk + cloudformation), or ``none``. botocore is read where
it is installed (the export already depends on it); the others from their
wheels (:mod:`export.knowledge.wheels`). Each source's package, version and
licence go into the manifest, and its name is every one of its passages'
``source``.
"""

from __future__ import annotations

import importlib
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.knowledge.corpus import Document, botocore_documents, botocore_services, botocore_version
from export.knowledge.wheels import default_dir, fetch, open_wheel
from export.source import ExportError
from server.serving_dir import sha256_file

log = logging.getLogger("iscoolgpt.export")
Reader = Callable[[zipfile.ZipFile, "set[str] | None"], list[Document]]


@dataclass(frozen=True)
class Source:
    """One corpus: the package it is read from, and what a reader shows it as."""

    name: str
    package: str
    version: str  # pinned: the same build gives the same knowledge base
    licence: str
    kind: str  # what the page calls it
    module: str | None  # export.knowledge.<module>.documents reads the wheel; None: botocore, installed

    def reader(self) -> Reader:
        read: Reader = importlib.import_module(f"export.knowledge.{self.module}").documents
        return read


SOURCES = {s.name: s for s in (
    Source("botocore", "botocore", "", "Apache-2.0", "API reference", None),
    Source("awscli", "awscli", "1.46.3", "Apache-2.0", "CLI example", "awscli"),
    Source("cdk", "aws-cdk-lib", "2.275.0", "Apache-2.0", "CDK guide", "cdk"),
    Source("cloudformation", "cfn-lint", "1.58.0", "MIT-0", "CloudFormation", "cloudformation"),
    Source("azure", "azure-cli", "2.91.0", "MIT", "Azure CLI", "azure"),
    Source("kubernetes", "kubernetes", "37.0.2", "Apache-2.0", "Kubernetes API", "kubernetes"),
)}
DEFAULT = ("botocore", "awscli", "cdk", "cloudformation")
AWS = frozenset(DEFAULT)  # the sources whose passages carry a botocore service id


def parse(value: str) -> tuple[str, ...]:
    """``"default"``, ``"none"`` or a comma list -> source names in a stable order; ValueError names the valid ones."""
    names: list[str] = []
    for part in (p.strip().lower() for p in value.split(",") if p.strip()):
        wanted = DEFAULT if part == "default" else () if part == "none" else (part,)
        for name in wanted:
            if name not in SOURCES:
                raise ValueError(f"unknown knowledge source {part!r}; choose from default, none, "
                                 f"{', '.join(SOURCES)}")
            if name not in names:
                names.append(name)
    return tuple(n for n in SOURCES if n in names)


def collect(names: tuple[str, ...], services: tuple[str, ...] | None, wheels: Path
            ) -> tuple[list[Document], dict[str, Any]]:
    """Every document of the named sources (AWS ones narrowed to ``services``), and the manifest's record of each."""
    wanted = set(services) if services else None
    if wanted and (unknown := wanted - set(botocore_services())):
        raise ExportError(f"botocore has no service {', '.join(sorted(unknown))}")
    docs: list[Document] = []
    record: dict[str, Any] = {}
    for name in names:
        source = SOURCES[name]
        if source.module is None:
            try:
                found = botocore_documents(list(services) if services else None)
            except ValueError as exc:
                raise ExportError(str(exc)) from None
            info: dict[str, Any] = {"package": "botocore", "version": botocore_version()}
        else:
            path = fetch(wheels, source.package, source.version)
            with open_wheel(path, source.package) as wheel:
                try:
                    found = source.reader()(wheel, wanted if name in AWS else None)
                except (KeyError, ValueError, OSError, StopIteration) as exc:  # a wheel laid out unlike the pin
                    raise ExportError(f"{source.package}: {path.name} cannot be read as {name} documentation "
                                      f"({type(exc).__name__}: {exc})") from None
            info = {"package": source.package, "version": source.version, "wheel": path.name,
                    "wheel_sha256": sha256_file(path)}
        info.update(licence=source.licence, documents=len(found),
                    services=len({d.service for d in found if d.service}))
        log.info("knowledge: %s %s: %d documents", source.package, info["version"], len(found))
        record[name] = info
        docs += found
    return docs, record


def fetch_all(directory: Path | None = None) -> list[Path]:
    """Every source's pinned wheel, downloaded into ``directory`` where missing (``scripts/setup.sh`` runs this)."""
    return [fetch(directory or default_dir(), s.package, s.version) for s in SOURCES.values() if s.module]


if __name__ == "__main__":  # python -m export.knowledge.sources: fetch every wheel, one line if one cannot be had
    import sys

    try:
        fetch_all()
    except ExportError as exc:
        sys.exit(f"export: error: {exc}")
