"""The caller's conversations: ``GET /conversations``, ``GET`` and ``DELETE /conversations/{id}``.

Every query is the caller's own: another user's conversation is 404, exactly
like one that does not exist. With no API keys or tokens configured everyone
is the same anonymous user, so a conversation's id is its only key: listing
would hand every id to everyone, and is refused (403).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.admission.gate import caller
from server.errors import APIError
from server.service import Service

DEFAULT_PAGE = 20


def _limit(request: Request, most: int) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_PAGE))
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 6) or not 1 <= int(raw) <= most:
        raise APIError(422, f"limit: must be a whole number from 1 to {most}", "validation")
    return int(raw)


async def list_conversations(request: Request) -> JSONResponse:
    """The caller's conversations, most recently updated first, ``limit`` at a time."""
    service: Service = request.state.service
    identity = await caller(request, service)
    if service.history.enabled and service.identity.open:
        raise APIError(403, "listing conversations needs sign-in: with no API keys or tokens configured, "
                            "a conversation's id is its only key", "forbidden")
    limit = _limit(request, service.settings.max_page_size)
    page, cursor = await service.history.conversations(identity.user, limit, request.query_params.get("cursor"))
    return JSONResponse({"conversations": [c.as_json() for c in page], "next_cursor": cursor})


async def get_conversation(request: Request) -> JSONResponse:
    """One conversation with its turns, oldest first."""
    service: Service = request.state.service
    identity = await caller(request, service)
    conversation, turns = await service.history.conversation(identity.user, request.path_params["id"])
    return JSONResponse({**conversation.as_json(), "turns": [t.as_json() for t in turns]})


async def delete_conversation(request: Request) -> Response:
    """Delete a conversation and its turns: 204, or 404 if it is not the caller's."""
    service: Service = request.state.service
    identity = await caller(request, service)
    await service.history.delete(identity.user, request.path_params["id"])
    return Response(status_code=204)
