"""The answer pipeline, end to end: retrieval finds the passage, the reader answers from it, sources come back.

The tiny reader was trained to answer with the first sentence of the first passage
in its context, and with a fixed refusal when it has none: so an answer equal to a
passage's first sentence proves that the passage retrieval found reached the model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from export.local_models import READER_DATA, first_sentence, reader_docs
from server.admission.drain import Drain
from server.observability import Metrics
from server.pipeline import Ask, prepare
from server.service import Service
from server.settings import load_settings
from tests.conftest import metric

UNANSWERED = json.loads(READER_DATA.read_text())["unanswered"]
CASES = [(doc["questions"][0], name, first_sentence(doc["text"])) for name, doc in reader_docs().items()]


@pytest.mark.parametrize(("question", "name", "answer"), CASES)
def test_chat_answers_from_the_passage_retrieval_found(grounded: str, question: str, name: str, answer: str) -> None:
    body = httpx.post(f"{grounded}/chat/", json={"question": question, "temperature": 0, "k": 1}, timeout=30).json()
    assert body["answer"] == answer
    assert [s["id"] for s in body["sources"]] == [f"docs/{name}#0"]
    assert body["grounded"] is True


def test_ungrounded_answer_differs(grounded: str) -> None:
    body = httpx.post(f"{grounded}/chat/", json={"question": CASES[0][0], "temperature": 0, "grounded": False},
                      timeout=30).json()
    assert (body["answer"], body["sources"], body["grounded"]) == (UNANSWERED, [], False)


def test_sources_carry_title_url_service_and_score_in_rank_order(grounded: str) -> None:
    body = httpx.post(f"{grounded}/chat/", json={"question": "How do I send a message to a queue?",
                                                 "temperature": 0, "max_new_tokens": 4}, timeout=30).json()
    assert len(body["sources"]) == 3
    first = body["sources"][0]
    assert first["url"].startswith("https://docs.aws.amazon.com/") and first["service"] == "sqs"
    assert [s["score"] for s in body["sources"]] == sorted((s["score"] for s in body["sources"]), reverse=True)


def test_streamed_done_event_carries_the_sources(grounded: str) -> None:
    with httpx.stream("POST", f"{grounded}/chat/", json={"question": CASES[1][0], "temperature": 0, "k": 1,
                                                        "stream": True}, timeout=30) as response:
        text = response.read().decode()
    done = json.loads(text.split("event: done\ndata: ", 1)[1].split("\n", 1)[0])
    assert done["answer"] == CASES[1][2]
    assert [s["id"] for s in done["sources"]] == [f"docs/{CASES[1][1]}#0"]


def test_openai_route_is_grounded_the_same_way(grounded: str) -> None:
    oai = openai.OpenAI(base_url=f"{grounded}/v1", api_key="unused", max_retries=0)
    reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": CASES[2][0]}],
                                        temperature=0, extra_body={"k": 1})
    assert reply.choices[0].message.content == CASES[2][2]
    assert [s["id"] for s in reply.model_extra["sources"]] == [f"docs/{CASES[2][1]}#0"]  # type: ignore[index]


def test_openai_route_takes_the_filter_as_an_extra_field(grounded: str) -> None:
    oai = openai.OpenAI(base_url=f"{grounded}/v1", api_key="unused", max_retries=0)
    reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": CASES[2][0]}],
                                        temperature=0, max_tokens=4,
                                        extra_body={"k": 2, "filter": {"source": "awscli", "service": "ecr"}})
    sources = reply.model_extra["sources"]  # type: ignore[index]
    assert len(sources) == 2 and {(s["source"], s["service"]) for s in sources} == {("awscli", "ecr")}
    with pytest.raises(openai.UnprocessableEntityError, match="filter.source: this knowledge base has no source"):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                    extra_body={"filter": {"source": "azure"}})


def test_openai_stream_carries_sources_with_the_finish_reason(grounded: str) -> None:
    oai = openai.OpenAI(base_url=f"{grounded}/v1", api_key="unused", max_retries=0)
    chunks = list(oai.chat.completions.create(model="m", messages=[{"role": "user", "content": CASES[3][0]}],
                                              temperature=0, stream=True, extra_body={"k": 1}))
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CASES[3][2]
    assert [s["id"] for s in final.model_extra["sources"]] == [f"docs/{CASES[3][1]}#0"]  # type: ignore[index]


def test_retrieval_is_timed_in_the_metrics(grounded: str) -> None:
    before = metric(grounded, "iscoolgpt_retrieval_seconds_count")
    httpx.post(f"{grounded}/chat/", json={"question": "queue", "max_new_tokens": 1}, timeout=30)
    assert metric(grounded, "iscoolgpt_retrieval_seconds_count") == before + 1


@pytest.mark.parametrize(("body", "message"), [
    ({"question": "q", "k": 0}, "k: Input should be greater than or equal to 1"),
    ({"question": "q", "k": 11}, "k: must be at most 10"),
    ({"question": "q", "grounded": "yes"}, "grounded: Input should be a valid boolean"),
])
def test_bad_grounding_fields_are_422(grounded: str, body: dict, message: str) -> None:  # type: ignore[type-arg]
    response = httpx.post(f"{grounded}/chat/", json=body)
    assert (response.status_code, response.json()) == (422, {"error": message, "error_type": "validation"})


def test_a_server_without_knowledge_answers_ungrounded_and_refuses_grounded(client: httpx.Client) -> None:
    plain = client.post("/chat/", json={"question": "What is AWS EC2?", "temperature": 0}).json()
    refused = client.post("/chat/", json={"question": "What is AWS EC2?", "grounded": True})
    assert (plain["grounded"], plain["sources"]) == (False, [])
    assert refused.status_code == 422 and refused.json()["error"].startswith("grounded: this server has no")


@pytest.fixture(scope="module")
def small_budget(grounded_dir: Path) -> Iterator[Service]:
    settings = load_settings(env_file=None, model_dir=grounded_dir, max_input_tokens=140, database_url="none")
    service = Service.load(settings, Drain(), Metrics())
    yield service
    service.close()


def test_passages_beyond_the_token_budget_are_left_out(small_budget: Service) -> None:
    prepared = asyncio.run(prepare(small_budget, Ask("How do I send a message to a queue?", k=5)))
    assert len(prepared.prompt_ids) <= 140
    assert 1 <= len(prepared.sources) < 5


def test_whole_answers_say_what_each_stage_took(grounded: str) -> None:
    response = httpx.post(f"{grounded}/chat/", json={"question": "queue", "max_new_tokens": 2}, timeout=30)
    stages = [part.split(";dur=")[0].strip() for part in response.headers["server-timing"].split(",")]
    assert stages == ["history", "retrieval", "prompt", "queue", "prefill", "decode", "record"]
