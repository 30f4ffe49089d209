"""The Kubernetes API's object descriptions, as the ``kubernetes`` Python client ships them (Apache-2.0).

Each ``kubernetes/client/models/*.py`` module of the wheel is one API object
(``V1PodSpec``), generated from the Kubernetes OpenAPI document with its
descriptions: the class docstring says what the object is (client 37; 35's
carries only boilerplate), and each field is described in its pydantic
``Field(description=...)`` (client 37) or its property getter's docstring
(client 35 and earlier): both are read. The files are
parsed with :mod:`ast`, never imported. One document per object: its
description, then a ``fieldName: description`` line per described field, under
the JSON name a manifest uses (``restartPolicy``). The generator's boilerplate
("Do not edit the class manually", ``# noqa``, ``:rtype:``) is dropped.

The link is the object's definition in the generated API reference
(``.../kubernetes-api/v1.37/#podspec-v1-core``). Its anchor needs the object's
API group, which the model's name does not carry: it is read from the client's
API modules (which group returns which objects), and an object only nested in
others takes the group of the first object found to contain it. An object no
group reaches links to the reference's top.
"""

from __future__ import annotations

import ast
import re
import zipfile
from collections import deque
from dataclasses import dataclass, field

from export.knowledge.corpus import Document, tidy

MODELS = "kubernetes/client/models/"
APIS = "kubernetes/client/api/"
REFERENCE = "https://kubernetes.io/docs/reference/generated/kubernetes-api/{release}/"
# apimachinery's meta/v1 types: every group's API returns some of them (Status, APIResourceList ...)
META = frozenset({"V1APIGroup", "V1APIGroupList", "V1APIResource", "V1APIResourceList", "V1APIVersions",
                  "V1Condition", "V1DeleteOptions", "V1FieldSelectorRequirement", "V1GroupVersionForDiscovery",
                  "V1LabelSelector", "V1LabelSelectorRequirement", "V1ListMeta", "V1ManagedFieldsEntry",
                  "V1ObjectMeta", "V1OwnerReference", "V1Preconditions", "V1ServerAddressByClientCIDR",
                  "V1Status", "V1StatusCause", "V1StatusDetails", "V1WatchEvent"})
_NAME = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")  # CoreV1EndpointPort, V1beta1X
_RELEASE = re.compile(r"version of the OpenAPI document:\s*release-(\d+\.\d+)")
_PATH = re.compile(r"""['"]/api(?:s/([^/{'"]+))?/(v\d\w*)/""")  # resource_path='/apis/apps/v1/...
_QUOTED = re.compile(r"""["']([A-Z][A-Za-z0-9]+)["']""")
_TYPE = re.compile(r"\b([A-Z][A-Za-z0-9]+)\b")
_METHOD = re.compile(r"\n    (?:@|def |async def )")
_TICKS = re.compile(r"`+([^`]*)`+")
_NOQA = re.compile(r"\s*#\s*noqa(?::\s*[A-Z]\d+(?:\s*,\s*[A-Z]\d+)*)?")
_BOILERPLATE = re.compile(
    r"^(NOTE: This class is auto generated.*|Ref: https://openapi-generator\.tech.*|Do not edit the class manually\.?"
    r"|[GS]ets the \w+ of this \w+\.?|:(?:param|return|rtype|type)\b.*|Attributes:.*"
    r"|(?:openapi_types|attribute_map) \(dict\):.*|and the value is .*)$")


@dataclass
class Model:
    """What one model module says: the object's description, its described fields, and the objects it holds."""

    name: str
    description: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # JSON name -> description
    refs: list[str] = field(default_factory=list)  # model names its fields are typed with


def clean(docstring: str) -> str:
    """A generated docstring's prose: boilerplate lines, ``# noqa`` and backticks gone, whitespace tidied."""
    lines = []
    for line in _NOQA.sub("", docstring).splitlines():
        line = line.strip()
        if not _BOILERPLATE.match(line):
            lines.append(line)
    return tidy(_TICKS.sub(r"\1", "\n".join(lines)))


def _literal_dict(node: ast.expr | None) -> dict[str, str]:
    try:
        value = ast.literal_eval(node) if node is not None else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _field_description(call: ast.expr | None) -> str | None:
    """``Field(..., description="...")``'s description."""
    if not isinstance(call, ast.Call):
        return None
    for keyword in call.keywords:
        if keyword.arg == "description" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value if isinstance(keyword.value.value, str) else None
    return None


def _is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def _fields_only(source: str) -> str | None:
    """A pydantic model's class up to its first method: all that describes it, a fraction of the module to parse."""
    start = source.find("\nclass ")
    if start < 0 or "BaseModel" not in source:
        return None  # older clients describe fields in property getters: the whole class is needed
    end = _METHOD.search(source, start)
    return source[start + 1:end.start()] if end else None


