"""A bounded load on loopback: on every route and shape, each request gets a complete answer or a
clean 503, and memory stays flat."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import start_server

REQUESTS = 2000  # per shape
CLIENTS = 64  # at once, against a queue of 16 and batches of 8: part of the burst must be refused
TIME_LIMIT = 240  # seconds per round; the round stops by itself past this
ANSWER_FIELDS = {"answer", "model", "finish_reason", "usage", "grounded", "sources", "conversation_id"}
QUESTION = {"question": "What is AWS EC2?", "max_new_tokens": 16, "temperature": 0}
COMPLETION = {"messages": [{"role": "user", "content": "What is AWS EC2?"}], "max_tokens": 16, "temperature": 0}
SHAPES = {  # name: (path, body)
    "chat": ("/chat/", QUESTION),
    "chat-sse": ("/chat/", {**QUESTION, "stream": True}),
    "v1": ("/v1/chat/completions", COMPLETION),
    "v1-stream": ("/v1/chat/completions", {**COMPLETION, "stream": True}),
}


def sse_data(text: str) -> Iterator[str]:
    return (line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: "))


def outcome(shape: str, status: int, text: str) -> str:
    """"ok" for a complete answer, "overloaded" for a clean 503, else what went wrong."""
    if status == 503:
        body = json.loads(text)
        kind = body["error"]["code"] if shape.startswith("v1") else body["error_type"]
        return "overloaded" if kind == "overloaded" else f"503 {kind}"
    if status != 200:
        return f"{status} {text[:200]}"
    complete = {
        "chat": lambda: set(json.loads(text)) == ANSWER_FIELDS,
        "chat-sse": lambda: "event: done" in text and "event: error" not in text,
        "v1": lambda: json.loads(text)["choices"][0]["finish_reason"] in {"stop", "length"},
        "v1-stream": lambda: list(sse_data(text))[-1] == "[DONE]"
                             and any('"finish_reason": "length"' in d or '"finish_reason": "stop"' in d
                                     for d in sse_data(text)),
    }[shape]()
    return "ok" if complete else f"incomplete {text[-200:]}"


async def hammer(url: str, shape: str) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    path, body = SHAPES[shape]
    todo = iter(range(REQUESTS))
    stop_at = time.monotonic() + TIME_LIMIT
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            for _ in todo:
                if time.monotonic() > stop_at:
                    return
                try:
                    response = await client.post(path, json=body)
                    outcomes[outcome(shape, response.status_code, response.text)] += 1
                except httpx.TransportError as exc:  # counted, not raised: the test names every failure
                    outcomes[f"lost connection: {type(exc).__name__}"] += 1

        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return outcomes


@pytest.fixture(scope="module")
def loaded(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, psutil.Process]]:
    log = tmp_path_factory.mktemp("load") / "server.log"
    proc, url = start_server(int8_dir, log, MAX_QUEUE="16", MAX_BATCH_SIZE="8")
    try:
        yield url, psutil.Process(proc.pid)
        assert proc.poll() is None and httpx.get(f"{url}/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_burst_of_2000_requests_at_64_clients(loaded: tuple[str, Any], shape: str) -> None:
    outcomes = asyncio.run(hammer(loaded[0], shape))
    assert set(outcomes) <= {"ok", "overloaded"}, outcomes
    assert sum(outcomes.values()) == REQUESTS
    assert outcomes["ok"] > REQUESTS // 4


@pytest.mark.slow
def test_memory_stays_flat_over_a_burst(loaded: tuple[str, psutil.Process]) -> None:
    url, server = loaded
    asyncio.run(hammer(url, "chat"))  # warm-up round: allocator and arenas settle
    before = server.memory_info().rss
    asyncio.run(hammer(url, "chat-sse"))
    after = server.memory_info().rss
    assert after - before < 32 * 2**20, f"RSS grew by {(after - before) / 2**20:.1f} MiB"
