// The chat page: POST /chat/ with "stream": true, show the answer as its events arrive, then its sources.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");

fetch("/health").then((r) => r.json()).then((h) => {
  document.getElementById("model").textContent = h.model;
}).catch(() => {});

function bubble(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  const body = document.createElement("div");
  body.className = "answer";
  body.textContent = text;
  item.append(body);
  log.append(item);
  return item;
}

// The passages an answer was grounded on, in rank order: a link where the passage has one.
function sources(item, list) {
  if (!list || list.length === 0) return;
  const box = document.createElement("ol");
  box.className = "sources";
  for (const source of list) {
    const entry = document.createElement("li");
    const label = source.url ? document.createElement("a") : document.createElement("span");
    label.textContent = source.title;
    if (source.url) {
      label.href = source.url;
      label.target = "_blank";
      label.rel = "noopener noreferrer";
    }
    entry.append(label);
    box.append(entry);
  }
  item.append(box);
}

function meta(item, text) {
  const line = document.createElement("div");
  line.className = "meta";
  line.textContent = text;
  item.append(line);
}

// Server-Sent Events come as "event: NAME\ndata: JSON\n\n"; split on the blank line.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = (block.match(/^event: (.*)$/m) || [, "message"])[1];
      const data = (block.match(/^data: (.*)$/m) || [, "{}"])[1];
      yield [name, JSON.parse(data)];
    }
  }
}

async function ask(question) {
  bubble("question", question);
  const item = bubble("reply", "");
  const answer = item.querySelector(".answer");
  const headers = { "content-type": "application/json" };
  const key = document.getElementById("api_key").value.trim();
  if (key) headers.authorization = `Bearer ${key}`;
  const body = {
    question, stream: true,
    temperature: Number(document.getElementById("temperature").value),
    max_new_tokens: Number(document.getElementById("max_new_tokens").value),
  };
  // Grounded is the server's default when it has a knowledge base; only a "no" is sent.
  if (!document.getElementById("grounded").checked) body.grounded = false;
  const started = performance.now();
  let first = null;
  try {
    const response = await fetch("/chat/", { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(`${response.status}: ${error.error}`);
    }
    for await (const [name, data] of events(response)) {
      if (name === "token") {
        first ??= performance.now();
        answer.textContent += data.text;
      } else if (name === "done") {
        answer.textContent = data.answer;
        sources(item, data.sources);
        const total = (performance.now() - started) / 1000;
        const ttft = first === null ? total : (first - started) / 1000;
        meta(item, `${data.usage.completion_tokens} tokens · first piece ${ttft.toFixed(2)} s · ` +
                   `total ${total.toFixed(2)} s · ${data.finish_reason}`);
      } else if (name === "error") {
        throw new Error(`${data.error_type}: ${data.error}`);
      }
    }
  } catch (error) {
    item.classList.add("error");
    answer.textContent = error.message;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  send.disabled = true;
  try {
    await ask(question);
  } finally {
    send.disabled = false;
    input.focus();
  }
});
