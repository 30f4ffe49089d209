"""load: throughput of our server serving one request at a time (MAX_BATCH_SIZE=1) vs batching (16).

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
CLIENTS = 16  # concurrent clients, for both configurations
REQUESTS = 96  # requests per run (full); every client keeps one in flight
QUICK_REQUESTS = 32
MAX_NEW_TOKENS = 32  # per request, greedy (temperature 0): the same work in both configurations
QUICK_MAX_NEW_TOKENS = 16
ROUNDS = 2  # start/measure/stop each configuration this many times, interleaved (A B A B)
QUICK_ROUNDS = 1
BATCH_SIZES = (1, 16)  # MAX_BATCH_SIZE of the two configurations; 1 is one-at-a-time serving
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


def run(choice: ModelChoice, quick: bool) -> tuple[dict[str, Any], str, Any]:
    """Run the load suite; return (data, markdown body, chart function)."""
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    requests = QUICK_REQUESTS if quick else REQUESTS
    body = {"max_new_tokens": QUICK_MAX_NEW_TOKENS if quick else MAX_NEW_TOKENS, "temperature": 0.0, "seed": 0}
    runs: dict[int, list[dict[str, Any]]] = {b: [] for b in BATCH_SIZES}
    for rnd in range(QUICK_ROUNDS if quick else ROUNDS):
        for batch in BATCH_SIZES if rnd % 2 == 0 else BATCH_SIZES[::-1]:
            env = {"MAX_BATCH_SIZE": str(batch), "MAX_QUEUE": str(max(64, CLIENTS * 2))}
            with running_server("ours", choice, serving, START_TIMEOUT_S, env) as (port, _, _proc):
                run_load(port, 2, 4, body, 60)  # warm-up: first-run allocations, not measured
                summary = run_load(port, CLIENTS, requests, body).summary()
            runs[batch].append(summary)
            log(f"load MAX_BATCH_SIZE={batch}: {summary['requests_per_s']:.2f} req/s, errors {summary['errors']}")
    configs = {}
    for batch, rs in runs.items():
        configs[str(batch)] = {
            "requests_per_s": median([r["requests_per_s"] for r in rs]),
            **{k: median([r[k] for r in rs]) for k in ("p50_ms", "p95_ms", "p99_ms")},
            "errors": dict(sum((Counter(r["errors"]) for r in rs), Counter())), "runs": rs,
        }
    lo, hi = configs[str(BATCH_SIZES[0])], configs[str(BATCH_SIZES[-1])]
    data = {"clients": CLIENTS, "requests": requests, "body": body, "configs": configs,
            "throughput_ratio": hi["requests_per_s"] / lo["requests_per_s"] if lo["requests_per_s"] else None}
    rows = [[f"MAX_BATCH_SIZE={b}", fmt(c["requests_per_s"], 2), fmt(c["p50_ms"], 0), fmt(c["p95_ms"], 0),
             fmt(c["p99_ms"], 0), c["errors"] or "none"] for b, c in configs.items()]
    md = (f"Our server (int8), {CLIENTS} concurrent clients on 127.0.0.1, {requests} requests per run "
          f"(max_new_tokens {body['max_new_tokens']}, temperature 0), {len(lo['runs'])} interleaved run(s) each, "
          f"medians.\n\n" + md_table(["server", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)
          + f"\n\nThroughput ratio, batching / one-at-a-time: **{fmt(data['throughput_ratio'], 2)}x**\n")

    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        names = [f"batch {b}" for b in configs]
        left.bar(names, [c["requests_per_s"] for c in configs.values()], color=["tab:grey", "tab:blue"])
        left.set_title("requests/s (higher is better)", fontsize=10)
        for q, offset in (("p50_ms", -0.25), ("p95_ms", 0), ("p99_ms", 0.25)):
            right.bar([i + offset for i in range(len(names))], [c[q] for c in configs.values()], 0.25, label=q)
        right.set_xticks(range(len(names)), names)
        right.set_title("latency ms (lower is better)", fontsize=10)
        right.legend(fontsize=8)
        fig.suptitle(f"Load: {CLIENTS} clients, MAX_BATCH_SIZE 1 vs {BATCH_SIZES[-1]}")

    return data, md, draw


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Entry point of ``python -m benchmarks load``; returns the headline figures for ``all``."""
    data, body, chart = run(choice, args.quick)
    write_results("load", meta, data, body, chart)
    return {f"load: throughput ratio MAX_BATCH_SIZE={BATCH_SIZES[-1]} / 1": data["throughput_ratio"] or 0.0,
            f"load: requests/s at MAX_BATCH_SIZE={BATCH_SIZES[-1]}":
                data["configs"][str(BATCH_SIZES[-1])]["requests_per_s"]}
