"""Graceful drain: count requests in flight, refuse new ones once SIGTERM arrives.

On ECS a task gets SIGTERM, then SIGKILL after the task's ``stopTimeout``.
Between the two, /health answers 503 (the load balancer stops sending work),
new chats get 503, and requests already running finish; the process exits as
soon as none is left, or when the drain time is up.
"""

from __future__ import annotations

import threading
import time


class Draining(Exception):
    """The server is shutting down and takes no new work."""


class Drain:
    """In-flight counter and draining flag, shared by handlers and the signal handler."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._in_flight = 0
        self.draining = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def enter(self) -> None:
        """Count one more request in flight, or raise :class:`Draining`."""
        with self._lock:
            if self.draining:
                raise Draining("the server is shutting down")
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._lock.notify_all()

    def __enter__(self) -> Drain:
        self.enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()

    def begin(self) -> None:
        """Stop taking new work."""
        with self._lock:
            self.draining = True

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight or ``timeout`` seconds pass; True if idle."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True
