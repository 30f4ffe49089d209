"""Versioned schema migrations, applied at start-up, idempotent, safe when several tasks start at once.

Each version is a list of statements valid on SQLite and PostgreSQL alike. A
store applies the versions it has not recorded in ``schema_migrations``,
inside one transaction that holds the database's migration lock (PostgreSQL:
a transaction-scoped advisory lock; SQLite: ``BEGIN IMMEDIATE``), so a second
task starting at the same moment waits, then finds nothing left to do.
"""

from __future__ import annotations

# Never edit a released version: add a new one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX conversations_by_user ON conversations (user_id, updated_at, id)",
        """CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            sources TEXT NOT NULL,
            usage TEXT NOT NULL,
            finish_reason TEXT NOT NULL,
            timings TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (conversation_id, position)
        )""",
    ),
}

CREATE_LEDGER = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
ADVISORY_LOCK_KEY = 0x15C001  # PostgreSQL advisory lock id for migrations ("IsCool")


def latest() -> int:
    return max(MIGRATIONS)
