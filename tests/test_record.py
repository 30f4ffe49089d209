"""The record stage: what an answered request leaves behind, and the ``Server-Timing`` that says what it cost."""

from __future__ import annotations

import httpx

from server.generation.batcher import Result
from server.pipeline import Prepared
from server.record import server_timing

RESULT = Result(tokens=[5], finish_reason="eos", queue_seconds=0.002, decode_seconds=0.1, batch_size=1,
                prefill_seconds=0.03)


def test_server_timing_names_each_stage_in_request_order() -> None:
    prepared = Prepared([1, 2], True, [], {"history_ms": 1.234, "retrieval_ms": 5.0, "prompt_ms": 0.5})
    assert server_timing(prepared, RESULT) == ("history;dur=1.23, retrieval;dur=5.00, prompt;dur=0.50, "
                                               "queue;dur=2.00, prefill;dur=30.00, decode;dur=100.00")


def test_stages_that_did_not_run_are_left_out() -> None:
    assert server_timing(Prepared([1], False, [], {"prompt_ms": 0.25}), RESULT).split(", ")[0] == "prompt;dur=0.25"


def test_a_kept_grounded_answer_reports_every_stage(grounded: str) -> None:
    response = httpx.post(f"{grounded}/chat/", json={"question": "How do I send a message?", "max_new_tokens": 2},
                          timeout=30)
    stages = [part.split(";")[0] for part in response.headers["server-timing"].split(", ")]
    assert stages == ["history", "retrieval", "prompt", "queue", "prefill", "decode", "record"]
