"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and streamed) and ``GET /v1/models``.

Messages map onto the one prompt template: the last user message is the
question, earlier turns go before it as context, oldest dropped first until
the prompt fits the encoder's token limit.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from server import prompt
from server.errors import APIError, openai_error_body
from server.gate import admit, check_request, complete, read_body
from server.sampling import SamplingParams
from server.schemas import MAX_SEED, parse_body
from server.service import Service
from server.streaming import Generation

FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text is understood
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
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

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


def build_prompt(service: Service, messages: list[Message]) -> list[int]:
    """Token ids of the last user message in the template, with as much earlier context as fits."""
    if messages[-1].role != "user" or not messages[-1].text().strip():
        raise APIError(422, "messages: the last message must be a non-empty user message", "validation")
    question = prompt.render(service.settings.prompt_template, messages[-1].text())
    turns = [f"{m.role}: {m.text().strip()}" for m in messages[:-1] if m.text().strip()]
    limit = service.settings.max_input_tokens
    while True:
        context = "Conversation so far:\n" + "\n".join(turns) + "\n\n" if turns else ""
        ids = service.codec.encode(context + question)
        if len(ids) <= limit or not turns:
            break
        turns.pop(0)  # the oldest turn goes first
    if len(ids) > limit:
        raise APIError(422, f"messages: the last message is {len(ids)} tokens with the prompt, "
                            f"more than the limit of {limit}", "validation")
    return ids


def _params(body: CompletionRequest, service: Service) -> SamplingParams:
    s = service.settings
    wanted = body.max_completion_tokens or body.max_tokens or s.max_new_tokens
    if wanted > s.max_new_tokens_limit:
        raise APIError(422, f"max_tokens: must be at most {s.max_new_tokens_limit}", "validation")
    return SamplingParams(max_new_tokens=wanted,
                          temperature=s.temperature if body.temperature is None else body.temperature,
                          top_p=s.top_p if body.top_p is None else body.top_p, seed=body.seed)


async def models(request: Request) -> JSONResponse:
    service: Service = request.state.service
    return JSONResponse({"object": "list", "data": [
        {"id": service.model_name, "object": "model", "created": 0, "owned_by": "iscoolgpt"}]})


async def chat_completions(request: Request) -> Response:
    service: Service = request.state.service
    check_request(request, service)
    body = parse_body(await read_body(request, service.settings.max_body_bytes), CompletionRequest)
    ids = build_prompt(service, body.messages)
    job = admit(service, ids, _params(body, service), stream=True)
    generation = Generation(job, service.codec, service.settings.request_timeout, body.stops())
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": service.model_name}
    if body.stream:
        return StreamingResponse(_chunks(service, generation, head, len(ids)), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    answer = await complete(service, generation, request)
    return JSONResponse({**head, "object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": answer},
        "finish_reason": FINISH[generation.finish_reason or "stop"]}],
        "usage": _usage(len(ids), generation.completion_tokens)})


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


async def _chunks(service: Service, generation: Generation, head: dict[str, Any],
                  prompt_tokens: int) -> AsyncIterator[str]:
    """``data: {chunk}`` lines as OpenAI streams them, ending with ``data: [DONE]``."""

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        payload = {**head, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for piece in generation.pieces():
            yield chunk({"content": piece})
        yield chunk({}, FINISH[generation.finish_reason or "stop"])
        usage = {**head, "object": "chat.completion.chunk", "choices": [],
                 "usage": _usage(prompt_tokens, generation.completion_tokens)}
        yield f"data: {json.dumps(usage)}\n\n"
    except APIError as exc:
        yield f"data: {json.dumps(openai_error_body(exc.status, exc.message, exc.error_type))}\n\n"
    finally:
        service.drain.leave()
    yield "data: [DONE]\n\n"
