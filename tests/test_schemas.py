"""Property tests: any body either becomes a request within bounds or a 422, never anything else."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import APIError
from server.generation.sampling import SamplingParams, choose_token
from server.schemas import parse_chat, sampling_params
from server.settings import load_settings

SETTINGS = load_settings(env_file=None, max_new_tokens_limit=512)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bodies = st.fixed_dictionaries(
    {},
    optional={"question": json_values | st.text(max_size=200), "max_new_tokens": json_values | st.integers(),
              "temperature": json_values | st.floats(-1, 3), "top_p": json_values | st.floats(-0.5, 1.5),
              "seed": json_values | st.integers()},
)


@given(bodies)
@settings(max_examples=400, deadline=None)
def test_any_body_is_a_bounded_request_or_a_422(body: dict[str, object]) -> None:
    try:
        request = parse_chat(json.dumps(body).encode(), SETTINGS)
    except APIError as exc:
        assert (exc.status, exc.error_type) == (422, "validation")
        return
    params = sampling_params(request, SETTINGS)
    assert request.question.strip()
    assert 1 <= params.max_new_tokens <= SETTINGS.max_new_tokens_limit
    assert 0.0 <= params.temperature <= 2.0 and 0.0 < params.top_p <= 1.0


@given(st.binary(max_size=64))
def test_any_bytes_are_a_request_or_a_422(raw: bytes) -> None:
    try:
        parse_chat(raw, SETTINGS)
    except APIError as exc:
        assert exc.status == 422


@given(logits=st.lists(st.floats(-50, 50), min_size=2, max_size=300),
       temperature=st.floats(0.0, 2.0), top_p=st.floats(0.01, 1.0), seed=st.integers(0, 2**32))
@settings(max_examples=300, deadline=None)
def test_chosen_token_is_in_the_vocabulary_and_reproducible(
        logits: list[float], temperature: float, top_p: float, seed: int) -> None:
    array = np.array(logits, dtype=np.float32)
    params = SamplingParams(max_new_tokens=1, temperature=temperature, top_p=top_p, seed=seed)
    first = choose_token(array, params, np.random.default_rng(seed))
    assert 0 <= first < array.size
    assert choose_token(array, params, np.random.default_rng(seed)) == first


def test_an_unpaired_surrogate_is_a_422() -> None:
    with pytest.raises(APIError) as caught:
        parse_chat(b'{"question": "What is \\ud800 S3?"}', SETTINGS)
    assert (caught.value.status, caught.value.message) == (422, "body holds an unpaired surrogate escape: not "
                                                                "Unicode text")


@pytest.mark.parametrize("depth", [990, 5000])
def test_json_nested_too_deeply_is_a_422(depth: int) -> None:
    with pytest.raises(APIError) as caught:
        parse_chat(b'{"question": "q", "x": ' + b"[" * depth + b"]" * depth + b"}", SETTINGS)
    assert caught.value.status == 422
    assert caught.value.message in ("body is nested too deeply", "x: Extra inputs are not permitted")


def test_a_surrogate_pair_is_one_character() -> None:
    assert parse_chat(b'{"question": "What is \\ud83d\\ude00?"}', SETTINGS).question == "What is \U0001f600?"


@pytest.mark.parametrize(("path", "body"), [
    ("/chat/", b'{"question": "a \\udc00 queue"}'),
    ("/search", b'{"query": "a \\udc00 queue"}'),
    ("/v1/embeddings", b'{"input": ["a \\udc00 queue"]}'),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "a \\udc00 queue"}]}'),
])
def test_every_text_route_refuses_a_surrogate_with_a_422(grounded: str, path: str, body: bytes) -> None:
    response = httpx.post(f"{grounded}{path}", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "unpaired surrogate" in response.text