def _parse(source: str) -> ast.Module | None:
    for text in (_fields_only(source), source):
        if text is not None:
            try:
                return ast.parse(text)
            except (SyntaxError, ValueError):
                continue
    return None


def model(source: str) -> Model | None:
    """The first model class of a module's source; None if it has none or does not parse."""
    tree = _parse(source)
    if tree is None:
        return None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if cls is None:
        return None
    found = Model(cls.name, clean(ast.get_docstring(cls, clean=True) or ""))
    tables: dict[str, dict[str, str]] = {}
    described: dict[str, str] = {}  # attribute name -> description
    for node in cls.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if not isinstance(target, ast.Name):
                continue
            if target.id in {"openapi_types", "attribute_map"}:
                tables[target.id] = _literal_dict(node.value)
            elif isinstance(node, ast.AnnAssign) and (text := _field_description(node.value)) is not None:
                described[target.id] = text  # pydantic models (client 37)
        elif isinstance(node, ast.FunctionDef) and _is_property(node) and (doc := ast.get_docstring(node)):
            described.setdefault(node.name, doc)  # getters (earlier clients)
    names = tables.get("attribute_map", {})
    for attribute, text in described.items():
        if prose := clean(text):
            found.fields[names.get(attribute, attribute)] = prose
    for kind in tables.get("openapi_types", {}).values():
        found.refs += [t for t in _TYPE.findall(kind) if t not in {"List", "Dict", "Optional"}]
    return found


def _anchor(name: str, group: str) -> str | None:
    """``V1PodSpec``, ``core`` -> ``podspec-v1-core``, as the generated API reference names its definitions."""
    parts = _NAME.match(name)
    if parts is None:
        return None
    return f"{parts.group(3).lower()}-{parts.group(2).lower()}-{group.replace('.', '-')}"


def groups(wheel: zipfile.ZipFile, models: dict[str, Model]) -> dict[str, str]:
    """Model name -> API group (``core``, ``apps``, ``networking.k8s.io``, ``meta``), where it can be told."""
    found = dict.fromkeys(META & models.keys(), "meta")
    named: dict[str, str] = {}  # a group's first word -> the group: "rbac" -> "rbac.authorization.k8s.io"
    seeds: list[tuple[str, list[str]]] = []
    apis = sorted((n for n in wheel.namelist() if n.startswith(APIS) and n.endswith("_api.py")),
                  key=lambda n: (not n.endswith("/core_v1_api.py"), n))  # core first: it holds most shared types
    for name in apis:
        source = wheel.read(name).decode("utf-8", "replace")
        path = _PATH.search(source)
        if path is None:
            continue
        group = path.group(1) or "core"
        named.setdefault(group.split(".")[0], group)
        seeds.append((group, [m for m in dict.fromkeys(_QUOTED.findall(source)) if m in models]))
    for name in models:  # a name that says its group: CoreV1EndpointPort, EventsV1Event
        parts = _NAME.match(name)
        if parts and parts.group(1) and (group := named.get(parts.group(1).lower())):
            found.setdefault(name, group)
            seeds.append((group, [name]))
    for group, names in seeds:
        for name in names:
            found.setdefault(name, group)
    for group, names in seeds:  # what each group's objects hold, breadth first
        queue = deque(names)
        while queue:
            for ref in models[queue.popleft()].refs:
                if ref in models and ref not in found:
                    found[ref] = group
                    queue.append(ref)
    return found


def documents(wheel: zipfile.ZipFile, services: set[str] | None) -> list[Document]:
    """Every API object the client describes (``services`` is for AWS sources only)."""
    models: dict[str, Model] = {}
    release: str | None = None
    for name in sorted(wheel.namelist()):
        if not name.startswith(MODELS) or not name.endswith(".py") or "/" in name[len(MODELS):]:
            continue
        source = wheel.read(name).decode("utf-8", "replace")
        if release is None and (match := _RELEASE.search(source[:2000])):
            release = f"v{match.group(1)}"
        if (found := model(source)) is not None and found.name not in models:
            models[found.name] = found
    where = groups(wheel, models)
    docs: list[Document] = []
    for name, found in sorted(models.items()):
        lines = [found.description] + [f"{key}: {text}" for key, text in sorted(found.fields.items())]
        text = tidy("\n".join(x for x in lines if x))
        if not text:
            continue
        url = None
        if release is not None:
            anchor = _anchor(name, where[name]) if name in where else None
            url = REFERENCE.format(release=release) + (f"#{anchor}" if anchor else "")
        docs.append(Document(f"kubernetes/{name}", f"Kubernetes {name}", text, url, None, "kubernetes"))
    return docs
