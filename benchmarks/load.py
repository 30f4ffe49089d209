"""load: requests/s and latency of our server under 16 concurrent clients, with the shipped defaults against
one request at a time (MAX_BATCH_SIZE=1), on this machine's 2 vCPUs and pinned to 1 (``taskset``, as a
1-vCPU Fargate task); ``--sweep`` also tries the candidate settings the defaults were chosen from.

The load generator is bounded in every direction: it only talks to 127.0.0.1, sends a fixed number of
requests from a fixed number of clients, gives each request a timeout, and stops at a hard time limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import ModelChoice, ensure_serving_dirs, fmt, log, md_table, median, percentile, write_results
from benchmarks.procs import HOST, running_server

# --- constants -----------------------------------------------------------------------------------------
CLIENTS = 16  # concurrent clients, for every configuration
REQUESTS = 192  # requests per run (full); every client keeps one in flight
QUICK_REQUESTS = 32
MAX_NEW_TOKENS = 32  # per request, greedy (temperature 0): the same work in every configuration
QUICK_MAX_NEW_TOKENS = 16
ROUNDS = 3  # start/measure/stop each configuration this many times, interleaved
QUICK_ROUNDS = 1
BASELINE = "one at a time"
CONFIGS = {BASELINE: {"MAX_BATCH_SIZE": "1"}, "shipped defaults": {}}
SWEEP = {  # candidates for the defaults (--sweep)
    "MAX_BATCH_SIZE=8": {"MAX_BATCH_SIZE": "8"},
    "MAX_BATCH_SIZE=16": {"MAX_BATCH_SIZE": "16"},
    "MAX_BATCH_SIZE=32": {"MAX_BATCH_SIZE": "32"},
    "MAX_BATCH_SIZE=16, BATCH_WAIT_MS=0": {"MAX_BATCH_SIZE": "16", "BATCH_WAIT_MS": "0"},
    "MAX_BATCH_SIZE=16, BATCH_WAIT_MS=10": {"MAX_BATCH_SIZE": "16", "BATCH_WAIT_MS": "10"},
    "MAX_BATCH_SIZE=16, NUM_THREADS=1": {"MAX_BATCH_SIZE": "16", "NUM_THREADS": "1"},
}
CPU_SETS = {"2 vCPU": None, "1 vCPU": "0"}  # taskset -c: a 1-vCPU task's share of the machine
# The inference server alone: history has its own suite (DATABASE_URL=none, as the task definition ships).
COMMON_ENV = {"MAX_QUEUE": "64", "DATABASE_URL": "none"}
TIME_LIMIT_S = 300.0  # hard stop of one load run, whatever is left
REQUEST_TIMEOUT_S = 120.0
START_TIMEOUT_S = 120.0
QUESTIONS = ("What is IaaS?", "How does auto scaling work?", "What is an availability zone?",
             "What is object storage?", "Why use a CDN?", "What is a VPC?")
# ---------------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one load run saw."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    sent: int = 0
    timed_out: bool = False

    def summary(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies_s]
        return {"ok": len(ms), "sent": self.sent, "errors": dict(self.errors), "wall_s": self.wall_s,
                "requests_per_s": len(ms) / self.wall_s if self.wall_s else 0.0,
                "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99),
                "hit_time_limit": self.timed_out}


async def _load(port: int, clients: int, requests: int, body: dict[str, Any], limit_s: float) -> LoadResult:
    import httpx

    result = LoadResult()
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:  # shared iterator: together the clients send exactly `requests`
            result.sent += 1
            began = time.perf_counter()
            try:
                resp = await http.post("/chat/", json={**body, "question": QUESTIONS[i % len(QUESTIONS)]})
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                continue
            if resp.status_code == 200:
                result.latencies_s.append(time.perf_counter() - began)
            else:
                result.errors[str(resp.status_code)] += 1

    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=REQUEST_TIMEOUT_S, limits=limits,
                                 trust_env=False) as http:  # trust_env=False: never through a proxy
        began = time.perf_counter()
        tasks = [asyncio.create_task(client(http)) for _ in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=limit_s)
        for task in pending:
            task.cancel()
        if pending:
            result.timed_out = True
            await asyncio.gather(*pending, return_exceptions=True)
        result.wall_s = time.perf_counter() - began
    return result


def run_load(port: int, clients: int, requests: int, body: dict[str, Any], limit_s: float = TIME_LIMIT_S) -> LoadResult:
    """Drive POST /chat/ on 127.0.0.1:``port`` with ``clients`` concurrent clients; stops by itself."""
    return asyncio.run(_load(port, clients, requests, body, limit_s))


def run(choice: ModelChoice, quick: bool, sweep: bool = False) -> tuple[dict[str, Any], str, Any]:
    """Run the load suite; return (data, markdown body, chart function)."""
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    requests = QUICK_REQUESTS if quick else REQUESTS
    body = {"max_new_tokens": QUICK_MAX_NEW_TOKENS if quick else MAX_NEW_TOKENS, "temperature": 0.0, "seed": 0}
    configs = CONFIGS | (SWEEP if sweep else {})
    results: dict[str, Any] = {}
    for cpu_label, cpus in CPU_SETS.items():
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
        for rnd in range(QUICK_ROUNDS if quick else ROUNDS):
            for name in list(configs) if rnd % 2 == 0 else list(configs)[::-1]:  # interleaved: A B .. B A
                env = {**COMMON_ENV, **configs[name]}
                with running_server("ours", choice, serving, START_TIMEOUT_S, env, cpus=cpus) as (port, _, _proc):
                    run_load(port, 2, 4, body, 60)  # warm-up: first-run allocations, not measured
                    summary = run_load(port, CLIENTS, requests, body).summary()
                runs[name].append(summary)
                log(f"load {cpu_label} {name}: {summary['requests_per_s']:.2f} req/s, errors {summary['errors']}")
        base = median([r["requests_per_s"] for r in runs[BASELINE]])
        results[cpu_label] = {name: {
            "env": configs[name], "requests_per_s": median([r["requests_per_s"] for r in rs]),
            "vs_one_at_a_time": median([r["requests_per_s"] for r in rs]) / base if base else None,
            **{k: median([r[k] for r in rs]) for k in ("p50_ms", "p95_ms", "p99_ms")},
            "errors": dict(sum((Counter(r["errors"]) for r in rs), Counter())), "runs": rs,
        } for name, rs in runs.items()}
    data = {"clients": CLIENTS, "requests": requests, "body": body, "cpus": CPU_SETS, "results": results,
            "throughput_ratio": results["2 vCPU"]["shipped defaults"]["vs_one_at_a_time"]}
    rows = [[cpu_label, name, fmt(c["requests_per_s"], 2), f"{c['vs_one_at_a_time']:.2f}x", fmt(c["p50_ms"], 0),
             fmt(c["p95_ms"], 0), fmt(c["p99_ms"], 0), c["errors"] or "none"]
            for cpu_label, block in results.items() for name, c in block.items()]
    md = (f"Our server (int8), {CLIENTS} concurrent clients on 127.0.0.1, {requests} requests per run "
          f"(max_new_tokens {body['max_new_tokens']}, temperature 0), {ROUNDS if not quick else QUICK_ROUNDS} "
          f"interleaved run(s) each, medians; {COMMON_ENV} for all; \"1 vCPU\" is the server pinned to one core "
          f"with taskset.\n\n"
          + md_table(["CPUs", "server", "requests/s", "vs one at a time", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)
          + "\n\nThroughput ratio, shipped defaults / one at a time, 2 vCPU: "
          f"**{fmt(data['throughput_ratio'], 2)}x**\n")

    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        labels = [f"{c}\n{n}" for c, block in results.items() for n in block]
        values = [v for block in results.values() for v in block.values()]
        left.barh(labels, [v["requests_per_s"] for v in values], color="tab:blue")
        left.set_title("requests/s (higher is better)", fontsize=10)
        right.barh(labels, [v["p95_ms"] for v in values], color="tab:orange")
        right.set_title("p95 latency ms (lower is better)", fontsize=10)
        for ax in (left, right):
            ax.tick_params(axis="y", labelsize=7)
        fig.suptitle(f"Load: {CLIENTS} clients, {body['max_new_tokens']} new tokens each")

    return data, md, draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks load``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick, args.sweep)
    write_results("load", meta, data, body, chart)
    return {"load: throughput ratio, shipped defaults / one at a time, 16 clients, 2 vCPU":
                data["throughput_ratio"] or 0.0,
            "load: throughput ratio, shipped defaults / one at a time, 16 clients, 1 vCPU":
                data["results"]["1 vCPU"]["shipped defaults"]["vs_one_at_a_time"] or 0.0,
            "load: requests/s with the shipped defaults, 2 vCPU": data["results"]["2 vCPU"]["shipped defaults"][
                "requests_per_s"]}
