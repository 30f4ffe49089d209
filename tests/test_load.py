"""A bounded load on loopback: every request gets an answer or a clean 503, and memory stays flat."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import start_server

REQUESTS = 2000  # in all
CLIENTS = 64  # at once, against a queue of 16 and batches of 8: most of the burst must be refused
TIME_LIMIT = 300  # seconds; the run stops by itself past this
ANSWER_FIELDS = {"answer", "model", "finish_reason", "usage", "grounded", "sources", "conversation_id"}


async def hammer(url: str) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    todo = iter(range(REQUESTS))
    stop_at = time.monotonic() + TIME_LIMIT
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            for i in todo:
                if time.monotonic() > stop_at:
                    return
                response = await client.post("/chat/", json={"question": f"What is AWS EC2? #{i % 7}",
                                                             "max_new_tokens": 16, "temperature": 0})
                body = response.json()
                if response.status_code == 200 and set(body) == ANSWER_FIELDS:
                    outcomes["ok"] += 1
                elif response.status_code == 503 and body["error_type"] == "overloaded":
                    outcomes["overloaded"] += 1
                else:
                    outcomes[f"{response.status_code} {body}"] += 1

        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return outcomes


@pytest.mark.slow
def test_burst_of_2000_requests_at_64_clients(int8_dir: Path, tmp_path: Path) -> None:
    proc, url = start_server(int8_dir, tmp_path / "server.log", MAX_QUEUE="16", MAX_BATCH_SIZE="8")
    try:
        server = psutil.Process(proc.pid)
        asyncio.run(hammer(url))  # warm-up round: allocator and arenas settle
        before = server.memory_info().rss
        outcomes = asyncio.run(hammer(url))
        after = server.memory_info().rss
        alive = proc.poll() is None and httpx.get(f"{url}/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(outcomes) <= {"ok", "overloaded"}, outcomes
    assert sum(outcomes.values()) == REQUESTS
    assert outcomes["ok"] > 0
    assert alive
    assert after - before < 32 * 2**20, f"RSS grew by {(after - before) / 2**20:.1f} MiB"
