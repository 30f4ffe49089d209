"""profile: where a generation's time goes, from ONNX Runtime's own profiler (per-node kernel times).

Our int8 engine runs the decode suite's prompts (short and grounded, batch 1 and 8) with profiling on:
the encoder, the cross-attention graph and the decoder steps. Kernel times are summed by what the node
does (matrix products by layer part, attention, activation quantization, norms, the rest), and set
against the wall time of each call, so what ONNX Runtime does not account for (Python, copies of
inputs and outputs, session overhead) shows as well.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import prompts
from benchmarks.common import (
    ModelChoice,
    ensure_serving_dirs,
    fmt,
    log,
    md_table,
    median,
    write_results,
)
from server.generation.engine import usable_cpus

NEW_TOKENS = 32  # decoder steps profiled per generation
QUICK_NEW_TOKENS = 8
PREFILLS = 5  # profiled prefills (after the warm-up): a shared machine's noise averages out
QUICK_PREFILLS = 2
BATCH_SIZES = (1, 8)
PARTS = (  # (label, test on the node name and op type), first match wins
    ("lm_head (32128 x 512)", lambda name, op: "lm_head" in name),
    ("activation quantization", lambda name, op: op == "DynamicQuantizeLinear"),
    ("attention (softmax(QK)V)", lambda name, op: op in {"MultiHeadAttention", "Attention", "Softmax"}),
    ("self-attention projections", lambda name, op: "SelfAttention" in name),
    ("cross-attention projections", lambda name, op: "EncDecAttention" in name or "cross_kv" in name),
    ("feed-forward", lambda name, op: "DenseReluDense" in name),
    ("layer norms", lambda name, op: "norm" in name.lower()),
)


def part_of(name: str, op: str) -> str:
    return next((label for label, test in PARTS if test(name, op)), "other (masks, positions, casts, embedding)")


def kernel_times(profile: Path) -> tuple[dict[str, float], dict[str, float], float, int]:
    """Microseconds by part and by operator, the sum of the session's ``model_run`` events and their
    count, all from the session's second run on (the first is a warm-up: allocations, thread pools)."""
    events = json.loads(profile.read_text())
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    cutoff = starts[1] if len(starts) > 1 else 0
    parts: dict[str, float] = defaultdict(float)
    ops: dict[str, float] = defaultdict(float)
    runs = 0.0
    for event in (e for e in events if e.get("ts", 0) >= cutoff):
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            runs += event["dur"]
        elif event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            name = re.sub(r"_kernel_time$", "", event["name"])
            op = event.get("args", {}).get("op_name", "")
            parts[part_of(name, op)] += event["dur"]
            ops[op] += event["dur"]
    return dict(parts), dict(ops), runs, len(starts) - (1 if len(starts) > 1 else 0)


def profile_one(serving: Path, batch_prompts: list[list[int]], n: int, prefills: int, threads: int,
                out: Path) -> dict[str, Any]:
    """One generation of ``n`` tokens with profiling on, after a warm-up prefill; ms per call by phase and part."""
    import onnxruntime as ort

    from server.generation.engine import Engine, session_options
    from server.serving_dir import open_serving_dir

    def profiled(prefix: str) -> ort.SessionOptions:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(out / prefix)
        return opts

    engine = Engine(open_serving_dir(serving, verify=False), options=profiled("run"))
    engine.prefill(batch_prompts)  # warm-up: its events are left out (see kernel_times)
    prefill_walls = []
    for _ in range(prefills):
        began = time.perf_counter()
        logits, state = engine.prefill(batch_prompts)
        prefill_walls.append(time.perf_counter() - began)
    tokens = logits.argmax(-1)
    began = time.perf_counter()
    for _ in range(n - 1):
        logits, state = engine.step(state, tokens)
        tokens = logits.argmax(-1)
    step_wall = (time.perf_counter() - began) / (n - 1)
    sessions = {"encoder": engine.encoder, "cross": engine.cross, "decoder step": engine.decoder_past}
    phases: dict[str, Any] = {}
    for label, session in sessions.items():
        if session is None:
            continue
        parts, ops, runs, calls = kernel_times(Path(session.end_profiling()))
        def per_call(times: dict[str, float], calls: int = calls) -> dict[str, float]:
            return {k: v / 1000 / calls for k, v in sorted(times.items(), key=lambda kv: -kv[1])}

        phases[label] = {"calls": calls, "run_ms": runs / 1000 / calls, "parts_ms": per_call(parts),
                         "ops_ms": per_call(ops)}
    return {"wall_prefill_ms": median(prefill_walls) * 1000, "wall_step_ms": step_wall * 1000,
            "phases": phases}


def run(choice: ModelChoice, quick: bool, threads: int | None, tokenizer: str | None) -> dict[str, Any]:
    threads = threads or usable_cpus()  # the server's own count: affinity, cgroup quota
    n = QUICK_NEW_TOKENS if quick else NEW_TOKENS
    prefills = QUICK_PREFILLS if quick else PREFILLS
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    sets, label = prompts.prompt_sets(serving, tokenizer)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape, shape_prompts in sets.items():
            for batch in BATCH_SIZES:
                group = [shape_prompts[i % len(shape_prompts)] for i in range(batch)]
                log(f"profile: {shape} batch {batch}")
                results[f"{shape}/{batch}"] = {"prompt_tokens": max(len(p) for p in group),
                                               **profile_one(serving, group, n, prefills, threads, Path(tmp))}
    return {"new_tokens": n, "prefills": prefills, "threads": threads, "tokenizer": label, "runs": results}


def _markdown(data: dict[str, Any]) -> str:
    rows = []
    for key, r in data["runs"].items():
        shape, batch = key.split("/")
        prompt = f"{shape} ({r['prompt_tokens']} tok)"
        for phase, p in r["phases"].items():
            total = sum(p["parts_ms"].values())
            parts = ", ".join(f"{k} {v / total:.0%}" for k, v in p["parts_ms"].items() if v / total >= 0.02)
            ops = ", ".join(f"{k} {v / total:.0%}" for k, v in list(p["ops_ms"].items())[:4])
            rows.append([prompt, batch, phase, fmt(p["run_ms"], 2), fmt(total, 2), parts, ops])
        rows.append([prompt, batch, "wall: prefill / further step",
                     f"{fmt(r['wall_prefill_ms'], 2)} / {fmt(r['wall_step_ms'], 2)}", "", "", ""])
    head = ["prompt", "batch", "phase", "ms per call (session)", "ms in kernels", "kernel time by part (≥ 2%)",
            "top operators"]
    return (f"ONNX Runtime's profiler on our int8 engine, {data['threads']} threads: one warm-up prefill, then "
            f"{data['prefills']} prefills and {data['new_tokens']} decoder steps, per call; prompt tokens counted by "
            f"{data['tokenizer']}. \"ms per call\" is "
            f"the session's own run time; the wall rows are what the Python caller waited (prefill = encoder + "
            f"cross graph + first step).\n\n" + md_table(head, rows) + "\n")


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks profile``."""
    data = run(choice, args.quick, args.threads, args.tokenizer)
    write_results("profile", meta, data, _markdown(data), None)
    step = data["runs"]["grounded/1"]["phases"]["decoder step"]
    return {"profile grounded batch 1: lm_head share of a decoder step":
            step["parts_ms"].get(PARTS[0][0], 0.0) / sum(step["parts_ms"].values())}
