"""decode: greedy decoding speed of PyTorch fp32, ONNX Runtime fp32/int8 (our Engine) and CTranslate2 int8,
on short prompts (~20 tokens) and grounded ones (~400 tokens: see :mod:`benchmarks.prompts`).

Every engine makes exactly N new tokens from the same prompt ids (EOS ignored). Engines are loaded side
by side and repeats are interleaved (the order rotates each round) so that noise from this shared machine
hits them all alike; figures are medians. The floor column compares the measured time per decoder step
with the time needed just to stream the decoder's weights once from RAM at the measured copy bandwidth.
"""

from __future__ import annotations

import warnings
from typing import Any

from benchmarks import engines, prompts
from benchmarks.common import (
    MODELS_DIR,
    ModelChoice,
    ensure_serving_dirs,
    fmt,
    log,
    md_table,
    median,
    percentile,
    write_results,
)
from server.generation.engine import usable_cpus

# --- constants -----------------------------------------------------------------------------------------
NEW_TOKENS = 64  # forced new tokens per request (full run); the spec's default
QUICK_NEW_TOKENS = 16
REPEATS = 5  # measured rounds over all prompts, per engine and batch size
QUICK_REPEATS = 2
WARMUP = 1  # untimed runs per engine and batch size (first-run allocations, thread pools)
BATCH_SIZES = (1, 8)  # one request alone, and a batch as the server's batcher would form it
CT2_THREADS = (1, 2)  # CTranslate2 is tried with each; the best is reported
BASELINE = "pytorch-fp32"
# ---------------------------------------------------------------------------------------------------------


def _load_engines(choice: ModelChoice, dirs: dict[str, Any], threads: int) -> dict[str, Any]:
    ct2_dir = engines.ensure_ct2(choice.hf_dir, MODELS_DIR / f"bench-{choice.name}-ct2-int8")
    runners: dict[str, Any] = {
        BASELINE: engines.TorchRunner(choice.hf_dir, threads),
        "onnx-fp32": engines.OrtRunner(dirs["fp32"], threads),
        "onnx-int8": engines.OrtRunner(dirs["int8"], threads),
    }
    if threads > 1:  # one thread dodges the thread-pool barriers that a busy neighbour core stretches
        runners["onnx-int8/t1"] = engines.OrtRunner(dirs["int8"], 1)
    for t in sorted({min(t, threads) for t in CT2_THREADS}):
        runners[f"ctranslate2-int8/t{t}"] = engines.Ct2Runner(ct2_dir, t)
    return runners


def measure(runners: dict[str, Any], prompts: list[list[int]], n: int, repeats: int) -> dict[int, dict[str, Any]]:
    """Timings per batch size and engine: {batch: {engine: [Timing, ...]}}."""
    out: dict[int, dict[str, Any]] = {}
    for batch in BATCH_SIZES:
        groups = [[p] for p in prompts] if batch == 1 else [[prompts[i % len(prompts)] for i in range(batch)]]
        prepared = {name: [r.prepare(g) for g in groups] for name, r in runners.items()}
        for name, r in runners.items():
            for _ in range(WARMUP):
                r.run(prepared[name][0], n)
        timings: dict[str, list[Any]] = {name: [] for name in runners}
        names = list(runners)
        for rnd in range(repeats):
            order = names[rnd % len(names):] + names[: rnd % len(names)]  # rotate: nobody always goes first
            for name in order:
                timings[name] += [runners[name].run(p, n) for p in prepared[name]]
            log(f"decode batch {batch}: round {rnd + 1}/{repeats} done")
        out[batch] = timings
    return out


def summarize(timings: list[Any], batch: int, n: int, floor_ms: float) -> dict[str, float]:
    step_ms = median([t.decode_s / (n - 1) for t in timings]) * 1000
    totals = [t.total_s * 1000 for t in timings]
    return {
        "ms_per_step": step_ms,  # one decoder step for the whole batch
        "ttft_ms": median([t.first_s for t in timings]) * 1000,
        "e2e_p50_ms": percentile(totals, 50),
        "e2e_p95_ms": percentile(totals, 95),
        "tokens_per_s": batch * n / (median(totals) / 1000),
        "floor_ms_per_step": floor_ms,
        "pct_of_floor": 100 * floor_ms / step_ms,
        "samples": len(timings),
    }


