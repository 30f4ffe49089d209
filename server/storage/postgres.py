"""PostgreSQL, for tasks that scale out: a psycopg 3 connection pool, migrations under an advisory lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from server.errors import first_line
from server.storage.migrations import ADVISORY_LOCK_KEY
from server.storage.store import Store, StoreUnavailable

CONNECT_TIMEOUT_S = 2  # a database that does not answer is unavailable, not a hung request
POOL_TIMEOUT_S = 2.0  # the longest a request waits for a connection (or for the database to come back)


def _reason(exc: Exception, password: str) -> str:
    """The first line of a psycopg error, with the password blotted out wherever libpq repeated it."""
    first = first_line(exc)
    return first.replace(password, "***") if password else first


def connect_once(url: str) -> None:
    """One plain connection, closed at once: :class:`StoreUnavailable` with the server's reason if it fails."""
    try:
        password = str(conninfo_to_dict(url).get("password") or "")
    except psycopg.Error:  # libpq's complaint would quote the URL, password and all
        raise StoreUnavailable("DATABASE_URL is not a valid PostgreSQL URL") from None
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        raise StoreUnavailable(f"PostgreSQL: {_reason(exc, password)}") from None


class PostgresStore(Store):
    """Conversations in PostgreSQL, through a small pool of connections."""

    placeholder = "%s"
    lock_rows = "FOR UPDATE"  # two turns of one conversation at once get consecutive positions

    def __init__(self, url: str, min_size: int = 1, max_size: int = 16) -> None:
        self.password = str(conninfo_to_dict(url).get("password") or "")
        # The pool opens without waiting: a database that is down at this moment is reported by
        # the first operation (start-up migrates at once, so it fails there, with one line).
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=POOL_TIMEOUT_S,
                                   kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": False},
                                   check=ConnectionPool.check_connection, open=True, name="iscoolgpt")

    @property
    def kind(self) -> str:
        return "postgresql"

    @contextmanager
    def transaction(self, migrate: bool = False, write: bool = True) -> Iterator[Any]:
        try:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if migrate:  # released at commit: the next task to start waits, then finds nothing to do
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
                yield cur
        except (psycopg.IntegrityError, psycopg.ProgrammingError):
            raise  # a bug, not an outage
        except (psycopg.Error, PoolTimeout) as exc:  # down, failing over (read-only), refused, timed out
            raise StoreUnavailable(f"PostgreSQL: {_reason(exc, self.password)}") from None

    def close(self) -> None:
        self.pool.close()
