"""Admission of a generation request (key, content type, body size, prompt length, drain, queue),
and its release once answered.

Shared by ``/chat/`` and ``/v1/chat/completions`` so both refuse the same things the same way.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from server.auth import authorized
from server.batcher import Job, QueueFull
from server.drain import Draining
from server.errors import APIError
from server.sampling import SamplingParams
from server.service import Service
from server.streaming import Generation, collect


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


def check_request(request: Request, service: Service) -> None:
    """Key and content type, before the body is read."""
    if not authorized(request.headers.get("authorization"), service.api_keys):
        raise APIError(401, "missing or invalid API key", "unauthorized", {"WWW-Authenticate": "Bearer"})
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json":
        raise APIError(415, f"content type must be application/json, not {media or 'empty'}", "validation")


def admit(service: Service, prompt_ids: list[int], params: SamplingParams, stream: bool) -> Job:
    """Count the request in flight and queue it; the caller must ``service.drain.leave()`` after."""
    try:
        service.drain.enter()
    except Draining as exc:
        raise APIError(503, str(exc), "unavailable", {"Retry-After": "1"}) from None
    try:
        return service.batcher.submit(prompt_ids, params, stream=stream)
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
