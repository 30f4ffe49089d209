"""Requests per user per minute, as a token bucket in this process (each task limits on its own)."""

from __future__ import annotations

import math
import threading
import time

PRUNE_AT = 10_000  # users tracked before idle (full) buckets are forgotten


class RateLimiter:
    """``per_minute`` requests a minute per user, in bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, user: str) -> float:
        """0 if ``user`` may go on now (one token spent), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(user, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            if tokens >= 1:
                self._buckets[user] = (tokens - 1, now)
                self._prune(now)
                return 0.0
            self._buckets[user] = (tokens, now)
            return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        if len(self._buckets) < PRUNE_AT:
            return
        full = [u for u, (t, w) in self._buckets.items() if t + (now - w) * self.rate >= self.capacity]
        for user in full:
            del self._buckets[user]


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
