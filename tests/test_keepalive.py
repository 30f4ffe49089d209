"""Kept-alive connections: the server must be the last to close an idle one.

HTTP/1.1 gives no way to close an idle connection safely: if the server closes it just as the
client sends the next request on it, the request reaches a closed socket and is lost (the client
sees a reset, ``httpx.ReadError``). That is what cut a connection in tests/test_load.py's burst:
uvicorn closed idle connections after 5 s, httpx reuses them for up to 5 s, and a busy event loop
widened the window between a request's arrival and its read. The cure is an order of timeouts:
the server keeps an idle connection longer than any client or proxy in front of it (the ALB: 75 s).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from server.settings import Settings

REQUEST = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
IDLE = 6.0  # seconds: past uvicorn's own default of 5


def exchange(sock: socket.socket) -> bytes:
    """Send one request on ``sock``; the status line of its response (b"" if the server had closed)."""
    sock.sendall(REQUEST)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0]


def test_an_idle_connection_still_takes_a_request_after_uvicorns_default_timeout(
        live_server: tuple[str, Path]) -> None:
    host, port = live_server[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        first = exchange(sock)
        time.sleep(IDLE)
        second = exchange(sock)
    assert (first, second) == (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK")


def test_httpx_lets_go_of_an_idle_connection_before_the_server_does() -> None:
    expiry = httpx.Limits().keepalive_expiry
    assert expiry is not None and expiry < Settings.model_fields["keep_alive_seconds"].default