def run(choice: ModelChoice, quick: bool, threads: int | None = None,
        tokenizer: str | None = None) -> tuple[dict[str, Any], str, Any]:
    """Run the decode suite on both prompt shapes; return (data, markdown body, chart function)."""
    warnings.filterwarnings("ignore")
    threads = threads or usable_cpus()  # the server's own count: affinity, cgroup quota
    n = QUICK_NEW_TOKENS if quick else NEW_TOKENS
    repeats = QUICK_REPEATS if quick else REPEATS
    dirs = ensure_serving_dirs(choice)
    prompt_sets, tokenizer_label = prompts.prompt_sets(dirs["int8"], tokenizer)
    bandwidth = engines.copy_bandwidth()
    weight_bytes = {p: engines.decoder_bytes_per_step(d) for p, d in dirs.items()}
    floor_ms = {p: b / bandwidth * 1000 for p, b in weight_bytes.items()}
    log(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; decoder bytes/step {weight_bytes}")
    runners = _load_engines(choice, dirs, threads)
    shapes: dict[str, Any] = {}
    for shape, shape_prompts in prompt_sets.items():
        shape_prompts = shape_prompts[: 2 if quick else None]
        log(f"decode: {shape} prompts of {[len(p) for p in shape_prompts]} tokens")
        raw = measure(runners, shape_prompts, n, repeats)
        shapes[shape] = {"prompt_tokens": [len(p) for p in shape_prompts],
                         "batches": {str(b): _rows(t, b, n, floor_ms) for b, t in raw.items()}}
    data = {"new_tokens": n, "repeats": repeats, "threads": threads, "tokenizer": tokenizer_label,
            "copy_bandwidth_gb_s": bandwidth / 1e9, "decoder_bytes_per_step": weight_bytes, "shapes": shapes}
    return data, _markdown(data), _chart(data)


def _rows(per_engine: dict[str, Any], batch: int, n: int, floor_ms: dict[str, float]) -> dict[str, Any]:
    """Each engine's summary; CTranslate2 at its best thread count; ratios against PyTorch and CTranslate2."""
    rows = {name: summarize(t, batch, n, floor_ms["int8" if "int8" in name else "fp32"])
            for name, t in per_engine.items()}
    ct2 = sorted((k for k in rows if k.startswith("ctranslate2")), key=lambda k: rows[k]["ms_per_step"])
    best = {**rows[ct2[0]], "threads": int(ct2[0].rsplit("/t", 1)[1]), "tried": {k: rows[k] for k in ct2}}
    rows = {k: v for k, v in rows.items() if k not in ct2} | {"ctranslate2-int8": best}
    base, peer = rows[BASELINE], rows["ctranslate2-int8"]
    for row in rows.values():
        row["step_speedup_vs_pytorch"] = base["ms_per_step"] / row["ms_per_step"]
        row["e2e_speedup_vs_pytorch"] = base["e2e_p50_ms"] / row["e2e_p50_ms"]
        # The goals, as ratios of ours to theirs (lower is better).
        row["step_vs_pytorch"] = row["ms_per_step"] / base["ms_per_step"]
        row["step_vs_ct2"] = row["ms_per_step"] / peer["ms_per_step"]
        row["ttft_vs_pytorch"] = row["ttft_ms"] / base["ttft_ms"]
        row["ttft_vs_ct2"] = row["ttft_ms"] / peer["ttft_ms"]
    return rows


def _markdown(data: dict[str, Any]) -> str:
    head = ["prompt", "engine", "batch", "ms per further token", "TTFT ms", "whole request p50 ms", "p95 ms",
            "tokens/s", "% of mem-bw floor", "token vs PyTorch", "token vs CT2", "TTFT vs PyTorch", "TTFT vs CT2"]
    rows = []
    for shape, block in data["shapes"].items():
        tokens = block["prompt_tokens"]
        label = f"{shape} ({min(tokens)}-{max(tokens)} tok)"
        for batch, per_engine in block["batches"].items():
            for name, r in per_engine.items():
                engine = f"{name} (t={r['threads']})" if "threads" in r else name
                rows.append([label, engine, batch, fmt(r["ms_per_step"], 2), fmt(r["ttft_ms"]), fmt(r["e2e_p50_ms"]),
                             fmt(r["e2e_p95_ms"]), fmt(r["tokens_per_s"]), fmt(r["pct_of_floor"]),
                             f"{r['step_vs_pytorch']:.3f}x", f"{r['step_vs_ct2']:.2f}x",
                             f"{r['ttft_vs_pytorch']:.2f}x", f"{r['ttft_vs_ct2']:.2f}x"])
    wb = data["decoder_bytes_per_step"]
    return (f"Greedy decoding of exactly {data['new_tokens']} new tokens (EOS ignored), {data['repeats']} interleaved "
            f"rounds, medians; {data['threads']} threads for PyTorch and ONNX Runtime; prompt tokens counted by "
            f"{data['tokenizer']}. Short prompts are cloud questions in the plain template; grounded ones are "
            f"three passages of botocore's documentation and the question, composed as the server composes them.\n"
            f"\"ms per further token\" is one decoder step for the whole batch, first token excluded; TTFT is the "
            f"encoder, the cross-attention keys and values and the first step. Ratios are ours over theirs "
            f"(lower is better; the goals: token ≤ 0.10x PyTorch and ≤ 0.5x CTranslate2, TTFT ≤ 0.2x PyTorch "
            f"and < 1x CTranslate2).\n"
            f"Memory-bandwidth floor: decoder weights read per step (int8 {wb['int8'] / 1e6:.1f} MB, "
            f"fp32 {wb['fp32'] / 1e6:.1f} MB; embedding table excluded) / numpy copy bandwidth "
            f"{data['copy_bandwidth_gb_s']:.1f} GB/s; 100% would mean the step costs no more than reading the "
            f"weights once.\n\n" + md_table(head, rows) + "\n")


def _chart(data: dict[str, Any]) -> Any:
    def draw(fig: Any) -> None:
        shapes = list(data["shapes"])
        axes = fig.subplots(1, 2)
        groups = [(s, b) for s in shapes for b in data["shapes"][s]["batches"]]
        names = list(data["shapes"][shapes[0]]["batches"]["1"])
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
            axes[0].bar(xs, [data["shapes"][s]["batches"][b][name]["ms_per_step"] for s, b in groups], width,
                        label=name)
            axes[1].bar(xs, [data["shapes"][s]["batches"][b][name]["ttft_ms"] for s, b in groups], width, label=name)
        titles = ("ms per further token (lower is better)", "time to first token, ms (lower is better)")
        for ax, title in zip(axes, titles, strict=True):
            ax.set_xticks(range(len(groups)), [f"{s}\nbatch {b}" for s, b in groups], fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_yscale("log")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Greedy decode, {data['new_tokens']} new tokens, short and grounded prompts")

    return draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks decode``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick, args.threads, args.tokenizer)
    write_results("decode", meta, data, body, chart)
    headlines = {}
    for shape, block in data["shapes"].items():
        b1, bn = block["batches"]["1"], block["batches"][str(BATCH_SIZES[-1])]
        headlines |= {
            f"decode {shape}: onnx-int8 ms/token speed-up vs PyTorch fp32, batch 1":
                b1["onnx-int8"]["step_speedup_vs_pytorch"],
            f"decode {shape}: onnx-int8 tokens/s, batch {BATCH_SIZES[-1]}": bn["onnx-int8"]["tokens_per_s"],
            f"decode {shape}: ctranslate2-int8 / onnx-int8 ms/token (ratio, >1: ours faster), batch 1":
                b1["ctranslate2-int8"]["ms_per_step"] / b1["onnx-int8"]["ms_per_step"],
            f"decode {shape}: ctranslate2-int8 / onnx-int8 TTFT (ratio, >1: ours faster), batch 1":
                b1["ctranslate2-int8"]["ttft_ms"] / b1["onnx-int8"]["ttft_ms"]}
    return headlines
