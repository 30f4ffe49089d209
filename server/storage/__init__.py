"""Where conversations live: ``DATABASE_URL`` picks SQLite (the default) or PostgreSQL, or none."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from server.storage.store import Store, StoreUnavailable

OFF = "none"


def open_store(url: str) -> Store | None:
    """``sqlite:///path``, ``postgresql://...`` (or ``postgres://``), or ``none`` for no history."""
    if url == OFF:
        return None
    if url.startswith("sqlite:///"):
        from server.storage.sqlite import SQLiteStore

        return SQLiteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from server.storage.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreUnavailable("DATABASE_URL must be sqlite:///PATH, postgresql://... or none")


def describe(url: str) -> str:
    """The URL for a log line: no user, password or query (``?password=`` is valid too)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # a bad port or IPv6 host: say only what kind of database it is
        return url.split(":", 1)[0]
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}" if parts.scheme else url


def probe(url: str) -> None:
    """Connect once, outside any pool, so a database that is down says why (refused, wrong password,
    unknown host) in one error rather than in a pool's retries; :class:`StoreUnavailable` if not."""
    if url.startswith(("postgresql://", "postgres://")):
        from server.storage.postgres import connect_once

        connect_once(url)
