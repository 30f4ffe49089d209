"""Conversations and their turns, one interface over SQLite and PostgreSQL.

The SQL is written once (``?`` placeholders, turned into ``%s`` for psycopg);
a backend only says how to get a connection in a transaction and how to take
the migration lock. Every method is blocking: the routes call them in a
worker thread, never on the event loop. Every query names the user, so one
user can never read, continue or delete another's conversation: a
conversation that is not the caller's is :class:`NotFound`, exactly like one
that does not exist.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.storage.migrations import CREATE_LEDGER, MIGRATIONS

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{24}")  # secrets.token_urlsafe(18): 144 random bits
TITLE_CHARS = 80


class StoreUnavailable(Exception):
    """The database cannot be reached or answered with an operational error."""


class NotFound(Exception):
    """No such conversation for this user (it may exist for another: that is never said)."""


def new_id() -> str:
    return secrets.token_urlsafe(18)


def now() -> str:
    """UTC, ISO 8601 with microseconds: sorts as text the way it sorts as time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str = "eos"
    timings: dict[str, float] = field(default_factory=dict)
    created_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "sources": self.sources, "usage": self.usage,
                "finish_reason": self.finish_reason, "created_at": self.created_at}


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: str
    updated_at: str
    turns: int

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "created_at": self.created_at, "updated_at": self.updated_at,
                "turns": self.turns}


def encode_cursor(conversation: Conversation) -> str:
    raw = json.dumps([conversation.updated_at, conversation.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (updated_at, id) a page ends at; ValueError if the cursor is not exactly one of ours."""
    if len(cursor) > 128:
        raise ValueError("cursor is not valid")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise ValueError("cursor is not valid") from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded)
            and TIMESTAMP.fullmatch(decoded[0]) and ID_PATTERN.fullmatch(decoded[1])):
        raise ValueError("cursor is not valid")
    return decoded[0], decoded[1]


class Store(ABC):
    """Conversations of users, on one database."""

    placeholder = "?"
    lock_rows = ""  # "FOR UPDATE" where the database has row locks

    @abstractmethod
    def transaction(self, migrate: bool = False, write: bool = True) -> AbstractContextManager[Any]:
        """A cursor inside one transaction (committed on success); ``migrate`` also takes the migration lock;
        ``write=False`` may read a snapshot without the write lock. Operational failures surface as
        :class:`StoreUnavailable`."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def kind(self) -> str: ...

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder) if self.placeholder != "?" else sql

    def _run(self, cur: Any, sql: str, *params: Any) -> Any:
        cur.execute(self._sql(sql), params)
        return cur

    # --- schema ------------------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the versions not applied yet; return them (empty when the schema is current)."""
        with self.transaction(migrate=True) as cur:
            self._run(cur, CREATE_LEDGER)
            done = {row[0] for row in self._run(cur, "SELECT version FROM schema_migrations").fetchall()}
            applied = []
            for version in sorted(set(MIGRATIONS) - done):
                for statement in MIGRATIONS[version]:
                    self._run(cur, statement)
                self._run(cur, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, now())
                applied.append(version)
        return applied

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""
        with self.transaction(write=False) as cur:
            self._run(cur, "SELECT 1").fetchall()

    # --- conversations -----------------------------------------------------------------------------------

    def _owned(self, cur: Any, user: str, conversation: str, lock: bool = False) -> bool:
        sql = "SELECT 1 FROM conversations WHERE id = ? AND user_id = ?" + (f" {self.lock_rows}" if lock else "")
        return bool(self._run(cur, sql, conversation, user).fetchall())

    def add_turn(self, user: str, conversation: str, turn: Turn, new: bool) -> int:
        """Append a turn in one transaction (creating the conversation if ``new``); return its position."""
        stamp = now()
        with self.transaction() as cur:
            if new:
                self._run(cur, "INSERT INTO conversations (id, user_id, title, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?)", conversation, user, _title(turn.question), stamp, stamp)
            elif not self._owned(cur, user, conversation, lock=True):
                raise NotFound(conversation)
            (position,) = self._run(cur, "SELECT COALESCE(MAX(position), 0) + 1 FROM turns "
                                         "WHERE conversation_id = ?", conversation).fetchone()
            self._run(cur, "INSERT INTO turns (conversation_id, position, question, answer, sources, usage, "
                           "finish_reason, timings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      conversation, position, turn.question, turn.answer, json.dumps(turn.sources),
                      json.dumps(turn.usage), turn.finish_reason, json.dumps(turn.timings), stamp)
            self._run(cur, "UPDATE conversations SET updated_at = ? WHERE id = ?", stamp, conversation)
        return int(position)

    def turns(self, user: str, conversation: str, last: int | None = None) -> list[Turn]:
        """The conversation's turns, oldest first (only the ``last`` ones if given)."""
        with self.transaction(write=False) as cur:
            if not self._owned(cur, user, conversation):
                raise NotFound(conversation)
            return self._turns(cur, conversation, last)

    def _turns(self, cur: Any, conversation: str, last: int | None) -> list[Turn]:
        sql = ("SELECT question, answer, sources, usage, finish_reason, timings, created_at FROM turns "
               "WHERE conversation_id = ? ORDER BY position DESC")
        rows = self._run(cur, sql + (f" LIMIT {int(last)}" if last is not None else ""), conversation).fetchall()
        return [Turn(q, a, json.loads(s), json.loads(u), f, json.loads(t), c) for q, a, s, u, f, t, c in rows[::-1]]

    def conversation(self, user: str, conversation: str) -> tuple[Conversation, list[Turn]]:
        """One conversation and all its turns, read in one transaction (so the count matches the turns)."""
        with self.transaction(write=False) as cur:
            rows = self._run(cur, "SELECT id, title, created_at, updated_at, (SELECT COUNT(*) FROM turns t "
                                  "WHERE t.conversation_id = c.id) FROM conversations c WHERE id = ? AND user_id = ?",
                             conversation, user).fetchall()
            if not rows:
                raise NotFound(conversation)
            return Conversation(*rows[0]), self._turns(cur, conversation, None)

    def conversations(self, user: str, limit: int, cursor: str | None = None) -> tuple[list[Conversation], str | None]:
        """The user's conversations, most recently updated first; and the cursor of the next page, if any."""
        sql = ("SELECT id, title, created_at, updated_at, (SELECT COUNT(*) FROM turns t "
               "WHERE t.conversation_id = c.id) FROM conversations c WHERE user_id = ?")
        params: list[Any] = [user]
        if cursor is not None:
            updated, id_ = decode_cursor(cursor)
            sql += " AND (updated_at < ? OR (updated_at = ? AND id < ?))"
            params += [updated, updated, id_]
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        with self.transaction(write=False) as cur:
            rows = self._run(cur, sql, *params, limit + 1).fetchall()
        page = [Conversation(*row) for row in rows[:limit]]
        return page, encode_cursor(page[-1]) if len(rows) > limit else None

    def delete(self, user: str, conversation: str) -> None:
        """Delete a conversation and its turns; :class:`NotFound` if it is not the user's."""
        with self.transaction() as cur:
            if not self._owned(cur, user, conversation, lock=True):
                raise NotFound(conversation)
            self._run(cur, "DELETE FROM turns WHERE conversation_id = ?", conversation)
            self._run(cur, "DELETE FROM conversations WHERE id = ?", conversation)


def _title(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"

