"""What conversation history costs: per turn on SQLite and PostgreSQL, and in throughput at 16 clients.

Per turn: one request at a time, each continuing its conversation, over HTTP; the
``Server-Timing`` header gives ``history`` (reading the last turns) and
``record`` (writing the turn in one transaction), whose sum is what history adds
to a turn. Throughput: 16 clients, each a conversation of several turns, with
history off, on SQLite and on PostgreSQL, servers started in alternating order.
PostgreSQL is a local cluster started for the run (Debian's package), on loopback.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    ModelChoice,
    ensure_serving_dirs,
    fmt,
    log,
    md_table,
    median,
    percentile,
    server_timing,
    write_results,
)
from benchmarks.procs import HOST, free_port, running_server

CLIENTS = 16
TOKENS = 32


def per_turn(port: int, conversations: int, turns: int) -> dict[str, list[float]]:
    """Sequential turns: client latency and the history stages of each."""
    out: dict[str, list[float]] = {"total": [], "history": [], "record": []}
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as http:
        for c in range(conversations):
            cid = None
            for t in range(turns):
                began = time.perf_counter()
                response = http.post("/chat/", json={"question": f"conversation {c} question {t}",
                                                     "conversation_id": cid, "temperature": 0, "max_new_tokens": 8})
                out["total"].append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
                cid = response.json()["conversation_id"]
                stages = server_timing(response.headers["server-timing"])
                for name in ("history", "record"):
                    if name in stages:
                        out[name].append(stages[name])
    return out


async def _clients(port: int, turns: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        cid = None
        for t in range(turns):
            began = time.perf_counter()
            response = await http.post("/chat/", json={"question": f"client {n} turn {t}", "conversation_id": cid,
                                                       "temperature": 0, "max_new_tokens": TOKENS})
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                errors += 1
                return
            cid = response.json()["conversation_id"]

    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=120) as http:
        await asyncio.gather(*(client(n, http) for n in range(CLIENTS)))
    return len(latencies) / (time.perf_counter() - began), latencies, errors


def main(choice: ModelChoice, args: Any, meta: dict[str, Any]) -> dict[str, float]:
    serving = ensure_serving_dirs(choice, ("int8",))["int8"]
    conversations, turns, rounds = (2, 4, 1) if args.quick else (5, 8, 2)
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    sqlite = f"sqlite:///{work}/history.db"
    # "stored only" keeps every turn but reads none back (HISTORY_TURNS=0): the database's own cost,
    # apart from the longer prompts that earlier turns make.
    backends = {"off": ("none", "8"), "sqlite, stored only": (sqlite, "0"), "sqlite": (sqlite, "8")}
    pg = None
    try:
        from tests.postgres import PostgresServer, binaries

        if binaries() is not None:
            pg = PostgresServer(free_port())
            postgres = pg.create_database("bench")
            backends.update({"postgresql, stored only": (postgres, "0"), "postgresql": (postgres, "8")})
        else:
            log("history: no PostgreSQL binaries (apt-get install postgresql); measuring SQLite only")
        runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
        for rnd in range(rounds):
            for backend in list(backends) if rnd % 2 == 0 else list(backends)[::-1]:
                url, context = backends[backend]
                env = {"DATABASE_URL": url, "HISTORY_TURNS": context, "MAX_QUEUE": "256"}
                with running_server("ours", choice, serving, 120, env) as (port, _, _proc):
                    per_turn(port, 1, 2)  # warm-up
                    seq = per_turn(port, conversations, turns)
                    rps, lat, errors = asyncio.run(_clients(port, turns))
                runs[backend].append({"seq": seq, "rps": rps, "latencies": lat, "errors": errors})
                log(f"history {backend}: {rps:.2f} req/s at {CLIENTS} clients, errors {errors}")
    finally:
        if pg is not None:
            pg.destroy()
    data: dict[str, Any] = {}
    for backend, rs in runs.items():
        seq = {k: [v for r in rs for v in r["seq"][k]] for k in ("total", "history", "record")}
        added = [h + r for h, r in zip(seq["history"], seq["record"], strict=False)]
        lat = [v for r in rs for v in r["latencies"]]
        data[backend] = {
            "turn_p50_ms": median(seq["total"]), "turn_p95_ms": percentile(seq["total"], 95),
            "history_p50_ms": median(seq["history"]), "record_p50_ms": median(seq["record"]),
            "added_p50_ms": median(added), "added_p95_ms": percentile(added, 95),
            "requests_per_s": median([r["rps"] for r in rs]), "p95_ms_16_clients": percentile(lat, 95),
            "errors": sum(r["errors"] for r in rs)}
    rows = [[b, fmt(d["added_p50_ms"], 2), fmt(d["added_p95_ms"], 2), fmt(d["history_p50_ms"], 2),
             fmt(d["record_p50_ms"], 2), fmt(d["turn_p50_ms"], 1), fmt(d["requests_per_s"], 2),
             fmt(d["p95_ms_16_clients"], 0), d["errors"]] for b, d in data.items()]
    body = (f"Our server (int8), history off / SQLite / PostgreSQL (local cluster on loopback); 'stored only' keeps "
            f"every turn but puts none back into the prompt (HISTORY_TURNS=0), the others the last 8. Per turn: one "
            f"request at a time, {conversations} conversations x {turns} turns, 8 new tokens; added = history read + "
            f"turn write from `Server-Timing`. Throughput: {CLIENTS} clients, each a {turns}-turn conversation, "
            f"{TOKENS} new tokens. {rounds} interleaved round(s), medians (ms).\n\n"
            + md_table(["history", "added p50", "added p95", "read p50", "write p50", "turn p50", "req/s @16",
                        "p95 @16", "errors"], rows) + "\n")

    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        names = list(data)
        left.bar(names, [data[n]["added_p50_ms"] or 0 for n in names], color="tab:blue")
        left.set_ylabel("ms added per turn (p50)")
        right.bar(names, [data[n]["requests_per_s"] for n in names], color="tab:green")
        right.set_ylabel(f"requests/s at {CLIENTS} clients")
        fig.suptitle("What conversation history costs")

    write_results("history", meta, data, body, draw)
    return {"history added ms p50 (sqlite)": data["sqlite"]["added_p50_ms"],
            "stored-only history / off throughput ratio":
                data["sqlite, stored only"]["requests_per_s"] / data["off"]["requests_per_s"]}
