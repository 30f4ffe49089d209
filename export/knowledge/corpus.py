"""Documents for the knowledge base: AWS's service documentation from botocore, and your own files.

botocore ships every AWS service model with AWS's own documentation in it
(Apache-2.0): a service overview and a description of each operation, in
HTML. Each becomes one :class:`Document` with its text stripped of markup and
entities decoded. ``--docs DIR`` adds Markdown, HTML and plain-text files.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

log = logging.getLogger("iscoolgpt.export")

API_REFERENCE = "https://docs.aws.amazon.com/goto/WebAPI/{uid}/{operation}"  # AWS's stable API reference link
DOC_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".txt": "text",
                ".rst": "text"}
_BLOCK = {"p", "li", "ul", "ol", "br", "div", "important", "note", "h1", "h2", "h3", "h4", "h5", "h6",
          "tr", "table", "dd", "dt", "pre", "section", "title"}
_SPACE = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\s*\n\s*")
_CODE = re.compile(r"(`+)(.+?)\1")  # a code span: its text is kept as written
_STARS = re.compile(r"\*{1,3}(?=\S)(.+?)(?<=\S)\*{1,3}")  # *em*, **strong**, ***both***
_UNDERSCORES = re.compile(r"(?<!\w)_{1,3}(?=\S)(.+?)(?<=\S)_{1,3}(?!\w)")  # never intraword: my_var_name stays


@dataclass(frozen=True)
class Document:
    """One unit of documentation: a service overview, an operation, or one of your files."""

    id: str  # stable and unique: "sqs", "sqs/SendMessage", "docs/guide/setup.md"
    title: str
    text: str
    url: str | None
    service: str | None  # botocore service id, None for your own files
    source: str  # "botocore" or the path of the file relative to its --docs directory


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


def _latest_model(service_dir: Path) -> Path | None:
    """The newest API version's service model (botocore keeps old versions beside it)."""
    models = sorted(service_dir.glob("*/service-2.json*"))
    return models[-1] if models else None


def _load_model(path: Path) -> dict[str, object]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data: dict[str, object] = json.load(fh)
    return data


def botocore_services() -> list[str]:
    """Ids of every service botocore ships a model for."""
    return sorted(p.name for p in botocore_data().iterdir() if p.is_dir() and _latest_model(p) is not None)


def botocore_documents(services: list[str] | None = None) -> list[Document]:
    """The overview and each operation of ``services`` (default: all), as botocore documents them."""
    wanted = services if services is not None else botocore_services()
    unknown = [s for s in wanted if _latest_model(botocore_data() / s) is None]
    if unknown:
        raise ValueError(f"botocore has no service {', '.join(sorted(unknown))}")
    docs: list[Document] = []
    for service in wanted:
        model = _load_model(_latest_model(botocore_data() / service))  # type: ignore[arg-type]
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


def _emphasis(text: str) -> str:
    """``*em*``, ``**strong**``, ``_em_`` and ``__strong__`` without their markers; ``snake_case`` untouched."""
    return _UNDERSCORES.sub(r"\1", _STARS.sub(r"\1", text))


def _inline(line: str) -> str:
    """A Markdown line's code spans and emphasis reduced to their text."""
    out: list[str] = []
    at = 0
    for code in _CODE.finditer(line):
        out += [_emphasis(line[at:code.start()]), code.group(2)]
        at = code.end()
    return "".join([*out, _emphasis(line[at:])])


def _markdown(text: str) -> tuple[str, str | None]:
    """Text of a Markdown file with its syntax thinned out, and its first heading."""
    title = None
    lines = []
    for line in text.splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and title is None:
            title = heading.group(1).strip()
            continue
        line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", line)  # images: keep the alt text
        line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links: keep the words
        line = re.sub(r"^\s{0,3}(#{1,6}|[-*+]|\d+[.)]|>)\s+", "", line)
        lines.append(_inline(line))
    return tidy("\n".join(lines)), title


def _shown(path: str | Path) -> str:
    """A path fit for a log line: bytes that are not UTF-8 shown as backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    """Whether a file name decoded from the file system is valid UTF-8 (else it holds surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _files(root: Path) -> list[Path]:
    """Every file under ``root``; directories that cannot be listed or entered are skipped with a warning."""

    def unlistable(exc: OSError) -> None:
        log.warning("skipping %s: %s", _shown(exc.filename or root), exc.strerror or exc)

    files: list[Path] = []
    for top, dirs, names in os.walk(root, onerror=unlistable):
        here = Path(top)
        for name in list(dirs):
            if not _is_utf8(name):
                log.warning("skipping %s: its name is not valid UTF-8", _shown(here / name))
                dirs.remove(name)
            elif os.path.islink(here / name):  # never followed, so a link cannot loop
                log.warning("skipping %s: a symbolic link to a directory is not followed", _shown(here / name))
                dirs.remove(name)
        files += (here / name for name in names)
    return sorted(files)


def _read(path: Path) -> str:
    """A regular file's UTF-8 text; ``OSError`` or ``ValueError`` says why it cannot be had."""
    if path.is_symlink() and not path.exists():
        raise ValueError("broken symbolic link")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block or never end
        raise ValueError("not a regular file")
    with path.open("rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced since it was looked at
            raise ValueError("not a regular file")
        raw = fh.read()
    if b"\0" in raw:
        raise ValueError("binary content")
    return raw.decode("utf-8")


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # the path is named already; the exception's copy of it may not be printable
    return str(exc) or type(exc).__name__


def read_docs(root: Path) -> list[Document]:
    """Markdown, HTML and text files under ``root``; unreadable or binary files are skipped with a warning.

    A file's content and name are untrusted: whatever fails for one file (reading it, decoding it, parsing
    it) skips that file with a warning naming it, and never the build.
    """
    if not root.is_dir():
        raise ValueError(f"--docs {root}: not a directory")
    docs: list[Document] = []
    for path in _files(root):
        shown = _shown(path)
        rel = path.relative_to(root).as_posix()
        if not _is_utf8(rel):
            log.warning("skipping %s: its name is not valid UTF-8", shown)
            continue
        kind = DOC_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            log.warning("skipping %s: not Markdown, HTML or text", shown)
            continue
        try:
            content = _read(path)
        except Exception as exc:  # one bad file skips that file, whatever went wrong
            log.warning("skipping %s: %s", shown, _why(exc))
            continue
        try:
            if kind == "markdown":
                text, title = _markdown(content)
            elif kind == "html":
                text, title = html_to_text(content)
            else:
                text, title = tidy(content), None
        except Exception as exc:  # e.g. HTMLParser's AssertionError on "<![foo"
            log.warning("skipping %s: cannot parse it as %s (%s: %s)", shown, kind, type(exc).__name__, exc)
            continue
        if not text:
            log.warning("skipping %s: no text", shown)
            continue
        docs.append(Document(f"docs/{rel}", title or path.stem.replace("-", " ").replace("_", " "), text,
                             None, None, rel))
    return docs
