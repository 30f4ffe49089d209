"""Admission: who is asking (identity, rate limit), content type, body size, drain, queue; and the
release of an admitted request once answered.

Shared by every route that answers, so all refuse the same things the same way.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from server.admission.drain import Draining
from server.errors import APIError
from server.generation.batcher import Job, QueueFull
from server.generation.sampling import SamplingParams
from server.generation.streaming import Generation, collect
from server.identity import Identity
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


def admit(service: Service, prompt_ids: list[int], params: SamplingParams, every_token: bool = True) -> Job:
    """Count the request in flight and queue it; the caller must ``service.drain.leave()`` after.
    ``every_token`` False: the answer is read whole, so its tokens may come in one wake-up at the end."""
    try:
        service.drain.enter()
    except Draining as exc:
        raise APIError(503, str(exc), "unavailable", {"Retry-After": "1"}) from None
    try:
        return service.batcher.submit(prompt_ids, params, every_token)
    except QueueFull as exc:
        service.drain.leave()
        raise APIError(503, f"overloaded: {exc}", "overloaded", {"Retry-After": "1"}) from None


async def complete(service: Service, generation: Generation, request: Request) -> str:
    """The whole answer of an admitted request; its place in the drain count is always given back."""
    try:
        return await collect(generation, request)
    except APIError as exc:
        service.count_abandoned(exc)
        raise
    finally:
        service.drain.leave()
