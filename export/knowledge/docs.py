"""``--docs DIR``: your own Markdown, HTML and plain-text files as knowledge-base documents.

A file's title is its first heading (or HTML ``<title>``), else its name; its
path relative to ``DIR`` is its id. Content and names are untrusted: a file
that cannot be read, decoded, parsed or named in UTF-8 is skipped with a warning
naming it, never the build.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from export.knowledge.corpus import Document, html_to_text, tidy

log = logging.getLogger("iscoolgpt.export")

DOC_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".txt": "text",
                ".rst": "text"}
# A span never crosses its own marker: each match then scans only to the next marker, so a hostile line
# ("*a " twenty thousand times) costs linear time, not quadratic.
_CODE = re.compile(r"(`+)([^`]+?)\1")  # a code span: its text is kept as written
_STARS = re.compile(r"\*{1,3}(?=[^*\s])([^*]+?)(?<=[^*\s])\*{1,3}")  # *em*, **strong**, ***both***
_UNDERSCORES = re.compile(r"(?<!\w)_{1,3}(?=[^_\s])([^_]+?)(?<=[^_\s])_{1,3}(?!\w)")  # never intraword: my_var_name
MAX_FILE_BYTES = 16 << 20  # a documentation page is far smaller; a bigger file is not documentation


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


def markdown_text(text: str) -> tuple[str, str | None]:
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


def _read(path: Path, root: Path) -> str:
    """A regular file's UTF-8 text; ``OSError`` or ``ValueError`` says why it cannot be had."""
    if path.is_symlink():  # followed only within the folder: a link must not pull in ~/.aws/credentials
        if not path.exists():
            raise ValueError("broken symbolic link")
        path = path.resolve()
        if not path.is_relative_to(root.resolve()):
            raise ValueError("a symbolic link to a file outside the folder is not followed")
    # O_NONBLOCK: a FIFO put in the file's place is not waited on; what was opened is checked, not the name.
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise ValueError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
        raw = fh.read(MAX_FILE_BYTES + 1)
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
            content = _read(path, root)
        except Exception as exc:  # one bad file skips that file, whatever went wrong
            log.warning("skipping %s: %s", shown, _why(exc))
            continue
        try:
            if kind == "markdown":
                text, title = markdown_text(content)
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
                             None, None, "docs"))
    return docs
