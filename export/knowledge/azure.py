"""The Azure CLI's own help (``azure-cli``, MIT) as documents, one per command or command group.

Each command module of the ``azure-cli`` wheel declares its help in Python files
(``azure/cli/command_modules/vm/_help.py``) as YAML strings,
``helps['vm create'] = \"\"\"type: command ...\"\"\"``. They are read from the
zip's text with :mod:`ast`, never imported (importing them needs the whole CLI
and runs its code), and the YAML is read with PyYAML's safe loader. A document
is the entry's short and long summary, then each example as its description
and its command on one line; the first example's command is kept as written in
``Document.command``. An entry that is not plain YAML, or has no summary, is
skipped.
"""

from __future__ import annotations

import ast
import logging
import re
import zipfile
from typing import Any

import yaml

from export.knowledge.corpus import Document, tidy

log = logging.getLogger("iscoolgpt.export")

PREFIX = "azure/cli/command_modules/"
REFERENCE = "https://learn.microsoft.com/cli/azure/{page}?view=azure-cli-latest"
MAX_TITLE_CHARS = 160  # a longer summary is cut to its first sentence in the title (the text keeps it whole)
MAX_COMMAND_CHARS = 300  # in the text; a longer command is a transcript of arguments, cut at a word
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_TICKS = re.compile(r"`+([^`]*)`+")
_ITEM = re.compile(r"^(?:[-*•]\s|\d+[.)]\s|\[[A-Z]+\]|[A-Z][\w ]{0,30}:\s)")  # a list item, [WARNING], "Note: "
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there: ten times faster


def _value(node: ast.expr, names: dict[str, str]) -> str | None:
    """The string a help assignment's right side spells: a literal, an f-string of the file's constants, a sum."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left, names), _value(node.right, names)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                text = _value(part.value, names) if part.format_spec is None else None
                if text is None:
                    return None
                parts.append(text)
            elif (text := _value(part, names)) is not None:
                parts.append(text)
        return "".join(parts)
    return None


def helps(source: str) -> list[tuple[str, str]]:
    """``(command, YAML)`` for every ``helps['...'] = '...'`` in a Python file, in order; unreadable ones left out."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name):
            if (text := _value(node.value, names)) is not None:
                names[target.id] = text  # a shared note an f-string puts in (OUTPUT_WITH_SECRET_HELP)
        elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
              and target.value.id == "helps"):
            key, text = _value(target.slice, names), _value(node.value, names)
            if key and text is not None:
                out.append((" ".join(key.split()), text))
    return out


def _plain(value: object) -> str:
    """A help string's words: lines of a paragraph joined (list items kept apart), Markdown links keep their
    text and address, backticks go, whitespace tidied."""
    if not isinstance(value, str):
        return ""
    lines: list[str] = []
    for line in value.splitlines():
        line = line.strip()
        if lines and lines[-1] and line and not _ITEM.match(line):
            lines[-1] += " " + line  # a literal block's hard wrap, not a new thought
        else:
            lines.append(line)
    return tidy(_TICKS.sub(r"\1", _LINK.sub(r"\1 (\2)", "\n".join(lines))))


def _sentence(text: str) -> str:
    return text if not text or text[-1] in ".!?:" else text + "."


def _headline(summary: str) -> str:
    """A summary short enough for a title: its first sentence when it runs past ``MAX_TITLE_CHARS``."""
    summary = _sentence(" ".join(summary.split()))
    if len(summary) <= MAX_TITLE_CHARS:
        return summary
    first = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0]
    return first if len(first) <= MAX_TITLE_CHARS else first[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] + " ..."


def _one_line(command: str) -> str:
    """A command with its ``\\`` continuations joined, cut at a word past ``MAX_COMMAND_CHARS``."""
    joined = " ".join(part.strip().rstrip("\\").strip() for part in command.splitlines() if part.strip())
    if len(joined) <= MAX_COMMAND_CHARS:
        return joined
    return joined[:MAX_COMMAND_CHARS].rsplit(" ", 1)[0] + " ..."


def url(command: str, kind: str) -> str:
    """The entry's page on learn.microsoft.com: a group's own page, a command's anchor on its group's page."""
    words = command.split()
    if kind == "group":
        return REFERENCE.format(page="/".join(words))
    page = "/".join(words[:-1]) or "reference-index"  # top-level commands (az login) live on the index
    return REFERENCE.format(page=page) + "#az-" + "-".join(words)


def entry(command: str, text: str) -> Document | None:
    """One help entry as a document; None when it is not YAML of the expected shape or says nothing."""
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader: plain data, never objects
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    short, long = _plain(data.get("short-summary")), _plain(data.get("long-summary"))
    if not short and not long:
        return None
    lines = [_sentence(short), _sentence(long)]
    first: str | None = None
    examples = data.get("examples")
    for example in examples if isinstance(examples, list) else []:
        if not isinstance(example, dict) or not isinstance(example.get("text"), str):
            continue
        code = example["text"].strip()
        if not code:
            continue
        first = first or code
        name = _plain(example.get("name")).rstrip(".:").strip()
        lines.append(f"{name}: {_one_line(code)}" if name else _one_line(code))
    kind = str(data.get("type") or "command")
    title = f"Azure CLI az {command}" + (f": {_headline(short)}" if short else "")
    return Document(f"azure/{command.replace(' ', '/')}", title, tidy("\n".join(x for x in lines if x)),
                    url(command, kind), None, "azure", first)


def documents(wheel: zipfile.ZipFile, services: set[str] | None) -> list[Document]:
    """Every command and command group the wheel's modules document (``services`` is for AWS sources only)."""
    found: dict[str, tuple[str, str]] = {}  # command -> (file, YAML); a later file (manual/ after generated/) wins
    for name in sorted(wheel.namelist()):
        if not name.startswith(PREFIX) or not name.endswith(".py"):
            continue
        source = wheel.read(name).decode("utf-8", "replace")
        if "helps[" not in source:
            continue
        for command, text in helps(source):
            found[command] = (name, text)
    docs: list[Document] = []
    skipped = 0
    for command in sorted(found):
        doc = entry(command, found[command][1])
        if doc is None:
            skipped += 1
        else:
            docs.append(doc)
    if skipped:
        log.debug("azure: %d help entries without a readable summary skipped", skipped)
    return docs
