"""The app: routes, middleware, and the lifespan that loads everything a request needs.

The request path, stage by stage (one module or package each): route (``routes/``) -> identity
(``identity/``) -> admission (``admission/``) -> history (``history.py``, ``storage/``) ->
retrieval (``retrieval/``) -> prompt (``prompt.py``) -> batcher and engine (``generation/``)
-> record (``pipeline.py``, ``history.py``) -> response (``routes/``). ``pipeline.py`` runs
the stages in that order for every generating route.

Run with ``MODEL_DIR=models/flan-t5-small-int8 uvicorn server.app:app --port 8080``
or ``python -m server`` (which adds the graceful drain on SIGTERM and fails fast, with
one line, on a bad serving directory or an unreachable database). Settings are read when
the app starts, not at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from server.admission.drain import Drain
from server.errors import HANDLERS
from server.observability import Metrics, RequestLogMiddleware
from server.routes import conversations, openai_api, pages, search_api
from server.routes.chat import chat
from server.service import Service
from server.settings import Settings, load_settings


class DeferredCORS:
    """CORS whose origins come from the settings, known only once the lifespan has run."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = origins  # filled in by the lifespan, read at the first request
        self.cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.origins and self.cors is None:
            self.cors = CORSMiddleware(self.app, allow_origins=self.origins, allow_methods=["GET", "POST", "DELETE"],
                                       allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                                       expose_headers=["X-Request-ID"])
        await (self.cors or self.app)(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``settings`` default to the environment, read at start-up."""
    drain, metrics_ = Drain(), Metrics()
    origins: list[str] = []
    routes = [
        Route("/health", pages.health, methods=["GET"]),
        Route("/chat/", chat, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/models", openai_api.models, methods=["GET"]),
        Route("/v1/embeddings", search_api.embeddings, methods=["POST"]),
        Route("/search", search_api.search, methods=["POST"]),
        Route("/search/filters", search_api.filters, methods=["GET"]),
        Route("/conversations", conversations.list_conversations, methods=["GET"]),
        Route("/conversations/{id:path}", conversations.get_conversation, methods=["GET"]),
        Route("/conversations/{id:path}", conversations.delete_conversation, methods=["DELETE"]),
        Route("/auth/config", pages.auth_config, methods=["GET"]),
        Route("/metrics", pages.metrics, methods=["GET"]),
        Route("/openapi.json", pages.openapi, methods=["GET"]),
        Route("/docs", pages.page("docs.html"), methods=["GET"]),
        Route("/", pages.page("index.html"), methods=["GET"]),
        Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
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
