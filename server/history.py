"""Conversation history as the pipeline and the routes use it: off the event loop, its health tracked.

Every store call runs in a worker thread. A database that fails gives 503
``unavailable`` with ``Retry-After`` (never a 500) and is marked down; for the
next two seconds requests that need it are refused at once instead of each
holding a worker thread through the pool's timeout, then the next request or
health check tries it again; nothing needs a restart.
A conversation that is not the caller's is 404 ``not_found``, exactly like
one that does not exist, on every route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from server.errors import APIError
from server.observability import Metrics
from server.storage.store import ID_PATTERN, Conversation, NotFound, Store, StoreUnavailable, Turn

log = logging.getLogger("iscoolgpt.history")
T = TypeVar("T")
RECHECK_S = 2.0  # how long a health verdict holds before the database is asked again
RETRY_AFTER = "2"


def not_found() -> APIError:
    return APIError(404, "conversation not found", "not_found")


def unavailable() -> APIError:
    return APIError(503, "the conversation database is unavailable; try again shortly", "unavailable",
                    {"Retry-After": RETRY_AFTER})


class History:
    """The store, or None when ``DATABASE_URL=none`` (no history: a stateless server)."""

    def __init__(self, store: Store | None, metrics: Metrics, turns: int) -> None:
        self.store = store
        self.metrics = metrics
        self.turns_in_context = turns
        self.up = store is not None
        self.checked = time.monotonic()
        self._ping: asyncio.Task[None] | None = None
        metrics.database_up.set(1 if self.up else 0)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def _mark(self, up: bool, why: str = "") -> None:
        if up != self.up:
            log.warning("database %s%s", "is back" if up else "unavailable: ", why)
        self.up, self.checked = up, time.monotonic()
        self.metrics.database_up.set(1 if up else 0)

    async def _call(self, fn: Callable[..., T], *args: Any, probe: bool = False) -> T:
        """``fn`` (a method of the store, got through :meth:`_store`) in a worker thread, errors mapped.
        Refused at once while a verdict of "down" is fresh, unless this is the health check's ``probe``."""
        if not (probe or self.up):
            if time.monotonic() - self.checked < RECHECK_S:
                self.metrics.database_refusals.inc()
                raise unavailable()
            self.checked = time.monotonic()  # this request tries it; the others wait for its verdict
        try:
            result = await run_in_threadpool(fn, *args)
        except StoreUnavailable as exc:
            self._mark(False, str(exc))
            self.metrics.database_errors.inc()
            raise unavailable() from None
        except NotFound:
            self._mark(True)
            raise not_found() from None
        self._mark(True)
        return result

    async def status(self) -> str:
        """``ok``, ``unavailable`` or ``off``, at once: a verdict older than two seconds starts a ping in
        the background (the load balancer's probe never waits on the database)."""
        if self.store is None:
            return "off"
        if time.monotonic() - self.checked >= RECHECK_S and self._ping is None:
            self._ping = asyncio.get_running_loop().create_task(self._check())
        return "ok" if self.up else "unavailable"

    async def _check(self) -> None:
        try:
            await self._call(self._store().ping, probe=True)
        except APIError:
            pass  # marked down by _call
        finally:
            self._ping = None

    async def require(self) -> None:
        """503 at once when the database is known to be down, before any work is spent on a turn."""
        if await self.status() == "unavailable":
            self.metrics.database_refusals.inc()
            raise unavailable()

    async def context(self, user: str, conversation: str) -> list[Turn]:
        """The last turns of the user's conversation, oldest first; 404 if it is not theirs."""
        checked_id(conversation)
        return await self._call(self._store().turns, user, conversation, self.turns_in_context)

    async def append(self, user: str, conversation: str, turn: Turn, new: bool) -> None:
        await self._call(self._store().add_turn, user, conversation, turn, new)
        self.metrics.turns_stored.inc()

    async def conversations(self, user: str, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
        try:
            return await self._call(self._store().conversations, user, limit, cursor)
        except ValueError as exc:
            raise APIError(422, f"cursor: {exc}", "validation") from None

    async def conversation(self, user: str, conversation: str) -> tuple[Conversation, list[Turn]]:
        checked_id(conversation)
        return await self._call(self._store().conversation, user, conversation)

    async def delete(self, user: str, conversation: str) -> None:
        checked_id(conversation)
        await self._call(self._store().delete, user, conversation)

    def _store(self) -> Store:
        if self.store is None:
            raise APIError(404, "conversation history is off on this server (DATABASE_URL=none)", "not_found")
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def checked_id(conversation: str) -> str:
    """An id of the form this server hands out; anything else cannot exist (404, no database visit)."""
    if not ID_PATTERN.fullmatch(conversation):
        raise not_found()
    return conversation
