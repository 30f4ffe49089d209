"""decode: greedy decoding speed of PyTorch fp32, ONNX Runtime fp32/int8 (our Engine) and CTranslate2 int8.

Every engine makes exactly N new tokens from the same prompt ids (EOS ignored). Engines are loaded side
by side and repeats are interleaved (the order rotates each round) so that noise from this shared machine
hits them all alike; figures are medians. The floor column compares the measured time per decoder step
with the time needed just to stream the decoder's weights once from RAM at the measured copy bandwidth.
"""

from __future__ import annotations

import warnings
from typing import Any

from benchmarks import engines
from benchmarks.common import (
    MODELS_DIR,
    ModelChoice,
    ensure_serving_dirs,
    fmt,
    log,
    md_table,
    median,
    percentile,
    usable_threads,
    write_results,
)

# --- constants -----------------------------------------------------------------------------------------
# Cloud questions put through the server's own prompt template and tokenizer.json.
QUESTIONS = (
    "What is the difference between IaaS, PaaS and SaaS?",
    "How does auto scaling work in a public cloud?",
    "What is an availability zone?",
    "Why would a team choose serverless functions over containers?",
)
NEW_TOKENS = 64  # forced new tokens per request (full run); the spec's default
QUICK_NEW_TOKENS = 16
REPEATS = 5  # measured rounds over all prompts, per engine and batch size
QUICK_REPEATS = 2
WARMUP = 1  # untimed runs per engine and batch size (first-run allocations, thread pools)
BATCH_SIZES = (1, 8)  # one request alone, and a batch as the server's batcher would form it
CT2_THREADS = (1, 2)  # CTranslate2 is tried with each; the best is reported
BASELINE = "pytorch-fp32"
# ---------------------------------------------------------------------------------------------------------


def _prompts(serving_int8: Any) -> list[list[int]]:
    from server.generation.text import TextCodec
    from server.prompt import DEFAULT_TEMPLATE, render
    from server.serving_dir import open_serving_dir

    serving = open_serving_dir(serving_int8, verify=False)
    codec = TextCodec(serving.file("tokenizer.json"), serving.generation.clean_up_tokenization_spaces)
    return [codec.encode(render(DEFAULT_TEMPLATE, q)) for q in QUESTIONS]


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
        runners[f"ctranslate2-int8/t{t}"] = engines.Ct2Runner(ct2_dir, choice.hf_dir, t)
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


