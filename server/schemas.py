"""Request and response bodies, and the checks that turn a request into work."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.errors import APIError
from server.generation.sampling import SamplingParams
from server.settings import Settings

MAX_SEED = 2**63 - 1
MAX_FILTER_NAMES = 50  # services or sources one filter may list
M = TypeVar("M", bound=BaseModel)


class SearchFilter(BaseModel):
    """Narrows retrieval to passages of these services (botocore ids, ``"s3"``) and/or these sources (``"awscli"``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    service: str | list[str] | None = None
    source: str | list[str] | None = None

    @field_validator("service", "source")
    @classmethod
    def _names(cls, value: str | list[str] | None) -> str | list[str] | None:
        names = [value] if isinstance(value, str) else value or []
        if isinstance(value, list) and not 1 <= len(value) <= MAX_FILTER_NAMES:
            raise ValueError(f"must list 1 to {MAX_FILTER_NAMES} names")
        if any(not 1 <= len(n) <= 64 for n in names):
            raise ValueError("names are 1 to 64 characters")
        return value

    def services(self) -> tuple[str, ...] | None:
        return _as_tuple(self.service)

    def sources(self) -> tuple[str, ...] | None:
        return _as_tuple(self.source)


def _as_tuple(value: str | list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else (value,) if isinstance(value, str) else tuple(value)


class ChatRequest(BaseModel):
    """``POST /chat/``: a question and optional per-request sampling overrides."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(min_length=1)
    max_new_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False  # answer as Server-Sent Events, one per piece of text
    grounded: bool | None = None  # answer from retrieved passages; default: when there is a knowledge base
    k: int | None = Field(None, ge=1)  # passages to retrieve (at most RETRIEVAL_K_MAX)
    filter: SearchFilter | None = None  # retrieve only from these services / sources
    conversation_id: str | None = None  # continue this conversation (any other string is 404); none starts one

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return not_blank(value, "question")


def not_blank(value: str, name: str) -> str:
    if not value.strip():
        raise ValueError(f"{name} must not be blank")
    if "\x00" in value:  # no text store (PostgreSQL's text type among them) keeps a NUL character
        raise ValueError(f"{name} must not contain NUL characters")
    return value


class SearchRequest(BaseModel):
    """``POST /search``: passages of the knowledge base for a query."""

    model_config = ConfigDict(extra="forbid", strict=True)

    query: str = Field(min_length=1)
    k: int | None = Field(None, ge=1)
    filter: SearchFilter | None = None

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return not_blank(value, "query")


class Source(BaseModel):
    """A passage an answer was grounded on, in rank order."""

    id: str  # "<document id>#<n>"
    title: str
    text: str  # the passage as the knowledge base holds it (the prompt may hold less of the last one)
    url: str | None
    source: str  # which corpus: botocore, awscli, cdk, cloudformation, azure, kubernetes, docs
    service: str | None  # botocore's service id for AWS passages
    command: str | None  # a CLI example's command, as written
    score: float


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ChatResponse(BaseModel):
    answer: str
    model: str
    finish_reason: str
    usage: Usage
    grounded: bool
    sources: list[Source]
    conversation_id: str | None  # None only when the server keeps no history (DATABASE_URL=none)


def _validation_error(message: str) -> APIError:
    return APIError(422, message, "validation")


def parse_body(body: bytes, model: type[M]) -> M:
    """A JSON object validated as ``model``; a 422 :class:`APIError` names the first problem."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise _validation_error("body is not valid UTF-8") from None
    except ValueError as exc:
        raise _validation_error(f"body is not valid JSON: {exc}") from None
    except RecursionError:  # "[[[[..." a thousand deep: valid JSON, but no request nests like that
        raise _validation_error("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise _validation_error("body must be a JSON object")
    # JSON may escape half a surrogate pair ("\ud800"): valid JSON, but no text a tokenizer or a store can take.
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except RecursionError:
        raise _validation_error("body is nested too deeply") from None
    except UnicodeEncodeError:
        raise _validation_error("body holds an unpaired surrogate escape: not Unicode text") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _validation_error(f"{where}: {first['msg']}") from None


def check_k(k: int | None, settings: Settings) -> None:
    if k is not None and k > settings.retrieval_k_max:
        raise _validation_error(f"k: must be at most {settings.retrieval_k_max}")


def parse_search(body: bytes, settings: Settings) -> SearchRequest:
    """Parse and check a /search body; raise a 422 :class:`APIError` saying what is wrong."""
    request = parse_body(body, SearchRequest)
    if len(request.query) > settings.max_question_chars:
        raise _validation_error(f"query: longer than {settings.max_question_chars} characters")
    check_k(request.k, settings)
    return request


def parse_chat(body: bytes, settings: Settings) -> ChatRequest:
    """Parse and check a /chat/ body; raise a 422 :class:`APIError` saying what is wrong."""
    request = parse_body(body, ChatRequest)
    if len(request.question) > settings.max_question_chars:
        raise _validation_error(f"question: longer than {settings.max_question_chars} characters")
    check_k(request.k, settings)
    if request.max_new_tokens is not None and request.max_new_tokens > settings.max_new_tokens_limit:
        raise _validation_error(f"max_new_tokens: must be at most {settings.max_new_tokens_limit}")
    return request


def sampling_params(request: ChatRequest, settings: Settings) -> SamplingParams:
    """Per-request overrides on top of the service's defaults."""
    return SamplingParams(
        max_new_tokens=request.max_new_tokens or min(settings.max_new_tokens, settings.max_new_tokens_limit),
        temperature=settings.temperature if request.temperature is None else request.temperature,
        top_p=settings.top_p if request.top_p is None else request.top_p,
        seed=request.seed,
    )
