// The chat page: conversations in a sidebar, answers streamed from POST /chat/ with their sources.
// The open conversation and the token are kept in this browser's localStorage, so a reload reopens both.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");
const list = document.getElementById("conversations");
const sidebar = document.getElementById("sidebar");
const tokenField = document.getElementById("api_key");
const OPEN = "iscoolgpt.conversation";
const TOKEN = "iscoolgpt.token";
const STARTED = "iscoolgpt.conversations";  // ids of the conversations this browser took part in
const KEEP = 50;
const known = new Map();  // id -> {id, title}: each remembered conversation is fetched once per page load

tokenField.value = localStorage.getItem(TOKEN) || "";
tokenField.addEventListener("change", () => {
  localStorage.setItem(TOKEN, tokenField.value.trim());
  refresh();
});

// Sign-in, when the server names an identity provider (GET /auth/config): the OAuth 2.0 authorization
// code flow with PKCE, as a page that keeps no secret must use it. The access token lands in the token field.
const signIn = document.getElementById("sign_in");
const PKCE = "iscoolgpt.pkce";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function startSignIn(config) {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code", client_id: config.client_id, redirect_uri: location.origin + "/",
    scope: config.scope, state, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${config.authorize_url}?${query}`);
}

async function finishSignIn(config) {
  const params = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem(PKCE) || "null");
  if (!params.has("code") && !params.has("error")) return;
  sessionStorage.removeItem(PKCE);
  history.replaceState(null, "", location.pathname);  // the code is single-use: off the address bar
  if (params.has("error")) throw new Error(`sign-in: ${params.get("error_description") || params.get("error")}`);
  if (!saved || params.get("state") !== saved.state) throw new Error("sign-in: the state does not match");
  const response = await fetch(config.token_url, {
    method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", client_id: config.client_id, code: params.get("code"),
      redirect_uri: location.origin + "/", code_verifier: saved.verifier,
    }),
  });
  if (!response.ok) throw new Error(`sign-in: the token endpoint answered ${response.status}`);
  const tokens = await response.json();
  tokenField.value = tokens.access_token;
  localStorage.setItem(TOKEN, tokens.access_token);
  refresh();
}

fetch("/auth/config").then((r) => r.json()).then(async ({ sign_in: config }) => {
  if (!config) return;
  signIn.hidden = false;
  signIn.addEventListener("click", () => startSignIn(config));
  await finishSignIn(config);
}).catch((error) => console.warn(error));

fetch("/health").then((r) => r.json()).then((h) => {
  document.getElementById("model").textContent = h.model;
}).catch(() => {});

function headers(json) {
  const h = json ? { "content-type": "application/json" } : {};
  const key = tokenField.value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function api(method, path) {
  const response = await fetch(path, { method, headers: headers(false) });
  if (!response.ok) {
    const error = await response.json().catch(() => ({ error: response.statusText }));
    throw Object.assign(new Error(`${response.status}: ${error.error}`), { status: response.status });
  }
  return response.status === 204 ? null : response.json();
}

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

// The passages an answer was grounded on (rendered by sources.js).
function sources(item, found) {
  const box = sourceList(found);
  if (box) item.append(box);
}

function meta(item, text) {
  const line = document.createElement("div");
  line.className = "meta";
  line.textContent = text;
  item.append(line);
}

// The conversations this browser took part in, most recent first: with no sign-in on the server an id
// is its conversation's only key, and the server will not list them, so the page keeps them itself.
function remembered() {
  try {
    const ids = JSON.parse(localStorage.getItem(STARTED) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

function remember(id) {
  localStorage.setItem(STARTED, JSON.stringify([id, ...remembered().filter((x) => x !== id)].slice(0, KEEP)));
}

function unremember(id) {
  known.delete(id);
  localStorage.setItem(STARTED, JSON.stringify(remembered().filter((x) => x !== id)));
}

// The remembered conversations that still exist, as GET /conversations would list them: one that is
// 404 (deleted elsewhere) is forgotten; one that fails otherwise is kept for next time but not shown.
async function rememberedConversations() {
  const found = await Promise.all(remembered().map(async (id) => {
    if (!known.has(id)) {
      try {
        const { title } = await api("GET", `/conversations/${encodeURIComponent(id)}`);
        known.set(id, { id, title });
      } catch (error) {
        if (error.status === 404) unremember(id);
        return null;
      }
    }
    return known.get(id);
  }));
  return found.filter(Boolean);
}

// The sidebar: the caller's conversations, newest first; hidden when the server keeps no history.
async function refresh() {
  let conversations;
  try {
    conversations = (await api("GET", "/conversations?limit=50")).conversations;
  } catch (error) {
    // 403: no sign-in on this server, so no listing: the ones this browser remembers instead.
    // 404: history is off; 401: not signed in yet. The open conversation still reopens after a reload.
    conversations = error.status === 403 ? await rememberedConversations() : null;
  }
  if (conversations === null) {
    sidebar.hidden = true;
    list.replaceChildren();
    return;
  }
  sidebar.hidden = false;
  list.replaceChildren(...conversations.map((c) => {
    const entry = document.createElement("li");
    entry.dataset.id = c.id;
    if (c.id === localStorage.getItem(OPEN)) entry.className = "open";
    const title = document.createElement("button");
    title.className = "title";
    title.textContent = c.title;
    title.addEventListener("click", () => open(c.id));
    const remove = document.createElement("button");
    remove.className = "delete";
    remove.title = "Delete this conversation";
    remove.textContent = "×";
    remove.addEventListener("click", () => forget(c.id));
    entry.append(title, remove);
    return entry;
  }));
}

async function open(id) {
  let conversation;
  try {
    conversation = await api("GET", `/conversations/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404) unremember(id);
    localStorage.removeItem(OPEN);  // deleted elsewhere, or not this user's
    log.replaceChildren();
    await refresh();
    return;
  }
  localStorage.setItem(OPEN, id);
  if (!remembered().includes(id)) remember(id);  // opened before the page remembered conversations
  log.replaceChildren();
  for (const turn of conversation.turns) {
    bubble("question", turn.question);
    const item = bubble("reply", turn.answer);
    sources(item, turn.sources);
    meta(item, `${turn.usage.completion_tokens} tokens · ${turn.finish_reason} · ${turn.created_at}`);
  }
  await refresh();
}

