"""Documents for the knowledge base: AWS's service documentation from botocore, and your own files.

botocore ships every AWS service model with AWS's own documentation in it
(Apache-2.0): a service overview and a description of each operation, in
HTML. Each becomes one :class:`Document` with its text stripped of markup and
entities decoded. Your own files (``--docs DIR``) are read by :mod:`export.knowledge.docs`.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

log = logging.getLogger("iscoolgpt.export")

API_REFERENCE = "https://docs.aws.amazon.com/goto/WebAPI/{uid}/{operation}"  # AWS's stable API reference link
_BLOCK = {"p", "li", "ul", "ol", "br", "div", "important", "note", "h1", "h2", "h3", "h4", "h5", "h6",
          "tr", "table", "dd", "dt", "pre", "section", "title"}
_SPACE = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\s*\n\s*")


@dataclass(frozen=True)
class Document:
    """One unit of documentation: a service overview, an operation, or one of your files."""

    id: str  # stable and unique: "sqs", "sqs/SendMessage", "docs/guide/setup.md"
    title: str
    text: str
    url: str | None
    service: str | None  # botocore service id, None for your own files
    source: str  # which corpus: "botocore", "awscli", "cdk", "cloudformation", "azure", "kubernetes", "docs"
    command: str | None = None  # a CLI example's command, as written, for the page to show as code


class _Text(HTMLParser):
    """Visible text of an HTML fragment; block elements end a line, scripts and styles vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: str | None = None
        self._skip = 0
        self._heading: list[str] | None = None
        self._title_at: int | None = None  # where <title>'s text begins in parts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in {"h1", "title"} and self.title is None:
            self._heading = []
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "title":
            self._title_at = len(self.parts)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag in {"h1", "title"} and self._heading is not None:
            self.title = " ".join("".join(self._heading).split()) or None
            self._heading = None
        if tag == "title" and self._title_at is not None:
            del self.parts[self._title_at:]  # a page's <title> is not part of its body (left in if never closed)
            self._title_at = None
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._heading is not None:
            self._heading.append(data)


def tidy(text: str) -> str:
    """Collapse runs of spaces, keep one line break between blocks."""
    return _LINES.sub("\n", _SPACE.sub(" ", text)).strip()


def html_to_text(fragment: str) -> tuple[str, str | None]:
    """Plain text of an HTML fragment and its first ``<h1>``/``<title>``, if any."""
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return tidy(html.unescape("".join(parser.parts))), parser.title


def botocore_data() -> Path:
    import botocore

    return Path(botocore.__file__).parent / "data"


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


def latest_model(service_dir: Path) -> Path | None:
    """The newest API version's service model (botocore keeps old versions beside it)."""
    models = sorted(service_dir.glob("*/service-2.json*"))
    return models[-1] if models else None


def load_model(path: Path) -> dict[str, object]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data: dict[str, object] = json.load(fh)
    return data


def botocore_services() -> list[str]:
    """Ids of every service botocore ships a model for."""
    return sorted(p.name for p in botocore_data().iterdir() if p.is_dir() and latest_model(p) is not None)


def botocore_documents(services: list[str] | None = None) -> list[Document]:
    """The overview and each operation of ``services`` (default: all), as botocore documents them."""
    wanted = services if services is not None else botocore_services()
    unknown = [s for s in wanted if latest_model(botocore_data() / s) is None]
    if unknown:
        raise ValueError(f"botocore has no service {', '.join(sorted(unknown))}")
    docs: list[Document] = []
    for service in wanted:
        model = load_model(latest_model(botocore_data() / service))  # type: ignore[arg-type]
        meta = model.get("metadata", {})
        assert isinstance(meta, dict)
        name = str(meta.get("serviceFullName") or meta.get("serviceId") or service)
        uid = meta.get("uid")
        overview, _ = html_to_text(str(model.get("documentation", "")))
        if overview:
            url = API_REFERENCE.format(uid=uid, operation="").rstrip("/") if uid else None
            docs.append(Document(service, name, overview, url, service, "botocore"))
        operations = model.get("operations", {})
        assert isinstance(operations, dict)
        for op_name, op in sorted(operations.items()):
            text, _ = html_to_text(str(op.get("documentation", "")))
            if not text:
                continue
            url = op.get("documentationUrl") or (API_REFERENCE.format(uid=uid, operation=op_name) if uid else None)
            docs.append(Document(f"{service}/{op_name}", f"{name}: {op_name}", text, url, service, "botocore"))
    return docs
