"""aws-cdk-lib's module READMEs (Apache-2.0) as documents, one per section.

The PyPI wheel carries the npm package as a jsii tarball; each module's
``README.md`` is the AWS CDK's guide to that service ("grant read to a role",
a static site behind CloudFront). Sections (each ``#``-``###`` heading) become
documents titled with the module and heading. Code blocks are dropped: they
are TypeScript, which the model cannot read into an answer, and would bury the
prose in BM25. Generated stubs ("There are no official hand-written (L2)
constructs for this service yet") and READMEs with little prose are skipped.
"""

from __future__ import annotations

import io
import re
import tarfile
import zipfile

from export.knowledge.corpus import Document
from export.knowledge.docs import markdown_text
from export.knowledge.services import resolve_module

GUIDE = "https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.{module}-readme.html"  # module: aws_s3
CORE_GUIDE = "https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib-readme.html"
MIN_PROSE_CHARS = 1500  # below this a README is a stub or a pointer elsewhere
STUB = "There are no official hand-written"
_FENCE = re.compile(r"^\s*(```|~~~)")
_SECTION = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _prose(markdown: str) -> list[str]:
    """The README's lines without fenced code blocks, HTML comments and tables."""
    lines: list[str] = []
    fenced = False
    for line in _COMMENT.sub("", markdown).splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced and not line.lstrip().startswith("|"):
            lines.append(line)
    return lines


def _sections(lines: list[str]) -> list[tuple[str, str]]:
    """(heading, Markdown body) for each ``#`` to ``###`` section, in order; text before the first is the intro."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if heading := _SECTION.match(line):
            out.append((heading.group(2), []))
        else:
            out[-1][1].append(line)
    return [(h, "\n".join(body)) for h, body in out]


def _module(member: str) -> str | None:
    """``package/aws-s3/README.md`` -> ``aws-s3``; the root README is ``core``."""
    parts = member.split("/")
    if parts[-1] != "README.md" or parts[0] != "package":
        return None
    return "core" if len(parts) == 2 else "/".join(parts[1:-1]) if len(parts) == 3 else None


def documents(wheel: zipfile.ZipFile, services: set[str] | None) -> list[Document]:
    """Every prose README section of the modules whose service is in ``services`` (default: all)."""
    tarball = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
    docs: list[Document] = []
    with tarfile.open(fileobj=io.BytesIO(wheel.read(tarball)), mode="r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            module = _module(member.name)
            if module is None or not member.isfile():
                continue
            service = resolve_module(module)
            if services is not None and service not in services:
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            lines = _prose(handle.read().decode("utf-8", "replace"))
            if STUB in "\n".join(lines) or sum(len(x) for x in lines) < MIN_PROSE_CHARS:
                continue
            sections = _sections(lines)
            library = sections[1][0] if len(sections) > 1 else module  # "Amazon S3 Construct Library"
            url = CORE_GUIDE if module == "core" else GUIDE.format(module=module.replace("-", "_"))
            for n, (heading, body) in enumerate(sections):
                text, _ = markdown_text(body)
                if len(text) < 80:  # a heading with only code under it
                    continue
                title = f"AWS CDK, {library}" + (f": {heading}" if heading and heading != library else "")
                docs.append(Document(f"cdk/{module}/{n}", title, text, url, service, "cdk"))
    return docs
