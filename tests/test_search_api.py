"""``POST /search`` and ``POST /v1/embeddings`` over HTTP, with the official ``openai`` client too."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.retrieval.embedder import Embedder, EmbedderConfig
from server.serving_dir import open_serving_dir
from server.settings import load_settings


def test_search_returns_passages_best_first(grounded: str) -> None:
    response = httpx.post(f"{grounded}/search", json={"query": "Where should I keep archives for years?", "k": 2})
    results = response.json()["results"]
    assert response.status_code == 200
    assert [r["id"] for r in results][:1] == ["docs/glacier-storage-classes.md#0"]
    assert set(results[0]) == {"id", "title", "text", "url", "source", "service", "command", "score"}
    assert len(results) == 2


def test_results_say_which_source_and_service_they_come_from(grounded: str) -> None:
    results = httpx.post(f"{grounded}/search", json={"query": "aws sqs send-message to a queue", "k": 10}).json()
    example = next(r for r in results["results"] if r["source"] == "awscli")
    assert (example["service"], example["command"].startswith("aws sqs ")) == ("sqs", True)
    assert example["url"].startswith("https://docs.aws.amazon.com/")


@pytest.mark.parametrize(("narrow", "services", "sources"), [
    ({"service": "ecr"}, {"ecr"}, None),
    ({"service": ["ecr", "sqs"], "source": "awscli"}, {"ecr", "sqs"}, {"awscli"}),
    ({"source": ["docs"]}, {None}, {"docs"}),
])
def test_a_filter_narrows_search_to_its_services_and_sources(grounded: str, narrow: dict,  # type: ignore[type-arg]
                                                             services: set[str | None],
                                                             sources: set[str] | None) -> None:
    body = {"query": "How do I send a message to a queue?", "k": 10, "filter": narrow}
    results = httpx.post(f"{grounded}/search", json=body).json()["results"]
    assert results and {r["service"] for r in results} <= services
    assert sources is None or {r["source"] for r in results} <= sources


@pytest.mark.parametrize(("narrow", "message"), [
    ({"service": "sq"}, "filter.service: this knowledge base has no service 'sq' (did you mean sqs?)"),
    ({"service": "lambda"},
     "filter.service: this knowledge base has no service 'lambda' (it has 2 services: GET /search/filters)"),
    ({"source": "azure"},
     "filter.source: this knowledge base has no source 'azure' (it has 5 sources: GET /search/filters)"),
    ({"service": []}, "filter.service: Value error, must list 1 to 50 names"),
    ({"service": ["s"] * 51}, "filter.service: Value error, must list 1 to 50 names"),
    ({"service": "x" * 65}, "filter.service: Value error, names are 1 to 64 characters"),
    ({"service": 3}, "filter.service.str: Input should be a valid string"),
    ({"region": "us"}, "filter.region: Extra inputs are not permitted"),
])
def test_a_filter_naming_what_the_knowledge_base_lacks_is_422(grounded: str, narrow: object, message: str) -> None:
    response = httpx.post(f"{grounded}/search", json={"query": "queue", "filter": narrow})
    assert (response.status_code, response.json()) == (422, {"error": message, "error_type": "validation"})


def test_the_filters_name_every_service_and_source_with_its_passages(grounded: str, grounded_dir: Path) -> None:
    facets = httpx.get(f"{grounded}/search/filters").json()
    passages = (grounded_dir / "knowledge/passages.jsonl").read_text().count("\n")
    assert list(facets["service"]) == ["ecr", "sqs"]
    assert list(facets["source"]) == ["awscli", "botocore", "cdk", "cloudformation", "docs"]
    assert sum(facets["source"].values()) == passages


def test_filters_without_a_knowledge_base_are_404(client: httpx.Client) -> None:
    assert client.get("/search/filters").status_code == 404


def test_chat_takes_the_same_filter(grounded: str) -> None:
    body = {"question": "How do I send a message to a queue?", "filter": {"service": "ecr"}, "max_new_tokens": 4}
    answer = httpx.post(f"{grounded}/chat/", json=body, timeout=60).json()
    assert answer["sources"] and {s["service"] for s in answer["sources"]} == {"ecr"}
    bad = httpx.post(f"{grounded}/chat/", json={**body, "filter": {"service": "nope"}})
    assert (bad.status_code, bad.json()["error_type"]) == (422, "validation")


def test_search_defaults_to_retrieval_k(grounded: str) -> None:
    assert len(httpx.post(f"{grounded}/search", json={"query": "send a message"}).json()["results"]) == 3


@pytest.mark.parametrize(("body", "message"), [
    ({"query": ""}, "query: String should have at least 1 character"),
    ({"query": "  \n "}, "query: Value error, query must not be blank"),
    ({"query": "queue", "k": 0}, "k: Input should be greater than or equal to 1"),
    ({"query": "queue", "k": 11}, "k: must be at most 10"),
    ({"query": "queue", "k": "3"}, "k: Input should be a valid integer"),
    ({"query": "q" * 4001}, "query: longer than 4000 characters"),
    ({"query": "queue", "filter": "x"}, "filter: Input should be a valid dictionary or instance of SearchFilter"),
    ({"query": "queue", "region": "x"}, "region: Extra inputs are not permitted"),
    ({}, "query: Field required"),
])
def test_bad_search_requests_are_422(grounded: str, body: dict, message: str) -> None:  # type: ignore[type-arg]
    response = httpx.post(f"{grounded}/search", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": message, "error_type": "validation"}


def test_search_without_a_knowledge_base_is_404(client: httpx.Client) -> None:
    response = client.post("/search", json={"query": "queue"})
    assert response.status_code == 404
    assert response.json()["error_type"] == "not_found"


@pytest.fixture(scope="module")
def oai(grounded: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{grounded}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def embedder(grounded_dir: Path) -> Embedder:
    serving = open_serving_dir(grounded_dir)
    return Embedder(grounded_dir / "embedder", EmbedderConfig.from_manifest(serving.manifest["embedder"]))


def test_openai_client_gets_the_servers_embeddings(oai: openai.OpenAI, embedder: Embedder) -> None:
    reply = oai.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input=["a queue", "a bucket"])
    got = np.array([d.embedding for d in reply.data], dtype=np.float32)
    assert reply.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert np.allclose(got, embedder.embed(["a queue", "a bucket"]), atol=1e-6)


def test_float_format_and_one_string_work_too(grounded: str) -> None:
    body = httpx.post(f"{grounded}/v1/embeddings", json={"input": "a queue", "encoding_format": "float"}).json()
    vector = np.array(body["data"][0]["embedding"])
    assert (len(body["data"]), vector.shape) == (1, (384,))
    assert abs(np.linalg.norm(vector) - 1) < 1e-5 and body["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize(("body", "code"), [
    ({"input": []}, "validation"), ({"input": ["ok", " "]}, "validation"), ({"input": [1, 2]}, "validation"),
    ({"input": ["x"] * 65}, "validation"), ({"input": "x", "dimensions": 12}, "validation"),
    ({"input": "x", "encoding_format": "int8"}, "validation"), ({"input": ["ok", "x" * 4001]}, "validation"),
])
def test_bad_embedding_requests_are_422_in_openai_shape(grounded: str, body: dict, code: str) -> None:  # type: ignore[type-arg]
    response = httpx.post(f"{grounded}/v1/embeddings", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


def test_search_while_draining_is_503(grounded_dir: Path) -> None:
    app = create_app(load_settings(env_file=None, model_dir=grounded_dir, database_url="none"))
    with TestClient(app) as client:
        app.state.drain.begin()  # SIGTERM has come: the task takes no new work, search included
        response = client.post("/search", json={"query": "queue"})
    assert response.status_code == 503
    assert response.json()["error_type"] == "unavailable"


def test_embeddings_without_a_knowledge_base_are_404(client: httpx.Client) -> None:
    assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 404


def test_models_lists_the_embedder_beside_the_generator(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["google/flan-t5-small", "sentence-transformers/all-MiniLM-L6-v2"]