def run(choice: ModelChoice, quick: bool, threads: int | None = None) -> tuple[dict[str, Any], str, Any]:
    """Run the decode suite; return (data, markdown body, chart function)."""
    warnings.filterwarnings("ignore")
    threads = threads or usable_threads()
    n = QUICK_NEW_TOKENS if quick else NEW_TOKENS
    repeats = QUICK_REPEATS if quick else REPEATS
    dirs = ensure_serving_dirs(choice)
    prompts = _prompts(dirs["int8"])[: 2 if quick else None]
    bandwidth = engines.copy_bandwidth()
    weight_bytes = {p: engines.decoder_bytes_per_step(d) for p, d in dirs.items()}
    floor_ms = {p: b / bandwidth * 1000 for p, b in weight_bytes.items()}
    log(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; decoder bytes/step {weight_bytes}")
    runners = _load_engines(choice, dirs, threads)
    raw = measure(runners, prompts, n, repeats)

    results: dict[str, dict[str, Any]] = {}
    for batch, per_engine in raw.items():
        rows = {name: summarize(t, batch, n, floor_ms["int8" if "int8" in name else "fp32"])
                for name, t in per_engine.items()}
        ct2 = sorted((k for k in rows if k.startswith("ctranslate2")), key=lambda k: rows[k]["ms_per_step"])
        best = {**rows[ct2[0]], "threads": int(ct2[0].rsplit("/t", 1)[1]), "tried": {k: rows[k] for k in ct2}}
        rows = {k: v for k, v in rows.items() if k not in ct2} | {"ctranslate2-int8": best}
        base = rows[BASELINE]
        for row in rows.values():
            row["step_speedup_vs_pytorch"] = base["ms_per_step"] / row["ms_per_step"]
            row["e2e_speedup_vs_pytorch"] = base["e2e_p50_ms"] / row["e2e_p50_ms"]
        results[str(batch)] = rows
    data = {"new_tokens": n, "repeats": repeats, "prompts": len(prompts), "threads": threads,
            "copy_bandwidth_gb_s": bandwidth / 1e9, "decoder_bytes_per_step": weight_bytes, "batches": results}
    return data, _markdown(data), _chart(data)


def _markdown(data: dict[str, Any]) -> str:
    head = ["engine", "batch", "ms/step", "TTFT ms", "e2e p50 ms", "e2e p95 ms", "tokens/s",
            "% of mem-bw floor", "step speed-up vs PyTorch", "e2e speed-up vs PyTorch"]
    rows = []
    for batch, per_engine in data["batches"].items():
        for name, r in per_engine.items():
            label = f"{name} (t={r['threads']})" if "threads" in r else name
            rows.append([label, batch, fmt(r["ms_per_step"], 2), fmt(r["ttft_ms"]), fmt(r["e2e_p50_ms"]),
                         fmt(r["e2e_p95_ms"]), fmt(r["tokens_per_s"]), fmt(r["pct_of_floor"]),
                         f"{r['step_speedup_vs_pytorch']:.2f}x", f"{r['e2e_speedup_vs_pytorch']:.2f}x"])
    wb = data["decoder_bytes_per_step"]
    return (f"Greedy decoding of exactly {data['new_tokens']} new tokens (EOS ignored), {data['prompts']} prompts, "
            f"{data['repeats']} interleaved rounds, medians; {data['threads']} threads for PyTorch and ONNX Runtime.\n"
            f"ms/step is one decoder step for the whole batch (first token excluded); TTFT is encoder + first step.\n"
            f"Memory-bandwidth floor: decoder weights read per step (int8 {wb['int8'] / 1e6:.1f} MB, "
            f"fp32 {wb['fp32'] / 1e6:.1f} MB; embedding table excluded) / numpy copy bandwidth "
            f"{data['copy_bandwidth_gb_s']:.1f} GB/s; 100% would mean the step costs no more than reading the "
            f"weights once.\n\n" + md_table(head, rows) + "\n")


def _chart(data: dict[str, Any]) -> Any:
    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2)
        batches = list(data["batches"])
        names = list(data["batches"][batches[0]])
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = [b + (i - (len(names) - 1) / 2) * width for b in range(len(batches))]
            axes[0].bar(xs, [data["batches"][b][name]["ms_per_step"] for b in batches], width, label=name)
            axes[1].bar(xs, [data["batches"][b][name]["tokens_per_s"] for b in batches], width, label=name)
        for ax, title in zip(axes, ("ms per decoder step (lower is better)", "tokens/s (higher is better)"),
                             strict=True):
            ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
            ax.set_title(title, fontsize=10)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Greedy decode, {data['new_tokens']} new tokens")

    return draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks decode``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick, args.threads)
    write_results("decode", meta, data, body, chart)
    b1, bn = data["batches"]["1"], data["batches"][str(BATCH_SIZES[-1])]
    return {"decode: onnx-int8 ms/step speed-up vs PyTorch fp32, batch 1": b1["onnx-int8"]["step_speedup_vs_pytorch"],
            f"decode: onnx-int8 tokens/s, batch {BATCH_SIZES[-1]}": bn["onnx-int8"]["tokens_per_s"],
            "decode: ctranslate2-int8 / onnx-int8 ms/step (ratio, >1: ours faster), batch 1":
                b1["ctranslate2-int8"]["ms_per_step"] / b1["onnx-int8"]["ms_per_step"]}
