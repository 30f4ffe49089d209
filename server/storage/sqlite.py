"""SQLite, the default: one file in WAL mode, a connection per operation, writers serialised by SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.storage.store import Store, StoreUnavailable

BUSY_TIMEOUT_S = 5.0  # a writer waits this long for another's lock before giving up


class SQLiteStore(Store):
    """Conversations in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                # WAL: readers never block the writer, and a crash loses no committed turn.
                conn.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from None

    @property
    def kind(self) -> str:
        return "sqlite"

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so the transaction's extent is exactly ours.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at every checkpoint, crash-safe always
        return conn

    @contextmanager
    def transaction(self, migrate: bool = False, write: bool = True) -> Iterator[Any]:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from None
        try:
            # A writer takes the lock up front (IMMEDIATE): concurrent turns queue instead of failing late.
            # Readers do not: in WAL mode they read a snapshot and never wait for a writer.
            conn.execute("BEGIN IMMEDIATE" if write or migrate else "BEGIN")
            cur = conn.cursor()
            try:
                yield cur
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise  # a bug, not an outage
        except sqlite3.DatabaseError as exc:  # locked past the timeout, disk full or gone, not a database
            raise StoreUnavailable(f"SQLite: {exc}") from None
        finally:
            conn.close()

    def close(self) -> None:
        """Nothing is held open between operations."""
