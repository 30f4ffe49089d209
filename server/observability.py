"""Request ids, one JSON log line per request, and Prometheus metrics.

The middleware is plain ASGI (no BaseHTTPMiddleware) so it adds no task per
request and sees the final status of every response, errors included.
Handlers add what they know (queue time, tokens, batch size) to
``scope["state"]["log"]``; the middleware writes the line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("iscoolgpt.access")

class JsonFormatter(logging.Formatter):
    """Each record as one JSON object (``LOG_FORMAT=json``), for log services that filter and measure on
    fields, such as CloudWatch metric filters: a request's line puts its fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                               "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1)
_TOKEN_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1)


class Metrics:
    """The service's Prometheus series, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("iscoolgpt_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("iscoolgpt_request_seconds", "HTTP request latency", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("iscoolgpt_queue_seconds", "Time from submit to joining a batch",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("iscoolgpt_queue_depth", "Requests waiting for a batch slot", registry=r)
        self.active = Gauge("iscoolgpt_batch_active", "Sequences in the running batch", registry=r)
        self.batch_size = Histogram("iscoolgpt_batch_size", "Largest batch each request was part of",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.tokens = Counter("iscoolgpt_generated_tokens", "Tokens generated", registry=r)
        self.time_per_token = Histogram("iscoolgpt_time_per_token_seconds", "Decode time per generated token",
                                        buckets=_TOKEN_BUCKETS, registry=r)
        self.retrieval_seconds = Histogram("iscoolgpt_retrieval_seconds", "Knowledge base search per question",
                                           buckets=_STAGE_BUCKETS, registry=r)
        self.database_up = Gauge("iscoolgpt_database_up", "1 while the conversation database answers", registry=r)
        self.database_errors = Counter("iscoolgpt_database_errors", "Store calls that found the database unavailable",
                                       registry=r)
        self.database_refusals = Counter("iscoolgpt_database_refusals", "Requests refused at once while the database "
                                         "was just found down, without trying it", registry=r)
        self.turns_stored = Counter("iscoolgpt_turns_stored", "Conversation turns written", registry=r)
        # By how the caller proved who they are, never by user: a label per user would grow without bound.
        self.identified = Counter("iscoolgpt_identified_requests", "Requests by authentication method", ["method"],
                                  registry=r)
        self.rejected = Counter("iscoolgpt_rejected_requests", "Requests refused before any work", ["reason"],
                                registry=r)
        self.cancelled = Counter("iscoolgpt_cancelled_requests", "Requests whose client left or timed out",
                                 ["reason"], registry=r)


def _route(scope: Scope) -> str:
    # Label by known routes only: a label per arbitrary path would let clients grow the series without bound.
    path = scope.get("path", "")
    known = {"/health", "/chat/", "/chat", "/metrics", "/v1/chat/completions", "/v1/models", "/v1/embeddings",
             "/search", "/", "/docs", "/conversations", "/auth/config"}
    if path.startswith("/conversations/"):
        return "/conversations/{id}"  # never the id itself: unbounded, and a conversation's only key when open
    return path if path in known else "other"


class RequestLogMiddleware:
    """Accept or make ``X-Request-ID``, echo it, and log one JSON line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        fields: dict[str, Any] = {}
        scope.setdefault("state", {})["log"] = fields
        scope["state"]["request_id"] = request_id
        status = 500
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            route = _route(scope)
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            # A conversation id is a secret when no auth is configured: logs name the route, not the id.
            path = route if route == "/conversations/{id}" else scope["path"]
            line = {"request_id": request_id, "method": scope["method"], "path": path,
                    "status": status, "latency_ms": round(elapsed * 1000, 2), **fields}
            log.info(json.dumps(line, ensure_ascii=False), extra={"fields": line})
