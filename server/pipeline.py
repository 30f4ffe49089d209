"""The answer pipeline every generating route runs, once admitted (:mod:`server.admission.gate`):
history -> retrieval -> prompt; then the batcher, and :mod:`server.record`.

``/chat/`` (JSON and SSE) and ``/v1/chat/completions`` (JSON and chunks) differ
only in how they read the request and write the answer; what goes into the
prompt, which sources come back and what is recorded is decided here, once.
Store calls and retrieval run in worker threads: the event loop never embeds,
scores or waits on the database.

Conversations (``/chat/`` only; ``/v1`` is stateless, as OpenAI's is): the
last ``HISTORY_TURNS`` turns come back as context, and a follow-up retrieves
with the previous question joined to its own, so "How much does it cost?"
searches with the conversation's subject in mind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from server import prompt
from server.errors import APIError
from server.retrieval.knowledge import Hit, KnowledgeBase, UnknownFilter
from server.service import Service
from server.storage.store import Turn, new_id


@dataclass(frozen=True)
class Ask:
    """What a route asks the pipeline for, whatever its wire format."""

    question: str
    grounded: bool | None = None  # None: grounded whenever the serving directory has a knowledge base
    k: int | None = None  # passages to retrieve; None: the RETRIEVAL_K setting
    services: tuple[str, ...] | None = None  # retrieve only from these services (botocore ids)
    sources: tuple[str, ...] | None = None  # ... and these corpora
    turns: tuple[str, ...] = ()  # earlier turns the client sent (/v1), oldest first
    field: str = "question"  # where the question came from, for error messages
    user: str = "anonymous"
    conversation: bool = False  # keep this exchange as a turn of a stored conversation (/chat/)
    conversation_id: str | None = None  # continue this one; None starts a new one


@dataclass(frozen=True)
class Prepared:
    """A prompt ready for the batcher, the passages in it, its conversation, and what the stages cost."""

    prompt_ids: list[int]
    grounded: bool
    sources: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    conversation_id: str | None = None  # None: not kept (history off, or /v1)
    new_conversation: bool = False

    def sources_json(self) -> list[dict[str, Any]]:
        """The sources as every route returns them, in rank order."""
        return [{**h.passage.as_json(), "score": round(h.score, 6)} for h in self.sources]


async def retrieve(knowledge: KnowledgeBase, query: str, k: int, services: tuple[str, ...] | None = None,
                   sources: tuple[str, ...] | None = None, field: str = "filter") -> list[Hit]:
    """The ``k`` best passages, in a worker thread; a filter naming what the knowledge base lacks is a 422."""
    try:
        narrowed = knowledge.narrow(services, sources)  # checked before the work is queued
    except UnknownFilter as exc:
        raise APIError(422, f"{field}.{exc}", "validation") from None
    return await run_in_threadpool(knowledge.search, query, k, "hybrid", narrowed)


def _grounded(service: Service, ask: Ask) -> bool:
    if ask.grounded is None:
        return service.knowledge is not None
    if ask.grounded and service.knowledge is None:
        raise APIError(422, "grounded: this server has no knowledge base (export with --knowledge or --docs)",
                       "validation")
    return ask.grounded


async def prepare(service: Service, ask: Ask) -> Prepared:
    """History (if kept), retrieval (if grounded), and the prompt within the token budget."""
    settings = service.settings
    grounded = _grounded(service, ask)
    timings: dict[str, float] = {}

    # History: the conversation's last turns (404 if it is not the caller's), or a new id.
    began = time.perf_counter()
    history: list[Turn] = []
    conversation_id, new = None, False
    if ask.conversation and (service.history.enabled or ask.conversation_id is not None):
        if ask.conversation_id is None:
            await service.history.require()  # no work is spent on a turn that could not be stored
            conversation_id, new = new_id(), True
        else:
            history = await service.history.context(ask.user, ask.conversation_id)
            conversation_id = ask.conversation_id
        timings["history_ms"] = (time.perf_counter() - began) * 1000

    # Retrieval: a follow-up searches with the previous question too.
    hits: list[Hit] = []
    if grounded:
        assert service.knowledge is not None
        query = f"{history[-1].question} {ask.question}" if history else ask.question
        began = time.perf_counter()
        hits = await retrieve(service.knowledge, query, ask.k or settings.retrieval_k, ask.services, ask.sources)
        timings["retrieval_ms"] = (time.perf_counter() - began) * 1000
        service.metrics.retrieval_seconds.observe(timings["retrieval_ms"] / 1000)

    # Prompt: the most recent turn, passages, then older turns, as many as fit the encoder's budget.
    began = time.perf_counter()
    # At most the last MAX_TURNS: a turn costs at least a few tokens, so more could never fit, and each
    # candidate re-encodes the prompt (in a worker thread: tokenizing is CPU work).
    turns = ([f"user: {t.question}\nassistant: {t.answer}" for t in history] or list(ask.turns))[-prompt.MAX_TURNS:]
    try:
        composed = await run_in_threadpool(
            prompt.compose, service.codec.encode, settings.max_input_tokens, ask.question,
            template=settings.prompt_template, grounded_template=settings.grounded_template if grounded else None,
            passages=[prompt.passage_text(h.passage.title, h.passage.text) for h in hits], turns=turns)
    except prompt.PromptTooLong as exc:
        raise APIError(422, f"{ask.field}: {exc}", "validation") from None
    timings["prompt_ms"] = (time.perf_counter() - began) * 1000
    return Prepared(composed.ids, grounded, hits[: composed.passages], timings, conversation_id, new)
