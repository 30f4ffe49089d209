"""Continuous batching through the real engine: same answers, shared steps, freed slots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from export.local_models import qa_pairs
from server.generation.batcher import Batcher, QueueFull, Result
from server.generation.engine import Engine
from server.generation.sampling import SamplingParams
from server.generation.text import TextCodec
from server.prompt import DEFAULT_TEMPLATE, render

GREEDY = SamplingParams(max_new_tokens=40, temperature=0.0, top_p=1.0)


@pytest.fixture
def batcher(fp32_engine: Engine) -> Iterator[Batcher]:
    worker = Batcher(fp32_engine, eos_id=1, max_batch=8, wait_s=0.005, max_queue=16)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def endless(fp32_engine: Engine) -> Iterator[Batcher]:
    """A batcher whose end-of-sequence id no logit can choose: every generation runs to its limit."""
    worker = Batcher(fp32_engine, eos_id=-1, max_batch=8, wait_s=0.005, max_queue=16)
    worker.start()
    yield worker
    worker.stop()


async def ask(batcher: Batcher, prompt: list[int], params: SamplingParams = GREEDY, delay: float = 0) -> Result:
    await asyncio.sleep(delay)
    return await batcher.submit(prompt, params).future


def test_answers_are_identical_alone_and_batched(batcher: Batcher, codec: TextCodec) -> None:
    prompts = [codec.encode(render(DEFAULT_TEMPLATE, q)) for q, _ in qa_pairs()]

    async def alone() -> list[Result]:
        return [await ask(batcher, p) for p in prompts]

    async def together() -> list[Result]:
        # Staggered arrivals: later requests join a batch that is already decoding.
        return list(await asyncio.gather(*(ask(batcher, p, delay=0.002 * i) for i, p in enumerate(prompts))))

    single, batched = asyncio.run(alone()), asyncio.run(together())
    assert [codec.decode(r.tokens) for r in batched] == [a for _, a in qa_pairs()]
    assert [r.tokens for r in batched] == [r.tokens for r in single]
    assert max(r.batch_size for r in batched) > 1


def test_an_idle_batcher_starts_a_lone_request_at_once(fp32_engine: Engine, codec: TextCodec) -> None:
    patient = Batcher(fp32_engine, eos_id=1, max_batch=8, wait_s=2.0, max_queue=4)  # a long wait for company
    patient.start()
    try:
        result = asyncio.run(ask(patient, codec.encode("What is AWS EC2?")))
    finally:
        patient.stop()
    assert fp32_engine.joins_a_step  # the lean decoder: a newcomer joins the next step, no wait buys anything
    assert result.queue_seconds < 1.0  # far below the 2 s it would have waited for company


def test_full_queue_refuses_new_work(fp32_engine: Engine, codec: TextCodec) -> None:
    idle = Batcher(fp32_engine, eos_id=1, max_batch=1, wait_s=0.0, max_queue=2)  # not started: nothing drains

    async def flood() -> None:
        idle.submit([5, 1], GREEDY)
        idle.submit([5, 1], GREEDY)
        idle.submit([5, 1], GREEDY)

    with pytest.raises(QueueFull, match="2 requests are already waiting"):
        asyncio.run(flood())


def test_cancelled_request_leaves_the_batch(endless: Batcher, codec: TextCodec) -> None:
    long = SamplingParams(max_new_tokens=2000, temperature=1.0, top_p=1.0, seed=1)

    async def scenario() -> tuple[int, int]:
        job = endless.submit(codec.encode("What is AWS EC2?"), long)
        while endless.active == 0:
            await asyncio.sleep(0.001)
        job.cancelled = True
        while endless.active:
            await asyncio.sleep(0.001)
        return endless.active, len(job.tokens)

    active, produced = asyncio.run(scenario())
    assert active == 0
    assert 0 < produced < 2000


def test_event_loop_keeps_turning_during_a_generation(batcher: Batcher, codec: TextCodec) -> None:
    params = SamplingParams(max_new_tokens=2000, temperature=2.0, top_p=1.0, seed=3)

    async def scenario() -> int:
        job = batcher.submit(codec.encode("What is AWS EC2?"), params)
        ticks = 0
        # Were the model run on the event loop, the job would be done before the first tick.
        while not job.future.done():
            await asyncio.sleep(0)
            ticks += 1
        return ticks

    assert asyncio.run(scenario()) >= 3
