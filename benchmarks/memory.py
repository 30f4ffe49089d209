"""memory: peak resident memory of each server (process tree, polled every 50 ms) under the same load."""

from __future__ import annotations

from typing import Any

from benchmarks.common import ModelChoice, ensure_serving_dirs, fmt, log, md_table, median, write_results
from benchmarks.load import run_load
from benchmarks.procs import RssSampler, running_server

# --- constants -----------------------------------------------------------------------------------------
CLIENTS = 4  # concurrent clients
REQUESTS = 40  # requests per server (full)
QUICK_REQUESTS = 12
MAX_NEW_TOKENS = 32  # greedy; both servers are asked for the same work
QUICK_MAX_NEW_TOKENS = 16
ROUNDS = 2  # each server measured this many times, interleaved; the median peak is reported
QUICK_ROUNDS = 1
POLL_S = 0.05
START_TIMEOUT_S = 180.0
LOAD_LIMIT_S = 600.0  # the baseline is slow: a generous, still hard, limit
KINDS = ("ours", "baseline")
MIB = 2**20
# ---------------------------------------------------------------------------------------------------------


def run(choice: ModelChoice, quick: bool) -> tuple[dict[str, Any], str, Any]:
    """Run the memory suite; return (data, markdown body, chart function)."""
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    requests = QUICK_REQUESTS if quick else REQUESTS
    body = {"max_new_tokens": QUICK_MAX_NEW_TOKENS if quick else MAX_NEW_TOKENS, "temperature": 0.0}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for rnd in range(QUICK_ROUNDS if quick else ROUNDS):
        for kind in KINDS if rnd % 2 == 0 else KINDS[::-1]:
            sampler = RssSampler(POLL_S)
            with running_server(kind, choice, serving if kind == "ours" else None, START_TIMEOUT_S,
                                sampler=sampler) as (port, _, _proc):
                sampler.mark("idle")
                load = run_load(port, CLIENTS, requests, body, LOAD_LIMIT_S).summary()
                sampler.mark("after_load")
                peak = sampler.peak  # read before the finally: stopping the server frees it all
            runs[kind].append({"idle_bytes": sampler.mark_bytes["idle"], "peak_bytes": peak,
                               "after_load_bytes": sampler.mark_bytes["after_load"], "samples": sampler.samples,
                               "ok": load["ok"], "errors": load["errors"]})
            log(f"memory {kind}: peak {peak / MIB:.0f} MiB, {load['ok']} ok, errors {load['errors']}")
    stats = {k: {"idle_mib": median([r["idle_bytes"] for r in v]) / MIB,
                 "peak_mib": median([r["peak_bytes"] for r in v]) / MIB, "runs": v} for k, v in runs.items()}
    ratio = stats["baseline"]["peak_mib"] / stats["ours"]["peak_mib"]
    data = {"clients": CLIENTS, "requests": requests, "body": body, "servers": stats, "baseline_over_ours": ratio}
    rows = [[k, fmt(v["idle_mib"], 0), fmt(v["peak_mib"], 0),
             ", ".join(f"{r['ok']} ok {r['errors'] or ''}".strip() for r in v["runs"])] for k, v in stats.items()]
    md = (f"Resident memory of the server's process tree (psutil, every {POLL_S * 1000:.0f} ms) from spawn to the "
          f"end of a load of {requests} requests from {CLIENTS} clients (max_new_tokens {body['max_new_tokens']}, "
          "greedy). idle: after /health first answers.\n\n"
          + md_table(["server", "idle RSS MiB", "peak RSS MiB", "requests"], rows)
          + f"\n\nBaseline / ours peak RSS: **{ratio:.2f}x**\n")

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        xs = range(len(stats))
        ax.bar([x - 0.2 for x in xs], [v["idle_mib"] for v in stats.values()], 0.4, label="idle")
        ax.bar([x + 0.2 for x in xs], [v["peak_mib"] for v in stats.values()], 0.4, label="peak under load")
        ax.set_xticks(list(xs), list(stats))
        ax.set_ylabel("RSS MiB (process tree)")
        ax.set_title("Server memory")
        ax.legend()

    return data, md, draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks memory``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick)
    write_results("memory", meta, data, body, chart)
    return {"memory: baseline / ours, peak RSS (ratio)": data["baseline_over_ours"],
            "memory: ours, peak RSS MiB": data["servers"]["ours"]["peak_mib"]}
