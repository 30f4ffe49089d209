"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and streamed) and ``GET /v1/models``.

Messages map onto the answer pipeline: the last user message is the question
(and what retrieval searches for), earlier turns go before it as context,
within the budget :mod:`server.prompt` sets. Grounding works as on ``/chat/``:
``grounded`` and ``k`` are accepted as extra body fields, and the sources come
back in the extension field ``sources`` (of the completion, or of the chunk
that carries ``finish_reason``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from server.admission.gate import admitted, caller, check_request, complete, read_body
from server.errors import APIError, openai_error_body
from server.generation.sampling import SamplingParams
from server.generation.streaming import Generation
from server.pipeline import Ask, Prepared
from server.record import record
from server.schemas import MAX_SEED, SearchFilter, check_k, parse_body
from server.service import Service

FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are understood, others are skipped."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _no_nul(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        texts = [value] if isinstance(value, str) else [p.text for p in value or []]
        if any("\x00" in t for t in texts):
            raise ValueError("content must not contain NUL characters")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text is understood
            return " ".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class CompletionRequest(BaseModel):
    """The fields of OpenAI's chat completion request that a T5 model can honour; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)
    grounded: bool | None = None  # extension: as on /chat/
    k: int | None = Field(None, ge=1)  # extension: passages to retrieve
    filter: SearchFilter | None = None  # extension: as on /chat/

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


def to_ask(body: CompletionRequest) -> Ask:
    """The last user message is the question; earlier turns are context, oldest first."""
    messages = body.messages
    if messages[-1].role != "user" or not messages[-1].text().strip():
        raise APIError(422, "messages: the last message must be a non-empty user message", "validation")
    turns = tuple(f"{m.role}: {m.text().strip()}" for m in messages[:-1] if m.text().strip())
    narrow = body.filter
    return Ask(messages[-1].text(), grounded=body.grounded, k=body.k, turns=turns, field="messages",
               services=narrow.services() if narrow else None, sources=narrow.sources() if narrow else None)


def _params(body: CompletionRequest, service: Service) -> SamplingParams:
    s = service.settings
    wanted = body.max_completion_tokens or body.max_tokens or min(s.max_new_tokens, s.max_new_tokens_limit)
    if wanted > s.max_new_tokens_limit:
        raise APIError(422, f"max_tokens: must be at most {s.max_new_tokens_limit}", "validation")
    return SamplingParams(max_new_tokens=wanted,
                          temperature=s.temperature if body.temperature is None else body.temperature,
                          top_p=s.top_p if body.top_p is None else body.top_p, seed=body.seed)


async def models(request: Request) -> JSONResponse:
    service: Service = request.state.service
    await caller(request, service)
    names = [service.model_name, *([service.embedder_name] if service.embedder_name else [])]
    return JSONResponse({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "iscoolgpt"} for name in names]})


async def chat_completions(request: Request) -> Response:
    service: Service = request.state.service
    identity = await check_request(request, service)
    body = parse_body(await read_body(request, service.settings.max_body_bytes), CompletionRequest)
    check_k(body.k, service.settings)
    ask = replace(to_ask(body), user=identity.user)
    if len(ask.question) > service.settings.max_question_chars:  # as on /chat/, before any retrieval
        raise APIError(422, f"messages: the question is longer than {service.settings.max_question_chars} "
                       "characters", "validation")
    # Read whole and without stop strings: no need to see each token as it comes.
    prepared, job = await admitted(service, ask, _params(body, service), every_token=body.stream or bool(body.stops()))
    generation = Generation(job, service.codec, service.settings.request_timeout, body.stops())
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": service.model_name}
    if body.stream:
        chunks = _chunks(service, generation, head, ask, prepared, request.state.log)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    answer = await complete(service, generation, request)
    await _record(service, request.state.log, ask, prepared, generation, answer)
    return JSONResponse({**head, "object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": answer},
        "finish_reason": FINISH[generation.finish_reason or "stop"]}],
        "usage": _usage(len(prepared.prompt_ids), generation.completion_tokens),
        "sources": prepared.sources_json()})


async def _record(service: Service, fields: dict[str, Any], ask: Ask, prepared: Prepared, generation: Generation,
                  answer: str) -> None:
    """Record the answer; one cut short by a stop string has no batcher result to record."""
    future = generation.job.future
    if future.done() and not future.cancelled() and future.exception() is None:
        await record(service, fields, ask, prepared, future.result(), answer)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


async def _chunks(service: Service, generation: Generation, head: dict[str, Any], ask: Ask, prepared: Prepared,
                  fields: dict[str, Any]) -> AsyncIterator[str]:
    """``data: {chunk}`` lines as OpenAI streams them, ending with ``data: [DONE]``."""

    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        payload = {**head, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for piece in generation.pieces():
            yield chunk({"content": piece})
        await _record(service, fields, ask, prepared, generation, generation.shown)
        yield chunk({}, FINISH[generation.finish_reason or "stop"], sources=prepared.sources_json())
        usage = {**head, "object": "chat.completion.chunk", "choices": [],
                 "usage": _usage(len(prepared.prompt_ids), generation.completion_tokens)}
        yield f"data: {json.dumps(usage)}\n\n"
    except APIError as exc:
        yield f"data: {json.dumps(openai_error_body(exc.status, exc.message, exc.error_type))}\n\n"
    except Exception:  # never a cut-off stream without a word
        logging.getLogger("iscoolgpt.openai").exception("streamed completion failed")
        yield f"data: {json.dumps(openai_error_body(500, 'internal server error', 'internal'))}\n\n"
    finally:
        service.drain.leave()
    yield "data: [DONE]\n\n"
