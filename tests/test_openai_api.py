"""The OpenAI-compatible API, driven by the official `openai` package against the live server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from server.admission.drain import Drain
from server.observability import Metrics
from server.pipeline import prepare
from server.routes.openai_api import CompletionRequest, to_ask
from server.service import Service
from server.settings import load_settings


@pytest.fixture(scope="module")
def oai(live_server: tuple[str, Path]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_server[0]}/v1", api_key="unused", max_retries=0) as client:
        yield client


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def test_models_lists_the_served_model(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["google/flan-t5-small"]


def test_completion_answers_like_chat(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="google/flan-t5-small", messages=ask("What is Amazon ECS?"),
                                       temperature=0)
    assert done.choices[0].message.content == "Amazon ECS runs and scales containers on AWS."
    assert (done.choices[0].finish_reason, done.usage.completion_tokens) == ("stop", 17)  # type: ignore[union-attr]


def test_streamed_completion_adds_up_to_the_same_answer(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=ask("What is Amazon ECS?"), temperature=0,
                                              stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == "Amazon ECS runs and scales containers on AWS."
    assert finish == ["stop"]


def test_stop_string_cuts_the_answer(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="m", messages=ask("What is Amazon S3?"), temperature=0,
                                       stop=["object"])
    assert done.choices[0].message.content == "Amazon S3 is "
    assert done.choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="m", messages=ask("What is AWS EC2?"), temperature=0, max_tokens=3)
    assert (done.choices[0].finish_reason, done.usage.completion_tokens) == ("length", 3)  # type: ignore[union-attr]


def test_same_seed_same_sampled_answer(oai: openai.OpenAI) -> None:
    def sample() -> str | None:
        return oai.chat.completions.create(model="m", messages=ask("What is AWS Lambda?"), temperature=1.5,
                                           top_p=1.0, seed=11, max_tokens=20).choices[0].message.content

    assert sample() == sample()


def test_errors_take_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        oai.chat.completions.create(model="m", messages=[{"role": "assistant", "content": "hello"}])
    assert caught.value.body == {"message": "messages: the last message must be a non-empty user message",
                                 "type": "invalid_request_error", "param": None, "code": "validation"}


@pytest.mark.parametrize(("body", "message"), [
    ({"messages": [{"role": "user", "content": " \n"}]},
     "messages: the last message must be a non-empty user message"),
    ({"messages": ask("What is S3?"), "extra_body": {"k": 11}}, "k: must be at most 10"),
    ({"messages": ask("What is S3?"), "extra_body": {"k": 0}}, "k: Input should be greater than or equal to 1"),
    ({"messages": ask("q" * 4001)}, "messages: the question is longer than 4000 characters"),
    ({"messages": []}, "messages: List should have at least 1 item after validation, not 0"),
])
def test_bad_completion_requests_are_422(oai: openai.OpenAI, body: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        oai.chat.completions.create(model="m", **body)
    assert caught.value.body["message"] == message  # type: ignore[index]


@pytest.fixture(scope="module")
def service(int8_dir: Path) -> Iterator[Service]:
    loaded = Service.load(load_settings(env_file=None, model_dir=int8_dir, max_input_tokens=60,
                                          database_url="none"), Drain(), Metrics())
    yield loaded
    loaded.close()


def prompt_ids(service: Service, messages: list[dict[str, str]]) -> list[int]:
    """The prompt the pipeline builds for these messages."""
    ask = to_ask(CompletionRequest.model_validate({"messages": messages}))
    return asyncio.run(prepare(service, ask)).prompt_ids


def test_earlier_turns_go_before_the_question(service: Service) -> None:
    ids = prompt_ids(service, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                               {"role": "user", "content": "What is AWS EC2?"}])
    assert ids == service.codec.encode(
        "Conversation so far:\nuser: Hi\nassistant: Hello\n\n"
        "Answer this question about cloud computing: What is AWS EC2?")


def test_oldest_turns_are_dropped_to_fit_the_token_limit(service: Service) -> None:
    ids = prompt_ids(service, [{"role": "user", "content": "cloud " * 50}, {"role": "assistant", "content": "Yes"},
                               {"role": "user", "content": "What is AWS EC2?"}])
    assert ids == service.codec.encode(
        "Conversation so far:\nassistant: Yes\n\nAnswer this question about cloud computing: What is AWS EC2?")
