"""The conversation store: the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage import open_store
from server.storage.migrations import latest
from server.storage.store import ID_PATTERN, NotFound, Store, StoreUnavailable, Turn, decode_cursor, new_id
from tests.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind: its URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/conversations.db"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database(f"t{new_id().lower().replace('-', '_')}")


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    assert opened is not None
    opened.migrate()
    yield opened
    opened.close()


def turn(n: int = 1) -> Turn:
    return Turn(f"question {n}", f"answer {n}", [{"id": f"s{n}", "title": "T", "url": None, "score": 0.5}],
                {"prompt_tokens": 10, "completion_tokens": n}, "eos", {"decode_ms": 1.5})


def test_sqlite_keeps_a_write_ahead_log(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/wal.db")
    assert store is not None
    with store.transaction(write=False) as cur:
        cur.execute("PRAGMA journal_mode")
        assert cur.fetchone()[0] == "wal"  # readers never wait for the writer; a crash loses no commit


def test_migrations_apply_once(database: str) -> None:
    opened = open_store(database)
    assert opened is not None
    assert (opened.migrate(), opened.migrate()) == ([latest()], [])
    opened.close()


def test_tasks_starting_at_once_migrate_exactly_once(database: str) -> None:
    stores = [open_store(database) for _ in range(4)]
    applied: list[list[int]] = []
    threads = [threading.Thread(target=lambda s=s: applied.append(s.migrate())) for s in stores]  # type: ignore[misc]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()  # type: ignore[union-attr]
    assert sorted(applied) == [[], [], [], [latest()]]


def test_a_turn_is_stored_whole(store: Store) -> None:
    cid = new_id()
    store.add_turn("alice", cid, turn(), new=True)
    (stored,) = store.turns("alice", cid)
    assert (stored.question, stored.answer, stored.sources, stored.usage) == (
        "question 1", "answer 1", [{"id": "s1", "title": "T", "url": None, "score": 0.5}],
        {"prompt_tokens": 10, "completion_tokens": 1})
    assert (stored.finish_reason, stored.timings) == ("eos", {"decode_ms": 1.5})


def test_turns_come_back_oldest_first_and_the_last_n_on_request(store: Store) -> None:
    cid = new_id()
    positions = [store.add_turn("alice", cid, turn(n), new=n == 1) for n in (1, 2, 3)]
    assert positions == [1, 2, 3]
    assert [t.question for t in store.turns("alice", cid, last=2)] == ["question 2", "question 3"]


def test_another_users_conversation_does_not_exist_for_them(store: Store) -> None:
    cid = new_id()
    store.add_turn("alice", cid, turn(), new=True)
    attempts = [lambda: store.turns("bob", cid), lambda: store.conversation("bob", cid),
                lambda: store.delete("bob", cid), lambda: store.add_turn("bob", cid, turn(2), new=False)]
    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
    assert [t.question for t in store.turns("alice", cid)] == ["question 1"]
    assert store.conversations("bob", 10) == ([], None)


def test_continuing_an_unknown_conversation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.add_turn("alice", new_id(), turn(), new=False)


def test_conversations_page_newest_first_with_a_cursor(store: Store) -> None:
    ids = [new_id() for _ in range(5)]
    for cid in ids:
        store.add_turn("alice", cid, turn(), new=True)
    store.add_turn("alice", ids[0], turn(2), new=False)  # the oldest is now the most recently updated
    pages, cursor = [], None
    while True:
        page, cursor = store.conversations("alice", 2, cursor)
        pages.append([c.id for c in page])
        if cursor is None:
            break
    assert pages == [[ids[0], ids[4]], [ids[3], ids[2]], [ids[1]]]


def test_a_cursor_that_is_not_ours_is_refused(store: Store) -> None:
    for bad in ("", "not base64!", "bnVsbA", "WzEsIDJd"):  # nothing, junk, null, [1, 2]
        with pytest.raises(ValueError, match="cursor is not valid"):
            decode_cursor(bad)


def test_delete_takes_the_turns_with_it(store: Store) -> None:
    cid = new_id()
    store.add_turn("alice", cid, turn(), new=True)
    store.delete("alice", cid)
    with pytest.raises(NotFound):
        store.turns("alice", cid)
    assert store.conversations("alice", 10) == ([], None)


def test_concurrent_turns_of_one_conversation_get_distinct_positions(store: Store) -> None:
    cid = new_id()
    store.add_turn("alice", cid, turn(), new=True)
    threads = [threading.Thread(target=store.add_turn, args=("alice", cid, turn(n), False)) for n in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(t.question.split()[1]) for t in store.turns("alice", cid)) == list(range(1, 10))
    summary, turns = store.conversation("alice", cid)
    assert summary.turns == len(turns) == 9


def test_the_title_is_the_first_question_cut_to_80_characters(store: Store) -> None:
    cid = new_id()
    store.add_turn("alice", cid, Turn("word " * 40, "a"), new=True)
    title = store.conversation("alice", cid)[0].title
    assert len(title) == 80 and title.endswith("…")


def test_ids_are_random_and_url_safe() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(ID_PATTERN.fullmatch(i) for i in ids)


def test_an_unreachable_postgresql_is_unavailable(postgres: PostgresServer) -> None:
    unreachable = open_store(f"postgresql://iscool@127.0.0.1:{postgres.port + 1}/postgres")
    assert unreachable is not None
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        unreachable.ping()
    unreachable.close()


def test_an_unwritable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnavailable, match="cannot open SQLite database"):
        open_store(f"sqlite:///{tmp_path}/file/sub/db.sqlite")
