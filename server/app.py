"""The HTTP surface: route -> checks (auth, size, type, schema) -> pipeline (retrieval, prompt)
-> batcher -> record -> response.

Run with ``MODEL_DIR=models/flan-t5-small-int8 uvicorn server.app:app --port 8080``
or ``python -m server`` (which adds the graceful drain on SIGTERM). Settings are
read when the app starts, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from server import openai_api, pipeline, search_api
from server.batcher import GenerationError, Job, Result
from server.drain import Drain
from server.errors import HANDLERS, APIError
from server.gate import admit, check_request, read_body
from server.observability import Metrics, RequestLogMiddleware
from server.openapi import openapi_schema
from server.pipeline import Ask, Prepared
from server.schemas import ChatResponse, Source, Usage, parse_chat, sampling_params
from server.service import Service
from server.settings import Settings, load_settings
from server.streaming import Generation, sse

_POLL = 0.05  # seconds between checks for a vanished client or a passed deadline
STATIC = Path(__file__).parent / "static"  # the chat page and Swagger UI's assets: no CDN at run time


def _service(request: Request) -> Service:
    service: Service = request.state.service
    return service


async def health(request: Request) -> JSONResponse:
    """Load balancer probe: cheap, no inference; 503 once draining so the task leaves the target group."""
    service = _service(request)
    if service.drain.draining:
        return JSONResponse({"status": "draining", "model": service.model_name}, status_code=503)
    return JSONResponse({"status": "ok", "model": service.model_name})


def page(name: str) -> Callable[[Request], Awaitable[Response]]:
    """A handler serving one HTML file of ``server/static``."""

    async def serve(request: Request) -> Response:
        return FileResponse(STATIC / name, media_type="text/html")

    return serve


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_service(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_schema(_service(request).settings))


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


async def chat(request: Request) -> Response:
    """Answer one cloud question, whole or streamed, grounded on the knowledge base if it has one."""
    service = _service(request)
    settings = service.settings
    check_request(request, service)
    body = parse_chat(await read_body(request, settings.max_body_bytes), settings)
    ask = Ask(body.question, grounded=body.grounded, k=body.k)
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
    pipeline.record(service, request.state.log, ask, prepared, result)
    response = ChatResponse(
        answer=service.codec.decode(result.tokens),
        model=service.model_name,
        finish_reason=result.finish_reason,
        usage=Usage(prompt_tokens=len(prepared.prompt_ids), completion_tokens=len(result.tokens)),
        grounded=prepared.grounded,
        sources=[Source(**source) for source in prepared.sources_json()],
    )
    return JSONResponse(response.model_dump(), headers={"Server-Timing": pipeline.server_timing(prepared, result)})


async def _chat_events(service: Service, generation: Generation, ask: Ask, prepared: Prepared,
                       fields: dict[str, Any]) -> AsyncIterator[str]:
    """SSE: a ``token`` event per piece, then ``done`` with the whole answer and its sources, or ``error``."""
    try:
        async for piece in generation.pieces():
            yield sse("token", {"text": piece})
        pipeline.record(service, fields, ask, prepared, generation.job.future.result())
        yield sse("done", {"answer": generation.shown, "model": service.model_name,
                           "finish_reason": generation.finish_reason,
                           "usage": {"prompt_tokens": len(prepared.prompt_ids),
                                     "completion_tokens": generation.completion_tokens},
                           "grounded": prepared.grounded, "sources": prepared.sources_json()})
    except APIError as exc:  # the status line is gone already: the error travels in the stream
        service.count_abandoned(exc)
        yield sse("error", {"error": exc.message, "error_type": exc.error_type})
    except asyncio.CancelledError:  # the client went away: Generation freed the slot
        service.metrics.cancelled.labels("cancelled").inc()
        raise
    finally:
        service.drain.leave()


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
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/models", openai_api.models, methods=["GET"]),
        Route("/v1/embeddings", search_api.embeddings, methods=["POST"]),
        Route("/search", search_api.search, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", page("docs.html"), methods=["GET"]),
        Route("/", page("index.html"), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
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
