"""Where a grounded ``/chat/`` request spends its time, stage by stage, over HTTP.

The server is flan-t5-small's architecture with random weights, reading
prompts with flan-t5-small's real tokenizer (so prompt lengths are real), and
the knowledge base of the retrieval suite. Each answer's ``Server-Timing``
header gives retrieval, prompt, queue, prefill and decode; what the client
waited beyond their sum is admission, parsing, recording and the response.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    MODELS_DIR,
    ModelChoice,
    ensure_serving_dirs,
    fmt,
    log,
    md_table,
    median,
    percentile,
    server_timing,
)
from benchmarks.procs import HOST, running_server
from server import serving_dir as sd

STAGES = ("history", "retrieval", "prompt", "queue", "prefill", "decode", "record")
MAX_NEW_TOKENS = 32


def grounded_serving_dir(choice: ModelChoice, kb_dir: Path, tokenizer: Path) -> Path:
    """The int8 model with the real tokenizer and the knowledge base beside it, in one checked directory."""
    out = MODELS_DIR / f"bench-{choice.name}-grounded"
    sections = json.loads((kb_dir / "sections.json").read_text())
    model = ensure_serving_dirs(choice, ("int8",))["int8"]
    if (out / sd.MANIFEST).is_file():
        built = json.loads((out / sd.MANIFEST).read_text())
        model_files = json.loads((model / sd.MANIFEST).read_text())["files"]
        if built.get("knowledge") == sections["knowledge"] and all(
                built["files"].get(name) == entry for name, entry in model_files.items() if name.endswith(".onnx")):
            return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model, out, copy_function=os.link)  # hard links: no second copy of the weights
    (out / sd.TOKENIZER).unlink()
    shutil.copy(tokenizer, out / sd.TOKENIZER)
    for part in ("embedder", "knowledge"):
        shutil.copytree(kb_dir / part, out / part, copy_function=os.link)
    manifest = json.loads((out / sd.MANIFEST).read_text())
    manifest.update(embedder=sections["embedder"], knowledge=sections["knowledge"], files=sd.describe_files(out))
    (out / sd.MANIFEST).unlink()  # a hard link to the model's: replace it, do not write through it
    (out / sd.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def measure(choice: ModelChoice, serving: Path, questions: list[str], grounded: bool) -> dict[str, Any]:
    """One request at a time (no batching effects): per-stage and client-side times."""
    rows: list[dict[str, float]] = []
    env = {"NUM_THREADS": "0", "DATABASE_URL": "none"}  # history's own cost: python -m benchmarks history
    with running_server("ours", choice, serving, 120, env) as (port, _, _proc), \
            httpx.Client(base_url=f"http://{HOST}:{port}", timeout=120) as http:
        for question in questions[:3]:  # warm-up
            http.post("/chat/", json={"question": question, "max_new_tokens": 4, "grounded": grounded})
        for question in questions:
            began = time.perf_counter()
            response = http.post("/chat/", json={"question": question, "temperature": 0, "grounded": grounded,
                                                 "max_new_tokens": MAX_NEW_TOKENS})
            total = (time.perf_counter() - began) * 1000
            response.raise_for_status()
            row = server_timing(response.headers["server-timing"])
            row.update(total=total, other=total - sum(row.values()),
                       prompt_tokens=response.json()["usage"]["prompt_tokens"],
                       tokens=response.json()["usage"]["completion_tokens"])
            rows.append(row)
    names = [s for s in STAGES if s in rows[0]] + ["other", "total", "prompt_tokens", "tokens"]
    return {n: {"p50": median([r[n] for r in rows]), "p95": percentile([r[n] for r in rows], 95)} for n in names}


def run(choice: ModelChoice, kb_dir: Path, tokenizer: Path, questions: list[str]) -> tuple[dict[str, Any], str]:
    serving = grounded_serving_dir(choice, kb_dir, tokenizer)
    results = {}
    for grounded in (True, False):
        results["grounded" if grounded else "ungrounded"] = measure(choice, serving, questions, grounded)
        log(f"stages grounded={grounded}: {results['grounded' if grounded else 'ungrounded']['total']}")
    g, u = results["grounded"], results["ungrounded"]
    rows = [[name, fmt(g[name]["p50"], 2), fmt(g[name]["p95"], 2),
             fmt(u[name]["p50"], 2) if name in u else "-", fmt(u[name]["p95"], 2) if name in u else "-"]
            for name in [*STAGES, "other", "total", "prompt_tokens", "tokens"] if name in g]
    body = (f"\n## A grounded /chat/ request, stage by stage\n\n{choice.label} with flan-t5-small's real tokenizer "
            f"and the knowledge base above; one request at a time over HTTP, greedy, at most {MAX_NEW_TOKENS} new "
            f"tokens, {len(questions)} questions, milliseconds (from the `Server-Timing` header; `other` is what "
            f"the client waited beyond the stages: admission, parsing, record and response).\n\n"
            + md_table(["stage", "grounded p50", "grounded p95", "ungrounded p50", "ungrounded p95"], rows) + "\n")
    return results, body
