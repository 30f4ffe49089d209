"""The HTTP surface: route -> checks (auth, size, type, schema) -> batcher -> response.

Run with ``MODEL_DIR=models/flan-t5-small-int8 uvicorn server.app:app --port 8080``
or ``python -m server`` (which adds the graceful drain on SIGTERM). Settings are
read when the app starts, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server import prompt
from server.auth import authorized
from server.batcher import GenerationError, Job, QueueFull, Result
from server.drain import Drain, Draining
from server.errors import HANDLERS, APIError
from server.observability import Metrics, RequestLogMiddleware
from server.openapi import openapi_schema
from server.schemas import ChatResponse, Usage, parse_chat, sampling_params
from server.service import Service
from server.settings import Settings, load_settings

_POLL = 0.05  # seconds between checks for a vanished client or a passed deadline


def _service(request: Request) -> Service:
    service: Service = request.state.service
    return service


async def health(request: Request) -> JSONResponse:
    """Load balancer probe: cheap, no inference; 503 once draining so the task leaves the target group."""
    service = _service(request)
    if service.drain.draining:
        return JSONResponse({"status": "draining", "model": service.model_name}, status_code=503)
    return JSONResponse({"status": "ok", "model": service.model_name})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_service(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_schema(_service(request).settings))


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"body larger than {limit} bytes", "validation")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise APIError(413, f"body larger than {limit} bytes", "validation")
    return bytes(body)


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
        except asyncio.CancelledError:
            job.cancelled = True
            raise


async def chat(request: Request) -> JSONResponse:
    """Answer one cloud question."""
    service = _service(request)
    settings = service.settings
    if not authorized(request.headers.get("authorization"), service.api_keys):
        raise APIError(401, "missing or invalid API key", "unauthorized", {"WWW-Authenticate": "Bearer"})
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json":
        raise APIError(415, f"content type must be application/json, not {media or 'empty'}", "validation")
    body = parse_chat(await _read_body(request, settings.max_body_bytes), settings)
    prompt_ids = service.codec.encode(prompt.render(settings.prompt_template, body.question))
    if len(prompt_ids) > settings.max_input_tokens:
        raise APIError(422, f"question: {len(prompt_ids)} tokens with the prompt, "
                            f"more than the limit of {settings.max_input_tokens}", "validation")
    try:
        with service.drain:
            job = service.batcher.submit(prompt_ids, sampling_params(body, settings))
            result = await _wait(request, job, settings.request_timeout)
    except Draining as exc:
        raise APIError(503, str(exc), "unavailable", {"Retry-After": "1"}) from None
    except QueueFull as exc:
        raise APIError(503, f"overloaded: {exc}", "overloaded", {"Retry-After": "1"}) from None
    except GenerationError as exc:
        raise APIError(500, str(exc), "generation") from None
    except APIError as exc:
        if exc.error_type in {"cancelled", "timeout"}:
            service.metrics.cancelled.labels(exc.error_type).inc()
        raise
    service.record(request.state.log, body.question, len(prompt_ids), result)
    response = ChatResponse(
        answer=service.codec.decode(result.tokens),
        model=service.model_name,
        finish_reason=result.finish_reason,
        usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(result.tokens)),
    )
    return JSONResponse(response.model_dump())


class DeferredCORS:
    """CORS whose origins come from the settings, known only once the lifespan has run."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = origins  # filled in by the lifespan, read at the first request
        self.cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.origins and self.cors is None:
            self.cors = CORSMiddleware(self.app, allow_origins=self.origins, allow_methods=["GET", "POST"],
                                       allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                                       expose_headers=["X-Request-ID"])
        await (self.cors or self.app)(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``settings`` default to the environment, read at start-up."""
    drain, metrics_ = Drain(), Metrics()
    origins: list[str] = []
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/chat/", chat, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Service]]:
        service = Service.load(settings or load_settings(), drain, metrics_)
        origins.extend(o.strip() for o in service.settings.cors_origins.split(",") if o.strip())
        try:
            yield {"service": service}
        finally:
            service.close()

    middleware = [Middleware(RequestLogMiddleware, metrics=metrics_), Middleware(DeferredCORS, origins=origins)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers=HANDLERS)
    app.state.drain = drain  # for `python -m server`'s SIGTERM handler
    return app


app = create_app()
