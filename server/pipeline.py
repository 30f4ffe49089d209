"""The answer pipeline every generating route runs: retrieval -> prompt -> (admission, batcher) -> record.

``/chat/`` (JSON and SSE) and ``/v1/chat/completions`` (JSON and chunks) differ
only in how they read the request and write the answer; what goes into the
prompt, which sources come back and what is recorded is decided here, once.
Retrieval runs in a worker thread: the event loop never embeds or scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from server import prompt
from server.batcher import Result
from server.errors import APIError
from server.retrieval.knowledge import Hit
from server.service import Service


@dataclass(frozen=True)
class Ask:
    """What a route asks the pipeline for, whatever its wire format."""

    question: str
    grounded: bool | None = None  # None: grounded whenever the serving directory has a knowledge base
    k: int | None = None  # passages to retrieve; None: the RETRIEVAL_K setting
    turns: tuple[str, ...] = ()  # earlier turns as "role: text", oldest first
    field: str = "question"  # where the question came from, for error messages


@dataclass(frozen=True)
class Prepared:
    """A prompt ready for the batcher, the passages in it, and what the stages cost."""

    prompt_ids: list[int]
    grounded: bool
    sources: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage

    def sources_json(self) -> list[dict[str, Any]]:
        """The sources as every route returns them, in rank order."""
        return [{"id": h.passage.id, "title": h.passage.title, "url": h.passage.url, "score": round(h.score, 6)}
                for h in self.sources]


def _grounded(service: Service, ask: Ask) -> bool:
    if ask.grounded is None:
        return service.knowledge is not None
    if ask.grounded and service.knowledge is None:
        raise APIError(422, "grounded: this server has no knowledge base (export with --knowledge or --docs)",
                       "validation")
    return ask.grounded


async def prepare(service: Service, ask: Ask) -> Prepared:
    """Retrieve (if grounded) and compose the prompt within the token budget."""
    settings = service.settings
    grounded = _grounded(service, ask)
    k = ask.k or settings.retrieval_k  # the route has checked it against RETRIEVAL_K_MAX
    timings: dict[str, float] = {}

    # Retrieval: the question alone; earlier turns are the prompt's business.
    hits: list[Hit] = []
    began = time.perf_counter()
    if grounded:
        assert service.knowledge is not None
        hits = await run_in_threadpool(service.knowledge.search, ask.question, k)
        timings["retrieval_ms"] = (time.perf_counter() - began) * 1000
        service.metrics.retrieval_seconds.observe(timings["retrieval_ms"] / 1000)

    # Prompt: passages, then turns, as many as fit the encoder's budget.
    began = time.perf_counter()
    try:
        composed = prompt.compose(
            service.codec.encode, settings.max_input_tokens, ask.question, template=settings.prompt_template,
            grounded_template=settings.grounded_template if grounded else None,
            passages=[prompt.passage_text(h.passage.title, h.passage.text) for h in hits], turns=ask.turns)
    except prompt.PromptTooLong as exc:
        raise APIError(422, f"{ask.field}: {exc}", "validation") from None
    timings["prompt_ms"] = (time.perf_counter() - began) * 1000
    return Prepared(composed.ids, grounded, hits[: composed.passages], timings)


def record(service: Service, fields: dict[str, Any], ask: Ask, prepared: Prepared, result: Result) -> None:
    """Put a finished answer into the metrics and its request log line."""
    service.record(fields, ask.question, len(prepared.prompt_ids), result)
    fields.update({k: round(v, 2) for k, v in prepared.timings.items()})
    fields.update(grounded=prepared.grounded, sources=len(prepared.sources))


def server_timing(prepared: Prepared, result: Result) -> str:
    """The ``Server-Timing`` header of a whole answer: what each stage took, in milliseconds."""
    stages = {"retrieval": prepared.timings.get("retrieval_ms"), "prompt": prepared.timings.get("prompt_ms"),
              "queue": result.queue_seconds * 1000, "prefill": result.prefill_seconds * 1000,
              "decode": result.decode_seconds * 1000}
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in stages.items() if ms is not None)
