"""The knowledge base on its own: ``POST /search`` and the OpenAI-compatible ``POST /v1/embeddings``.

Both run their model work in a worker thread, never on the event loop, and
answer 404 ``not_found`` on a serving directory exported without a knowledge
base (which still answers ``/chat/`` ungrounded).
"""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.admission.gate import admission, caller, check_request, read_body
from server.errors import APIError
from server.pipeline import retrieve
from server.retrieval.knowledge import KnowledgeBase
from server.schemas import parse_body, parse_search
from server.service import Service


def _knowledge(service: Service) -> KnowledgeBase:
    if service.knowledge is None:
        raise APIError(404, "this server has no knowledge base (export with --knowledge or --docs)", "not_found")
    return service.knowledge


async def search(request: Request) -> JSONResponse:
    """The ``k`` passages that best match a query, fused from dense and BM25 rankings."""
    service: Service = request.state.service
    await check_request(request, service)
    body = parse_search(await read_body(request, service.settings.max_body_bytes), service.settings)
    knowledge = _knowledge(service)
    narrow = body.filter
    with admission(service):
        hits = await retrieve(knowledge, body.query, body.k or service.settings.retrieval_k,
                              narrow.services() if narrow else None, narrow.sources() if narrow else None)
    return JSONResponse({"results": [{**h.passage.as_json(), "score": round(h.score, 6)} for h in hits]})


async def filters(request: Request) -> JSONResponse:
    """What a filter may name: the knowledge base's services and sources, each with its passage count."""
    service: Service = request.state.service
    await caller(request, service)
    return JSONResponse(_knowledge(service).facets)


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request; token-id inputs and ``dimensions`` other than the model's are refused."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("must hold at least one text")
        if any(not t.strip() for t in texts):
            raise ValueError("texts must not be empty or blank")
        return value


async def embeddings(request: Request) -> JSONResponse:
    """Unit-length embeddings of one text or a list, as OpenAI's API returns them."""
    service: Service = request.state.service
    settings = service.settings
    await check_request(request, service)
    body = parse_body(await read_body(request, settings.max_body_bytes), EmbeddingRequest)
    knowledge = _knowledge(service)
    texts = [body.input] if isinstance(body.input, str) else body.input
    if len(texts) > settings.max_embedding_inputs:
        raise APIError(422, f"input: at most {settings.max_embedding_inputs} texts", "validation")
    if any(len(t) > settings.max_question_chars for t in texts):
        raise APIError(422, f"input: a text is longer than {settings.max_question_chars} characters", "validation")
    dim = knowledge.embedder.config.dim
    if body.dimensions is not None and body.dimensions != dim:
        raise APIError(422, f"dimensions: this model gives {dim}", "validation")
    with admission(service):
        vectors, tokens = await run_in_threadpool(_embed, knowledge, texts)
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64"
             else v.tolist()} for i, v in enumerate(vectors)]
    return JSONResponse({"object": "list", "data": data, "model": service.embedder_name,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _embed(knowledge: KnowledgeBase, texts: list[str]) -> tuple[np.ndarray, int]:
    return knowledge.embedder.embed(texts), sum(knowledge.embedder.count_tokens(texts))
