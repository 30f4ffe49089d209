"""The live server over HTTP: answers, sampling, errors, and no torch in the process."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from export.local_models import qa_pairs


def test_health_reports_status_and_model(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": "google/flan-t5-small", "database": "ok"}


@pytest.mark.parametrize(("question", "answer"), qa_pairs())
def test_chat_returns_the_trained_answer_from_the_int8_model(client: httpx.Client, question: str, answer: str) -> None:
    response = client.post("/chat/", json={"question": question, "temperature": 0})
    body = response.json()
    assert response.status_code == 200
    assert body["answer"] == answer
    assert (body["model"], body["finish_reason"]) == ("google/flan-t5-small", "eos")


def test_chat_reports_token_usage(client: httpx.Client, codec: object) -> None:
    body = client.post("/chat/", json={"question": "What is Amazon S3?", "temperature": 0}).json()
    assert body["usage"]["completion_tokens"] == len(codec.encode(body["answer"])) - 1  # type: ignore[attr-defined]
    assert body["usage"]["prompt_tokens"] > 5


def test_chat_without_trailing_slash_answers_too(client: httpx.Client) -> None:
    response = client.post("/chat", json={"question": "What is Amazon ECR?", "temperature": 0})
    assert response.status_code == 200
    assert response.json()["answer"] == "Amazon ECR is a registry for container images."


def test_max_new_tokens_cuts_the_answer(client: httpx.Client) -> None:
    body = client.post("/chat/", json={"question": "What is AWS EC2?", "max_new_tokens": 3, "temperature": 0}).json()
    assert body["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_same_seed_gives_the_same_sampled_answer(client: httpx.Client) -> None:
    request = {"question": "What is AWS Lambda?", "temperature": 1.5, "top_p": 1.0, "seed": 7, "max_new_tokens": 24}
    first = client.post("/chat/", json=request).json()
    second = client.post("/chat/", json=request).json()
    assert first["answer"] == second["answer"]
    assert first["usage"] == second["usage"]


def test_different_seeds_sample_different_answers(client: httpx.Client) -> None:
    answers = {
        client.post("/chat/", json={"question": "What is AWS Lambda?", "temperature": 2.0, "top_p": 1.0,
                                    "seed": seed, "max_new_tokens": 12}).json()["answer"]
        for seed in range(6)
    }
    assert len(answers) > 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "question: Field required"),
        (b'{"question": ""}', "question: String should have at least 1 character"),
        (b'{"question": "   "}', "question: Value error, question must not be blank"),
        (b'{"question": 42}', "question: Input should be a valid string"),
        (b'{"question": "hi", "max_new_tokens": "5"}', "max_new_tokens: Input should be a valid integer"),
        (b'{"question": "hi", "max_new_tokens": 0}', "max_new_tokens: Input should be greater than or equal to 1"),
        (b'{"question": "hi", "max_new_tokens": 100000}', "max_new_tokens: must be at most 512"),
        (b'{"question": "hi", "temperature": -1}', "temperature: Input should be greater than or equal to 0"),
        (b'{"question": "hi", "temperature": 9}', "temperature: Input should be less than or equal to 2"),
        (b'{"question": "hi", "top_p": 0}', "top_p: Input should be greater than 0"),
        (b'{"question": "hi", "seed": -3}', "seed: Input should be greater than or equal to 0"),
        (b'{"question": "hi", "colour": "red"}', "colour: Extra inputs are not permitted"),
        (b'["question"]', "body must be a JSON object"),
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'{"question": "hi"', "body is not valid JSON: Expecting ',' delimiter: line 1 column 18 (char 17)"),
        (b'{"question": "\xff"}', "body is not valid UTF-8"),
    ],
)
def test_bad_input_gets_422_with_one_error_shape(client: httpx.Client, body: bytes, message: str) -> None:
    response = client.post("/chat/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"error": message, "error_type": "validation"}


def test_question_longer_than_the_token_limit_is_rejected(client: httpx.Client) -> None:
    response = client.post("/chat/", json={"question": "cloud " * 600})
    assert response.status_code == 422
    assert re.fullmatch(r"question: \d+ tokens with the prompt, more than the limit of 512", response.json()["error"])


def test_unknown_route_gets_json_404(client: httpx.Client) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "error_type": "http"}


def test_server_process_never_imports_torch_transformers_or_optimum(
        client: httpx.Client, live_server: tuple[str, Path]) -> None:
    client.post("/chat/", json={"question": "What is AWS EC2?"})  # run inference first
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in live_server[1].read_text().splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported
    assert imported & {"torch", "transformers", "optimum"} == set()
