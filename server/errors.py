"""One error shape for every failure: ``{"error": "...", "error_type": "..."}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("iscoolgpt.errors")


class APIError(Exception):
    """An error the client should see, with its HTTP status."""

    def __init__(self, status: int, message: str, error_type: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.headers = headers


def openai_error_body(status: int, message: str, error_type: str) -> dict[str, Any]:
    """OpenAI's error shape, for /v1: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = {401: "authentication_error"}.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": error_type}}


def error_response(request: Request, status: int, message: str, error_type: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    if request.url.path.startswith("/v1/"):
        body: dict[str, Any] = openai_error_body(status, message, error_type)
    else:
        body = {"error": message, "error_type": error_type}
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(request, exc.status, exc.message, exc.error_type, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, str(exc.detail), "http", exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal server error", "internal")


HANDLERS = {APIError: api_error, HTTPException: http_error, Exception: internal_error}


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (a driver's may run to several), or its type if it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
