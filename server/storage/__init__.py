"""Where conversations live: ``DATABASE_URL`` picks SQLite (the default) or PostgreSQL, or none."""

from __future__ import annotations

from pathlib import Path

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
