"""The HTTP surface: routes -> validation -> batcher -> response.

Run with ``MODEL_DIR=models/flan-t5-small-int8 uvicorn server.app:app --port 8080``
or ``python -m server``. Settings are read when the app starts, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server import prompt
from server.batcher import GenerationError, QueueFull
from server.errors import HANDLERS, APIError
from server.schemas import ChatResponse, Usage, parse_chat, sampling_params
from server.service import Service
from server.settings import Settings, load_settings


def _service(request: Request) -> Service:
    service: Service = request.state.service
    return service


async def health(request: Request) -> JSONResponse:
    """Load balancer probe: cheap, no inference."""
    return JSONResponse({"status": "ok", "model": _service(request).model_name})


async def chat(request: Request) -> JSONResponse:
    """Answer one cloud question."""
    service = _service(request)
    settings = service.settings
    body = parse_chat(await request.body(), settings)
    prompt_ids = service.codec.encode(prompt.render(settings.prompt_template, body.question))
    if len(prompt_ids) > settings.max_input_tokens:
        raise APIError(422, f"question: {len(prompt_ids)} tokens with the prompt, "
                            f"more than the limit of {settings.max_input_tokens}", "validation")
    try:
        job = service.batcher.submit(prompt_ids, sampling_params(body, settings))
    except QueueFull as exc:
        raise APIError(503, f"overloaded: {exc}", "overloaded", {"Retry-After": "1"}) from None
    try:
        result = await job.future
    except asyncio.CancelledError:
        job.cancelled = True  # the caller went away: free the batch slot
        raise
    except GenerationError as exc:
        raise APIError(500, str(exc), "generation") from None
    response = ChatResponse(
        answer=service.codec.decode(result.tokens),
        model=service.model_name,
        finish_reason=result.finish_reason,
        usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(result.tokens)),
    )
    return JSONResponse(response.model_dump())


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``settings`` default to the environment, read at start-up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Service]]:
        service = Service.load(settings or load_settings())
        try:
            yield {"service": service}
        finally:
            service.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/chat/", chat, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=HANDLERS)


app = create_app()
