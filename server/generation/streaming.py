"""Reading a generation as text while it is written: pieces, stop strings, deadline, SSE.

Both ``/chat/`` with ``"stream": true`` and ``/v1/chat/completions`` read
answers through :class:`Generation`, so stop strings and deadlines behave the
same on both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from server.errors import APIError
from server.generation.batcher import GenerationError, Job
from server.generation.text import TextCodec, TextStream


class StopWatcher:
    """Finds stop strings in the text and holds back what might be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]

    def safe(self, text: str) -> tuple[str, bool]:
        """The part of ``text`` that may be shown, and whether a stop string was reached."""
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            return text[: min(hits)], True
        held = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return text[: len(text) - held], False


class Generation:
    """One job's answer as it is written; ``finish_reason`` is set once the pieces run out."""

    def __init__(self, job: Job, codec: TextCodec, timeout: float, stops: list[str] | None = None) -> None:
        self.job = job
        self.text = TextStream(codec)
        self.stops = StopWatcher(stops or [])
        self.timeout = timeout
        self.shown = ""  # text handed out so far
        self.finish_reason: str | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.text.ids) - (1 if self.finish_reason == "eos" else 0)  # EOS is not part of the answer

    async def pieces(self) -> AsyncIterator[str]:
        """Text pieces in order; raises :class:`APIError` on deadline or generation failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        job = self.job
        try:
            while True:
                fresh = job.received[len(self.text.ids):]
                if not fresh:
                    if job.future.done():  # its tokens were all handed over before its outcome
                        break
                    job.arrived.clear()  # nothing can arrive between this check and the wait: one thread
                    try:
                        async with asyncio.timeout_at(deadline):
                            await job.arrived.wait()
                    except TimeoutError:
                        raise APIError(504, f"no answer within {self.timeout:g} s", "timeout") from None
                    continue
                # A whole step's worth at once: one look for stop strings, at most one piece.
                for token in fresh:
                    self.text.push(token)
                if piece := self._show(self.text.text):
                    yield piece
                if self.finish_reason == "stop":
                    return
            try:
                result = job.future.result()
            except GenerationError as exc:
                raise APIError(500, str(exc), "generation") from None
            self.text.finish()
            self.finish_reason = str(result.finish_reason)
            if piece := self._show(self.text.text, final=True):
                yield piece
        finally:
            if self.finish_reason is None or self.finish_reason == "stop":
                job.cancelled = True  # disconnect, deadline, error or stop string: free the slot

    def _show(self, text: str, final: bool = False) -> str:
        """The new visible piece of ``text``; a stop string ends the answer, a maybe-stop is held back."""
        visible, stopped = self.stops.safe(text)
        if stopped:
            self.finish_reason = "stop"
        elif final:  # nothing follows: what was held back for a stop string is part of the answer
            visible = text
        if not visible.startswith(self.shown) or len(visible) <= len(self.shown):
            return ""
        piece, self.shown = visible[len(self.shown):], visible
        return piece


async def collect(generation: Generation, request: Request, poll: float = 0.05) -> str:
    """The whole answer; a client that goes away meanwhile stops the generation (499)."""
    pieces: list[str] = []

    async def read() -> None:
        async for piece in generation.pieces():
            pieces.append(piece)

    reader = asyncio.ensure_future(read())
    try:
        while not reader.done():
            await asyncio.wait({reader}, timeout=poll)
            if not reader.done() and await request.is_disconnected():
                raise APIError(499, "client closed the connection", "cancelled")
    finally:
        reader.cancel()  # a no-op once read() is done; otherwise Generation frees the slot
    reader.result()  # re-raises the generation's own error, if any
    return "".join(pieces)


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
