"""Admission: who is asking (identity, rate limit), content type, body size, drain, queue; and the
release of an admitted request once answered.

Shared by every route that answers, so all refuse the same things the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import ClientDisconnect, Request

from server import pipeline
from server.admission.drain import Draining
from server.errors import APIError
from server.generation.batcher import Job, QueueFull
from server.generation.sampling import SamplingParams
from server.generation.streaming import Generation, collect
from server.identity import Identity
from server.pipeline import Ask, Prepared
from server.service import Service


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"body larger than {limit} bytes", "validation")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise APIError(413, f"body larger than {limit} bytes", "validation")
    except ClientDisconnect:  # gone before the body arrived: nobody to answer, nothing to log as a failure
        raise APIError(499, "client closed the connection", "cancelled") from None
    return bytes(body)


async def caller(request: Request, service: Service) -> Identity:
    """Who is asking: 401 without valid credentials, 429 past the rate limit, 503 if the key set is down."""
    try:
        identity = await service.identity.identify(request.headers.get("authorization"))
    except APIError as exc:
        service.metrics.rejected.labels(exc.error_type).inc()
        raise
    service.metrics.identified.labels(identity.method).inc()
    request.state.log["user"] = identity.label  # never a key or a token
    return identity


async def check_request(request: Request, service: Service) -> Identity:
    """The caller and the content type, before the body is read."""
    identity = await caller(request, service)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json":
        raise APIError(415, f"content type must be application/json, not {media or 'empty'}", "validation")
    return identity


def _enter(service: Service) -> None:
    """Count the request in flight, so a drain waits for it; 503 while draining."""
    try:
        service.drain.enter()
    except Draining as exc:
        raise APIError(503, str(exc), "unavailable", {"Retry-After": "1"}) from None


async def admitted(service: Service, ask: Ask, params: SamplingParams, every_token: bool) -> tuple[Prepared, Job]:
    """The request path in order: admission (drain, queue room) before any work is spent, then the
    pipeline's stages (history, retrieval, prompt), then the batcher's queue. ``every_token`` False: the
    answer is read whole, so its tokens may come in one wake-up at the end. The caller must
    ``service.drain.leave()`` after."""
    _enter(service)
    try:
        if service.batcher.full:  # it would wait behind the whole queue, after its retrieval
            raise APIError(503, "overloaded: the queue is full", "overloaded", {"Retry-After": "1"})
        prepared = await pipeline.prepare(service, ask)
        try:
            return prepared, service.batcher.submit(prepared.prompt_ids, params, every_token)
        except QueueFull as exc:  # it filled while this request was retrieving
            raise APIError(503, f"overloaded: {exc}", "overloaded", {"Retry-After": "1"}) from None
    except BaseException:  # refused, or the client left during retrieval: not in flight any more
        service.drain.leave()
        raise


@contextmanager
def admission(service: Service) -> Iterator[None]:
    """Admission for work that runs beside the batcher (search, embeddings): counted in flight, so a
    drain waits for it, and refused while draining."""
    _enter(service)
    try:
        yield
    finally:
        service.drain.leave()


async def complete(service: Service, generation: Generation, request: Request) -> str:
    """The whole answer of an admitted request; its place in the drain count is always given back."""
    try:
        return await collect(generation, request)
    except APIError as exc:
        service.count_abandoned(exc)
        raise
    finally:
        service.drain.leave()
