"""SIGTERM under load: requests in flight finish, new ones are refused, the process exits 0."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from tests.conftest import metric, start_server


def test_sigterm_drains_in_flight_requests_then_exits_zero(talker_dir: Path, tmp_path: Path) -> None:
    proc, url = start_server(talker_dir, tmp_path / "server.log", MAX_BATCH_SIZE="4", DRAIN_SECONDS="20",
                             MAX_NEW_TOKENS_LIMIT="2048")
    results: list[httpx.Response] = []

    def ask() -> None:
        results.append(httpx.post(f"{url}/chat/", json={"question": "hi", "max_new_tokens": 1500, "temperature": 0},
                                  timeout=60))

    try:
        workers = [threading.Thread(target=ask) for _ in range(6)]
        for worker in workers:
            worker.start()
        # The first four decode, two wait in the queue: all six are admitted before the signal.
        while metric(url, "iscoolgpt_batch_active") < 4 or metric(url, "iscoolgpt_queue_depth") < 2:
            pass
        proc.send_signal(signal.SIGTERM)
        health = httpx.get(f"{url}/health")
        refused = httpx.post(f"{url}/chat/", json={"question": "late"})
        for worker in workers:
            worker.join(60)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (health.status_code, health.json()["status"]) == (503, "draining")
    assert (refused.status_code, refused.json()["error_type"]) == (503, "unavailable")
    assert [(r.status_code, r.json()["usage"]["completion_tokens"]) for r in results] == [(200, 1500)] * 6
    assert code == 0
