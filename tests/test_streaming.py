"""Server-Sent Events from /chat/: pieces as they are written, a final event, errors in-stream."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.generation.streaming import StopWatcher
from server.generation.text import TextCodec, TextStream
from tests.conftest import assert_generation_stopped, metric


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object], float]]:
    """(event, data, seconds since the request) for each SSE block."""
    began = time.perf_counter()
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and data:
            yield name, json.loads(data), time.perf_counter() - began
            name, data = "message", ""


def test_stream_pieces_add_up_to_the_final_answer(client: httpx.Client) -> None:
    with client.stream("POST", "/chat/", json={"question": "What is AWS Fargate?", "temperature": 0,
                                               "stream": True}) as response:
        received = [(name, data) for name, data, _ in events(response)]
    pieces = "".join(str(data["text"]) for name, data in received if name == "token")
    name, final = received[-1]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert (name, final["answer"], final["finish_reason"]) == (
        "done", "Fargate runs containers without managing servers or clusters.", "eos")
    assert pieces == final["answer"]


def test_first_piece_arrives_well_before_the_answer_ends(talker: str) -> None:
    with httpx.stream("POST", f"{talker}/chat/", timeout=60, json={
            "question": "hi", "max_new_tokens": 1500, "temperature": 0, "stream": True}) as response:
        times = [(name, at) for name, _, at in events(response)]
    first = next(at for name, at in times if name == "token")
    assert times[-1][0] == "done"
    assert first < 0.25 * times[-1][1]


def test_an_error_after_the_stream_began_is_an_error_event(impatient: str) -> None:
    with httpx.stream("POST", f"{impatient}/chat/", timeout=60, json={
            "question": "hi", "max_new_tokens": 2048, "temperature": 0, "stream": True}) as response:
        received = [(name, data) for name, data, _ in events(response)]
    assert response.status_code == 200
    assert received[-1] == ("error", {"error": "no answer within 0.1 s", "error_type": "timeout"})


def test_a_stream_client_that_leaves_stops_its_generation(talker: str) -> None:
    before = metric(talker, 'iscoolgpt_cancelled_requests_total{reason="cancelled"}')
    with httpx.stream("POST", f"{talker}/chat/", timeout=60, json={
            "question": "hi", "max_new_tokens": 2048, "temperature": 0, "stream": True}) as response:
        next(events(response))  # one piece, then hang up
    assert_generation_stopped(talker, before)


def test_text_stream_never_hands_out_half_a_character(int8_dir: Path) -> None:
    codec = TextCodec(int8_dir / "tokenizer.json", clean_up=False)
    ids = codec.encode("Amazon EC2 provides resizable virtual servers")[:-1]  # without </s>
    stream = TextStream(codec)
    pieces = [stream.push(i) for i in ids]
    assert "".join(pieces) == codec.decode(ids)


@pytest.mark.parametrize("text", ["It ' s the bucket , isn ' t it ?", "Yes . don ' t we ' re sure ! ' ve"])
def test_text_stream_pieces_add_up_to_the_cleaned_answer(codec: TextCodec, text: str) -> None:
    ids = codec.encode(text)[:-1]
    # Every order of these pieces: the clean-up rewrites " ," and " ' s" at the end of what was shown.
    orders = [random.Random(seed).sample(ids, len(ids)) for seed in range(50)]
    streams = [(order, TextStream(codec)) for order in [ids, *orders]]
    assert all("".join(map(s.push, o)) + s.finish() == codec.decode(o) for o, s in streams)


@pytest.mark.parametrize(("text", "shown", "stopped"), [
    ("Amazon S3 is", "Amazon S3 is", False),
    ("Amazon S3 is obj", "Amazon S3 is ", False),  # could be the start of "object": held back
    ("Amazon S3 is object storage", "Amazon S3 is ", True),
])
def test_stop_watcher_holds_back_what_may_become_a_stop_string(text: str, shown: str, stopped: bool) -> None:
    assert StopWatcher(["object"]).safe(text) == (shown, stopped)
