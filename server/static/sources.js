// The sources under an answer: one entry per document, in rank order, labelled with the corpus it came
// from and its service; the passages the model read open under it, and a CLI example shows its command.
// Everything here is data from the knowledge base: it goes into the page as text (textContent), never as
// markup, and only an absolute http(s) URL becomes a link.
"use strict";

const SOURCE_KINDS = {
  botocore: "API reference", awscli: "CLI example", cdk: "CDK guide", cloudformation: "CloudFormation",
  azure: "Azure CLI", kubernetes: "Kubernetes API", docs: "Your docs",
};

// "sqs/SendMessage#0" -> "sqs/SendMessage": the document a passage belongs to.
function documentId(id) {
  const text = String(id ?? "");
  const hash = text.lastIndexOf("#");
  return hash > 0 ? text.slice(0, hash) : text;
}

// The URL as a link may use it, or null: only http: and https:, never javascript:, data: or a relative path.
function linkable(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// Passages of one document together, in the rank order of each document's best passage.
function groupSources(found) {
  const groups = new Map();
  for (const source of found) {
    if (!source || typeof source !== "object") continue;
    const key = documentId(source.id);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(source);
  }
  return [...groups.values()];
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function sourceEntry(passages) {
  const [first] = passages;
  const entry = element("li", "source");
  entry.dataset.document = documentId(first.id);
  const kind = SOURCE_KINDS[first.source] ?? (typeof first.source === "string" ? first.source : null);
  if (kind) entry.append(element("span", "kind", kind), " ");
  if (typeof first.service === "string" && first.service) entry.append(element("span", "service", first.service), " ");
  const title = String(first.title ?? first.id ?? "");
  const url = passages.map((p) => linkable(p.url)).find(Boolean);
  if (url) {
    const link = element("a", "title", title);
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    entry.append(link);
  } else {
    entry.append(element("span", "title", title));
  }
  const commands = [...new Set(passages.map((p) => p.command).filter((c) => typeof c === "string" && c))];
  for (const command of commands) {
    const block = element("pre", "command");
    block.append(element("code", null, command));
    entry.append(block);
  }
  const texts = passages.filter((p) => typeof p.text === "string" && p.text);
  if (texts.length > 0) {
    const details = element("details", "passages");
    details.append(element("summary", null, `${texts.length} passage${texts.length === 1 ? "" : "s"}`));
    for (const passage of texts) details.append(element("p", "passage", passage.text));
    entry.append(details);
  }
  return entry;
}

// The <ol class="sources"> for an answer's sources, or null when there are none.
function sourceList(found) {
  if (!Array.isArray(found) || found.length === 0) return null;
  const box = element("ol", "sources");
  box.append(...groupSources(found).map(sourceEntry));
  return box;
}