async function forget(id) {
  try {
    await api("DELETE", `/conversations/${encodeURIComponent(id)}`);
    unremember(id);
  } catch (error) {
    if (error.status === 404) unremember(id);  // already gone; otherwise the list below still shows it
  }
  if (localStorage.getItem(OPEN) === id) startNew();
  await refresh();
}

function startNew() {
  localStorage.removeItem(OPEN);
  log.replaceChildren();
  refresh();
  input.focus();
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
  const body = {
    question, stream: true,
    temperature: Number(document.getElementById("temperature").value),
    max_new_tokens: Number(document.getElementById("max_new_tokens").value),
  };
  // A follow-up continues the open conversation; grounded is the server's default, only a "no" is sent.
  const current = localStorage.getItem(OPEN);
  if (current) body.conversation_id = current;
  if (!document.getElementById("grounded").checked) body.grounded = false;
  const started = performance.now();
  let first = null;
  try {
    const response = await fetch("/chat/", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({ error: response.statusText }));
      const hint = response.status === 401 ? " (put a token or API key under Settings)" : "";
      throw new Error(`${response.status}: ${error.error}${hint}`);
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
        if (data.conversation_id) {
          localStorage.setItem(OPEN, data.conversation_id);
          remember(data.conversation_id);
        }
        await refresh();
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

document.getElementById("new").addEventListener("click", startNew);

// A reload reopens the conversation that was open.
const reopen = localStorage.getItem(OPEN);
if (reopen) open(reopen); else refresh();
