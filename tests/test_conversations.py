"""Conversations over HTTP (SQLite, the default): turns kept, context carried, one user never sees another's."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from server.admission.drain import Drain
from server.observability import Metrics
from server.pipeline import Ask, prepare
from server.service import Service
from server.settings import load_settings
from server.storage.store import Turn, new_id
from tests.conftest import assert_generation_stopped, hang_up_mid_generation, metric, serve, start_server

SPOT = "How cheap are Spot Instances?"
HOSTILE_IDS = ["nope", "x" * 24 + "'--", "../../etc/passwd", "%00", "a\u0000b", "a" * 5000, "AAAAAAAAAAAAAAAAAAAAAAAA",
               "conversación-ñ", "\U0001f600" * 24, "ＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡ"]


ALICE = {"Authorization": "Bearer alice-key"}


def ask(url: str, question: str, headers: dict[str, str] | None = None, **extra: object) -> dict:  # type: ignore[type-arg]
    response = httpx.post(f"{url}/chat/", json={"question": question, "temperature": 0, **extra}, timeout=30,
                          headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_an_answer_starts_a_conversation_that_is_listed(two_users: str) -> None:
    body = ask(two_users, SPOT, ALICE, k=1)
    listed = httpx.get(f"{two_users}/conversations", headers=ALICE).json()["conversations"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", body["conversation_id"])
    assert listed[0] == {**listed[0], "id": body["conversation_id"], "title": SPOT, "turns": 1}


def test_a_follow_up_is_a_second_turn_oldest_first(grounded: str) -> None:
    first = ask(grounded, SPOT, k=1)
    second = ask(grounded, "Can spare capacity be interrupted?", k=1, conversation_id=first["conversation_id"])
    stored = httpx.get(f"{grounded}/conversations/{first['conversation_id']}").json()
    assert second["conversation_id"] == first["conversation_id"]
    assert [(t["question"], t["answer"]) for t in stored["turns"]] == [
        (SPOT, first["answer"]), ("Can spare capacity be interrupted?", second["answer"])]
    assert stored["turns"][0]["sources"] == first["sources"] and stored["turns"][1]["usage"] == second["usage"]


def test_a_follow_up_retrieves_with_the_conversations_subject(grounded: str) -> None:
    follow_up = "How much notice do I get before losing one?"  # alone it names neither Spot nor a warning
    alone = ask(grounded, follow_up, k=1, max_new_tokens=1)
    first = ask(grounded, SPOT, k=1, max_new_tokens=1)
    continued = ask(grounded, follow_up, k=1, max_new_tokens=1, conversation_id=first["conversation_id"])
    assert alone["sources"][0]["id"] != "docs/spot-instances.md#0"
    assert continued["sources"][0]["id"] == "docs/spot-instances.md#0"


def test_delete_is_204_and_the_conversation_is_gone_everywhere(grounded: str) -> None:
    cid = ask(grounded, SPOT, max_new_tokens=1)["conversation_id"]
    deleted = httpx.delete(f"{grounded}/conversations/{cid}")
    after = [httpx.get(f"{grounded}/conversations/{cid}").status_code, httpx.delete(
        f"{grounded}/conversations/{cid}").status_code, httpx.post(f"{grounded}/chat/", json={
            "question": "again", "conversation_id": cid}).status_code]
    assert deleted.status_code == 204 and deleted.content == b""
    assert after == [404, 404, 404]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_unknown_or_hostile_ids_are_404_on_every_route(grounded: str, bad: str) -> None:
    quoted = f"{grounded}/conversations/{quote(bad, safe='')}"
    answers = [httpx.get(quoted), httpx.delete(quoted),
               httpx.post(f"{grounded}/chat/", json={"question": "q", "conversation_id": bad})]
    assert [(r.status_code, r.json()) for r in answers] == [
        (404, {"error": "conversation not found", "error_type": "not_found"})] * 3


def test_pages_follow_the_cursor(two_users: str) -> None:
    for n in range(3):
        ask(two_users, f"paging question {n}", ALICE, max_new_tokens=1)
    first = httpx.get(f"{two_users}/conversations", params={"limit": 2}, headers=ALICE).json()
    second = httpx.get(f"{two_users}/conversations", params={"limit": 2, "cursor": first["next_cursor"]},
                       headers=ALICE).json()
    titles = [c["title"] for c in first["conversations"] + second["conversations"]]
    assert titles[:3] == ["paging question 2", "paging question 1", "paging question 0"]
    assert first["next_cursor"] is not None


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "0"}, "limit: must be a whole number from 1 to 100"),
    ({"limit": "1000"}, "limit: must be a whole number from 1 to 100"),
    ({"limit": "-1"}, "limit: must be a whole number from 1 to 100"),
    ({"limit": "²"}, "limit: must be a whole number from 1 to 100"),
    ({"limit": "9" * 5000}, "limit: must be a whole number from 1 to 100"),
    ({"cursor": "bm90IG91cnM"}, "cursor: cursor is not valid"),
    ({"cursor": base64.urlsafe_b64encode(b"[" * 90).decode()}, "cursor: cursor is not valid"),
    ({"cursor": base64.urlsafe_b64encode(b'["\\u0000", "x"]').decode()}, "cursor: cursor is not valid"),
    ({"cursor": "x" * 5000}, "cursor: cursor is not valid"),
])
def test_bad_paging_is_422(two_users: str, params: dict, message: str) -> None:  # type: ignore[type-arg]
    response = httpx.get(f"{two_users}/conversations", params=params, headers=ALICE)
    assert (response.status_code, response.json()) == (422, {"error": message, "error_type": "validation"})


def test_v1_stays_stateless(two_users: str) -> None:
    def count() -> int:
        return len(httpx.get(f"{two_users}/conversations", params={"limit": 100}, headers=ALICE).json()[
            "conversations"])

    before = count()
    reply = httpx.post(f"{two_users}/v1/chat/completions", headers=ALICE, json={
        "messages": [{"role": "user", "content": SPOT}], "max_tokens": 2}).json()
    after = count()
    assert "conversation_id" not in reply and before == after


@pytest.fixture(scope="module")
def two_users(grounded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(grounded_dir, tmp_path_factory, API_KEYS="alice-key,bob-key")


def as_user(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_one_user_never_sees_anothers_conversation(two_users: str) -> None:
    cid = httpx.post(f"{two_users}/chat/", json={"question": SPOT, "max_new_tokens": 1},
                     headers=as_user("alice-key")).json()["conversation_id"]
    bob = as_user("bob-key")
    attempts = [httpx.get(f"{two_users}/conversations/{cid}", headers=bob),
                httpx.delete(f"{two_users}/conversations/{cid}", headers=bob),
                httpx.post(f"{two_users}/chat/", json={"question": "mine now", "conversation_id": cid}, headers=bob)]
    listed = httpx.get(f"{two_users}/conversations", headers=bob).json()["conversations"]
    alice_sees = httpx.get(f"{two_users}/conversations/{cid}", headers=as_user("alice-key")).json()
    assert [r.status_code for r in attempts] == [404, 404, 404] and listed == []
    assert [t["question"] for t in alice_sees["turns"]] == [SPOT]


def test_conversations_need_credentials_when_keys_are_set(two_users: str) -> None:
    response = httpx.get(f"{two_users}/conversations")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture(scope="module")
def stateless(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(int8_dir, tmp_path_factory, DATABASE_URL="none")


def test_history_off_answers_without_a_conversation(stateless: str) -> None:
    body = ask(stateless, "What is AWS EC2?")
    refused = [httpx.get(f"{stateless}/conversations"), httpx.post(
        f"{stateless}/chat/", json={"question": "q", "conversation_id": new_id()})]
    assert body["answer"] == "Amazon EC2 provides resizable virtual servers in the AWS cloud."
    assert body["conversation_id"] is None
    assert [r.status_code for r in refused] == [404, 404]
    assert httpx.get(f"{stateless}/health").json()["database"] == "off"


@pytest.fixture(scope="module")
def impatient_user(talker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(talker_dir, tmp_path_factory, REQUEST_TIMEOUT="0.1", MAX_NEW_TOKENS_LIMIT="2048",
                     API_KEYS="alice-key")


def test_the_streamed_done_event_carries_the_conversation(grounded: str) -> None:
    with httpx.stream("POST", f"{grounded}/chat/", json={"question": SPOT, "stream": True, "max_new_tokens": 4}) as r:
        done = [line for line in r.iter_lines() if line.startswith("data:")][-1]
    cid = json.loads(done.removeprefix("data:"))["conversation_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", cid)
    assert [t["question"] for t in httpx.get(f"{grounded}/conversations/{cid}").json()["turns"]] == [SPOT]


@pytest.fixture(scope="module")
def talkative_user(talker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(talker_dir, tmp_path_factory, MAX_NEW_TOKENS_LIMIT="2048", API_KEYS="alice-key")


def test_a_generation_the_client_leaves_writes_nothing(talkative_user: str) -> None:
    before = metric(talkative_user, 'iscoolgpt_cancelled_requests_total{reason="cancelled"}')
    body = json.dumps({"question": "hi", "max_new_tokens": 2000, "stream": True}).encode()
    hang_up_mid_generation(talkative_user, "/chat/", body, headers={"Authorization": "Bearer alice-key"})
    assert_generation_stopped(talkative_user, before)
    assert httpx.get(f"{talkative_user}/conversations", headers=ALICE).json()["conversations"] == []


def test_a_generation_that_times_out_writes_nothing(impatient_user: str) -> None:
    response = httpx.post(f"{impatient_user}/chat/", json={"question": "hi", "max_new_tokens": 2000}, headers=ALICE)
    assert response.status_code == 504
    assert httpx.get(f"{impatient_user}/conversations", headers=ALICE).json() == {"conversations": [],
                                                                                  "next_cursor": None}


def test_without_sign_in_conversations_cannot_be_listed(grounded: str) -> None:
    cid = ask(grounded, SPOT, max_new_tokens=1)["conversation_id"]
    listed = httpx.get(f"{grounded}/conversations")
    assert (listed.status_code, listed.json()["error_type"]) == (403, "forbidden")
    assert httpx.get(f"{grounded}/conversations/{cid}").status_code == 200  # the id itself is the key


def test_a_nul_character_is_refused_before_any_work(grounded: str) -> None:
    response = httpx.post(f"{grounded}/chat/", json={"question": "a\u0000b"})
    assert (response.status_code, response.json()["error"]) == (
        422, "question: Value error, question must not contain NUL characters")


@pytest.mark.parametrize(("url", "reason"), [
    ("postgresql://nobody:hunter2@127.0.0.1:9/none", "Connection refused"),
    ("sqlite:////proc/no/such/dir/db.sqlite", "cannot open SQLite database"),
    ("sqlite:///{tmp}/not-a-database.db", "file is not a database"),
    ("postgresql://nobody:hunter2%zz@127.0.0.1:9/none", "not a valid PostgreSQL URL"),
    ("postgresql://nobody:hunter2@[::1/none", "not a valid PostgreSQL URL"),
    ("postgresql://nobody:hunter2@127.0.0.1:port/none", "PostgreSQL: "),
], ids=["postgresql refused", "sqlite unwritable", "sqlite not a database", "bad escape", "bad host", "bad port"])
def test_a_database_that_cannot_be_opened_stops_start_up_with_one_line(int8_dir: Path, tmp_path: Path,
                                                                      url: str, reason: str) -> None:
    (tmp_path / "not-a-database.db").write_bytes(b"this is not SQLite " * 100)
    with pytest.raises(RuntimeError, match="server exited with 1") as failed:
        start_server(int8_dir, tmp_path / "server.log", DATABASE_URL=url.format(tmp=tmp_path))
    said = [line for line in str(failed.value).splitlines() if " ERROR " in line or " WARNING " in line]
    assert len(said) == 1 and "database" in said[0] and reason in said[0]
    assert "hunter2" not in str(failed.value)  # the password never reaches the log


@pytest.fixture(scope="module")
def service(grounded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    db = tmp_path_factory.mktemp("db") / "history.db"
    loaded = Service.load(load_settings(env_file=None, model_dir=grounded_dir, database_url=f"sqlite:///{db}"),
                          Drain(), Metrics())
    yield loaded
    loaded.close()


def test_earlier_turns_go_into_the_prompt(service: Service) -> None:
    cid = new_id()
    assert service.history.store is not None
    service.history.store.add_turn("anonymous", cid, Turn("What is S3?", "Object storage."), new=True)
    prepared = asyncio.run(prepare(service, Ask("And its price?", grounded=False, conversation=True,
                                                conversation_id=cid)))
    assert service.codec.decode(prepared.prompt_ids) == service.codec.decode(service.codec.encode(
        "Conversation so far:\nuser: What is S3?\nassistant: Object storage.\n\n"
        "Answer this question about cloud computing: And its price?"))
