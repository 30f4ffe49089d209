"""Size, type, deadline and disconnect limits of /chat/, on a model that talks until it is stopped."""

from __future__ import annotations

import httpx

from tests.conftest import assert_generation_stopped, hang_up_mid_generation, metric


def test_body_over_the_limit_gets_413(talker: str) -> None:
    response = httpx.post(f"{talker}/chat/", json={"question": "x" * 2000})
    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 1024 bytes", "error_type": "validation"}


def test_wrong_content_type_gets_415(talker: str) -> None:
    response = httpx.post(f"{talker}/chat/", content=b"question=hi",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json() == {"error": "content type must be application/json, not application/x-www-form-urlencoded",
                               "error_type": "validation"}


def test_an_answer_past_the_deadline_gets_504(impatient: str) -> None:
    response = httpx.post(f"{impatient}/chat/", json={"question": "hi", "max_new_tokens": 2048, "temperature": 0},
                          timeout=30)
    assert response.status_code == 504
    assert response.json() == {"error": "no answer within 0.1 s", "error_type": "timeout"}
    assert metric(impatient, 'iscoolgpt_cancelled_requests_total{reason="timeout"}') >= 1


CANCELLED = 'iscoolgpt_cancelled_requests_total{reason="cancelled"}'


def test_a_client_that_leaves_frees_its_batch_slot(talker: str) -> None:
    before = metric(talker, CANCELLED)
    hang_up_mid_generation(talker, "/chat/", b'{"question": "hi", "max_new_tokens": 2048, "temperature": 0}')
    assert_generation_stopped(talker, before)


def test_an_openai_client_that_leaves_frees_its_batch_slot(talker: str) -> None:
    before = metric(talker, CANCELLED)
    hang_up_mid_generation(talker, "/v1/chat/completions",
                           b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2048, "temperature": 0}')
    assert_generation_stopped(talker, before)
