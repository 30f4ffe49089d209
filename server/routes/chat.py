"""``POST /chat/``: one cloud question, answered whole (JSON) or as it is written (SSE), with its sources,
and kept as a turn of the caller's conversation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from server import pipeline
from server.admission.gate import admit, check_request, read_body
from server.errors import APIError
from server.generation.batcher import GenerationError, Job, Result
from server.generation.streaming import Generation, sse
from server.pipeline import Ask, Prepared
from server.schemas import ChatResponse, Source, Usage, parse_chat, sampling_params
from server.service import Service

_POLL = 0.05  # seconds between checks for a vanished client or a passed deadline
log = logging.getLogger("iscoolgpt.chat")


async def chat(request: Request) -> Response:
    """Answer one cloud question, whole or streamed, grounded on the knowledge base if it has one."""
    service: Service = request.state.service
    settings = service.settings
    identity = await check_request(request, service)
    body = parse_chat(await read_body(request, settings.max_body_bytes), settings)
    ask = Ask(body.question, grounded=body.grounded, k=body.k, user=identity.user, conversation=True,
              conversation_id=body.conversation_id)
    prepared = await pipeline.prepare(service, ask)
    job = admit(service, prepared.prompt_ids, sampling_params(body, settings), stream=body.stream)
    if body.stream:
        generation = Generation(job, service.codec, settings.request_timeout)
        events = _chat_events(service, generation, ask, prepared, request.state.log)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    # The whole answer at once: wait on the job itself, with no per-token queue. Reading it through
    # the queue lost a connection in tests/test_load.py's burst, for a reason not yet understood.
    try:
        result = await _wait(request, job, settings.request_timeout)
    except APIError as exc:
        service.count_abandoned(exc)
        raise
    finally:
        service.drain.leave()
    answer = service.codec.decode(result.tokens)
    await pipeline.record(service, request.state.log, ask, prepared, result, answer)
    response = ChatResponse(
        answer=answer,
        model=service.model_name,
        finish_reason=result.finish_reason,
        usage=Usage(prompt_tokens=len(prepared.prompt_ids), completion_tokens=len(result.tokens)),
        grounded=prepared.grounded,
        sources=[Source(**source) for source in prepared.sources_json()],
        conversation_id=prepared.conversation_id,
    )
    return JSONResponse(response.model_dump(), headers={"Server-Timing": pipeline.server_timing(prepared, result)})


async def _wait(request: Request, job: Job, timeout: float) -> Result:
    """The job's result; a vanished client or a passed deadline cancels it and frees its batch slot."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=_POLL)
        except TimeoutError:
            if await request.is_disconnected():
                job.cancelled = True
                raise APIError(499, "client closed the connection", "cancelled") from None
            if loop.time() >= deadline:
                job.cancelled = True
                raise APIError(504, f"no answer within {timeout:g} s", "timeout") from None
        except GenerationError as exc:
            raise APIError(500, str(exc), "generation") from None
        except asyncio.CancelledError:
            job.cancelled = True
            raise


async def _chat_events(service: Service, generation: Generation, ask: Ask, prepared: Prepared,
                       fields: dict[str, Any]) -> AsyncIterator[str]:
    """SSE: a ``token`` event per piece, then ``done`` with the whole answer and its sources, or ``error``."""
    try:
        async for piece in generation.pieces():
            yield sse("token", {"text": piece})
        result = generation.job.future.result()
        await pipeline.record(service, fields, ask, prepared, result, generation.shown)
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
