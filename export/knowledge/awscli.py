"""awscli's worked examples (``awscli/examples/<command>/<subcommand>.rst``, Apache-2.0) as documents.

Each example ("**To configure an S3 bucket as a static website**") becomes one
document: its heading, its prose and the command it runs, in a person's words.
Output blocks, input files and JSON are dropped: they carry no prose and would
fill passages with ids and timestamps. The command stays, joined onto one line,
since it is often the answer ("aws s3 sync . s3://amzn-s3-demo-bucket"); the
first one is also kept as written in ``Document.command`` for the page to show.
Only reStructuredText's handful of constructs these files use is understood.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import PurePosixPath

from export.knowledge.corpus import Document, tidy
from export.knowledge.services import resolve

PREFIX = "awscli/examples/"
REFERENCE = "https://docs.aws.amazon.com/cli/latest/reference/{command}/{sub}.html"
MAX_COMMAND_CHARS = 300  # in the text; a longer command is a transcript of arguments, cut at a word
_HEADING = re.compile(r"^\*\*(.+?)\*\*\s*$")
_EXAMPLE_N = re.compile(r"^example\s*\d+\s*[:.-]\s*", re.IGNORECASE)
_LINK = re.compile(r"`([^`<]*?)\s*<([^>`]+)>`_{1,2}")
_LITERAL = re.compile(r"``([^`]+)``")
_ROLE = re.compile(r":[a-z]+:`([^`]+)`")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")


def _inline(text: str, links: list[str]) -> str:
    """reStructuredText inline markup reduced to its words; link targets collected in ``links``."""
    def link(match: re.Match[str]) -> str:
        links.append(match.group(2).strip())
        return match.group(1)

    text = _LINK.sub(link, text)
    return _EMPHASIS.sub(r"\1", _ROLE.sub(r"\1", _LITERAL.sub(r"\1", text)))


def _blocks(lines: list[str]) -> list[tuple[str, str]]:
    """``("prose", text)`` paragraphs and ``("literal", text)`` blocks (the indented text after ``::``)."""
    out: list[tuple[str, str]] = []
    para: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            if para:
                out.append(("prose", " ".join(para)))
                para = []
            i += 1
            continue
        para.append(line.strip())
        i += 1
        if line.rstrip().endswith("::"):
            out.append(("prose", " ".join(para)))
            para = []
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i][:1] in " \t"):
                block.append(lines[i])
                i += 1
            out.append(("literal", "\n".join(block).strip("\n")))
    if para:
        out.append(("prose", " ".join(para)))
    return out


def _dedent(block: str) -> str:
    lines = block.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:].rstrip() for x in lines).strip()


def _one_line(command: str) -> str:
    """A command with its ``\\`` continuations joined, cut at a word past ``MAX_COMMAND_CHARS``."""
    joined = " ".join(part.strip().rstrip("\\").strip() for part in command.splitlines() if part.strip())
    if len(joined) <= MAX_COMMAND_CHARS:
        return joined
    return joined[:MAX_COMMAND_CHARS].rsplit(" ", 1)[0] + " ..."


def _example(heading: str, body: list[str]) -> tuple[str, str, str | None, str | None]:
    """(title, text, first command, first link) of one example."""
    links: list[str] = []
    parts: list[str] = []
    command: str | None = None
    blocks = _blocks(body)
    for n, (kind, text) in enumerate(blocks):
        if kind == "literal":
            code = _dedent(text)
            if code.startswith("aws "):  # the command is kept; output, JSON and input files are not
                command = command or code
                parts.append(_one_line(code))
            continue
        followed_by_drop = (n + 1 < len(blocks) and blocks[n + 1][0] == "literal"
                            and not _dedent(blocks[n + 1][1]).startswith("aws "))
        prose = _inline(text, links).rstrip(":").strip()
        if followed_by_drop and len(prose) < 80:  # "Output::", "Contents of policy.json::"
            continue
        if prose and prose.lower() not in {"command", "output"}:
            parts.append(prose if prose[-1:] in ".!?" else prose + ".")
    title = _EXAMPLE_N.sub("", _inline(heading, links)).strip()
    return title, tidy("\n".join(parts)), command, next((u for u in links if u.startswith("https://")), None)


def parse(command: str, sub: str, rst: str) -> list[tuple[str, str, str | None, str | None]]:
    """Every example of one ``.rst`` file: (title, text, command, link)."""
    sections: list[tuple[str, list[str]]] = []
    for line in rst.splitlines():
        if heading := _HEADING.match(line):
            sections.append((heading.group(1), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            sections.append((f"{command} {sub}", [line]))
    return [ex for heading, body in sections if (ex := _example(heading, body))[1]]


def documents(wheel: zipfile.ZipFile, services: set[str] | None) -> list[Document]:
    """The worked examples of every command whose service is in ``services`` (default: all)."""
    docs: list[Document] = []
    for name in sorted(wheel.namelist()):
        path = PurePosixPath(name)
        if not name.startswith(PREFIX) or path.suffix != ".rst" or len(path.parts) != 4:
            continue
        command, sub = path.parts[2], path.stem
        service = resolve(command)
        if services is not None and service not in services:
            continue
        examples = parse(command, sub, wheel.read(name).decode("utf-8", "replace"))
        for n, (title, text, cmd, link) in enumerate(examples):
            doc_id = f"awscli/{command}/{sub}" + (f"/{n + 1}" if len(examples) > 1 else "")
            url = link or REFERENCE.format(command=command, sub=sub)
            docs.append(Document(doc_id, f"aws {command} {sub}: {title}", text, url, service, "awscli", cmd))
    return docs


def attach(docs: list[Document]) -> list[Document]:
    """Each awscli example of an API command joined to the end of its botocore operation's document.

    ``aws sqs send-message`` illustrates botocore's ``sqs/SendMessage``: joined, one document says what the
    operation does and how it is run. Examples with no operation document (``aws s3 sync``, a service not
    in the build) stay documents of their own.
    """
    from botocore import xform_name

    operations = {}
    for doc in docs:
        if doc.source == "botocore" and "/" in doc.id:
            service, op = doc.id.split("/", 1)
            operations[(service, xform_name(op, "-"))] = doc
    joined: dict[str, list[Document]] = {}
    kept: list[Document] = []
    for doc in docs:
        if doc.source == "awscli":
            sub = doc.id.split("/")[2]
            if (target := operations.get((doc.service or "", sub))) is not None:
                joined.setdefault(target.id, []).append(doc)
                continue
        kept.append(doc)
    out = []
    for doc in kept:
        if examples := joined.get(doc.id):
            text = "\n".join([doc.text, *(f"Example: {e.title.split(': ', 1)[-1]}.\n{e.text}" for e in examples)])
            doc = Document(doc.id, doc.title, text, doc.url, doc.service, doc.source, examples[0].command)
        out.append(doc)
    return out
