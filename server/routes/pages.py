"""What is not an answer: ``/health``, ``/metrics``, ``/openapi.json``, and the HTML pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from server.routes.openapi import openapi_schema
from server.service import Service

STATIC = Path(__file__).resolve().parent.parent / "static"  # the chat page and Swagger UI: no CDN at run time


async def health(request: Request) -> JSONResponse:
    """Load balancer probe: no inference; 503 only while draining.

    A database outage does not fail it: the model is fine, and a shared dependency must not
    take every task out of the target group. Its state is in the body instead.
    """
    service: Service = request.state.service
    body = {"model": service.model_name, "database": await service.history.status()}
    if service.drain.draining:
        return JSONResponse({"status": "draining", **body}, status_code=503)
    return JSONResponse({"status": "ok", **body})


def page(name: str) -> Callable[[Request], Awaitable[Response]]:
    """A handler serving one HTML file of ``server/static``."""

    async def serve(request: Request) -> Response:
        return FileResponse(STATIC / name, media_type="text/html")

    return serve


async def auth_config(request: Request) -> JSONResponse:
    """How the chat page signs people in: the identity provider's endpoints and the page's client id
    (public values: the page uses the authorization code flow with PKCE), or ``null`` without sign-in."""
    s = request.state.service.settings
    sign_in = ({"authorize_url": s.auth_authorize_url, "token_url": s.auth_token_url, "client_id": s.auth_client_id,
                "scope": "openid email"} if s.auth_client_id else None)
    return JSONResponse({"sign_in": sign_in})


async def metrics(request: Request) -> Response:
    service: Service = request.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    service: Service = request.state.service
    return JSONResponse(openapi_schema(service.settings))
