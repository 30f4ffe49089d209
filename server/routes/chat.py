"""``POST /chat/``: one cloud question, answered whole (JSON) or as it is written (SSE), with its sources,
and kept as a turn of the caller's conversation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from server.admission.gate import admitted, check_request, complete, read_body
from server.errors import APIError
from server.generation.streaming import Generation, sse
from server.pipeline import Ask, Prepared
from server.record import record, server_timing
from server.schemas import ChatResponse, Source, Usage, parse_chat, sampling_params
from server.service import Service

log = logging.getLogger("iscoolgpt.chat")


async def chat(request: Request) -> Response:
    """Answer one cloud question, whole or streamed, grounded on the knowledge base if it has one."""
    service: Service = request.state.service
    settings = service.settings
    identity = await check_request(request, service)
    body = parse_chat(await read_body(request, settings.max_body_bytes), settings)
    narrow = body.filter
    ask = Ask(body.question, grounded=body.grounded, k=body.k, user=identity.user, conversation=True,
              conversation_id=body.conversation_id, services=narrow.services() if narrow else None,
              sources=narrow.sources() if narrow else None)
    prepared, job = await admitted(service, ask, sampling_params(body, settings), every_token=body.stream)
    # One way to wait for every route and shape: the answer as it is written, whole or piece by piece.
    generation = Generation(job, service.codec, settings.request_timeout)
    if body.stream:
        events = _chat_events(service, generation, ask, prepared, request.state.log)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = await complete(service, generation, request)
    result = job.future.result()
    await record(service, request.state.log, ask, prepared, result, answer)
    response = ChatResponse(
        answer=answer,
        model=service.model_name,
        finish_reason=result.finish_reason,
        usage=Usage(prompt_tokens=len(prepared.prompt_ids), completion_tokens=len(result.tokens)),
        grounded=prepared.grounded,
        sources=[Source(**source) for source in prepared.sources_json()],
        conversation_id=prepared.conversation_id,
    )
    return JSONResponse(response.model_dump(), headers={"Server-Timing": server_timing(prepared, result)})


async def _chat_events(service: Service, generation: Generation, ask: Ask, prepared: Prepared,
                       fields: dict[str, Any]) -> AsyncIterator[str]:
    """SSE: a ``token`` event per piece, then ``done`` with the whole answer and its sources, or ``error``."""
    try:
        async for piece in generation.pieces():
            yield sse("token", {"text": piece})
        result = generation.job.future.result()
        await record(service, fields, ask, prepared, result, generation.shown)
        yield sse("done", {"answer": generation.shown, "model": service.model_name,
                           "finish_reason": generation.finish_reason,
                           "usage": {"prompt_tokens": len(prepared.prompt_ids),
                                     "completion_tokens": generation.completion_tokens},
                           "grounded": prepared.grounded, "sources": prepared.sources_json(),
                           "conversation_id": prepared.conversation_id})
    except APIError as exc:  # the status line is gone already: the error travels in the stream
        service.count_abandoned(exc)
        yield sse("error", {"error": exc.message, "error_type": exc.error_type})
    except asyncio.CancelledError:  # the client went away: Generation freed the slot
        service.metrics.cancelled.labels("cancelled").inc()
        raise
    except Exception:  # never a cut-off stream without a word: the client gets an error event
        log.exception("streamed answer failed")
        yield sse("error", {"error": "internal server error", "error_type": "internal"})
    finally:
        service.drain.leave()
