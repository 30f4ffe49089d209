"""Request ids, the JSON log line, and /metrics, on the live server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.conftest import start_server


def test_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"


def test_request_id_is_made_when_missing_or_unsafe(client: httpx.Client) -> None:
    made = client.get("/health").headers["x-request-id"]
    replaced = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_one_json_log_line_per_request(client: httpx.Client, live_server: tuple[str, Path]) -> None:
    client.post("/chat/", json={"question": "What is Amazon S3?", "temperature": 0},
                headers={"X-Request-ID": "log-line-test"})
    lines = [json.loads(line.split("iscoolgpt.access: ", 1)[1])
             for line in live_server[1].read_text().splitlines() if "log-line-test" in line]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("status", "path", "completion_tokens", "batch_size")} == {
        "status": 200, "path": "/chat/", "completion_tokens": 22, "batch_size": 1}
    assert "question" not in lines[0]  # questions are logged only where LOG_QUESTIONS is set


def test_metrics_count_requests_and_tokens(client: httpx.Client) -> None:
    client.post("/chat/", json={"question": "What is Amazon ECR?", "temperature": 0})
    text = client.get("/metrics").text
    assert re.search(r'^iscoolgpt_requests_total\{route="/chat/",status="200"\} [1-9]', text, re.MULTILINE)
    assert re.search(r"^iscoolgpt_generated_tokens_total [1-9]", text, re.MULTILINE)


def test_json_log_format_makes_every_line_one_object(int8_dir: Path, tmp_path: Path) -> None:
    proc, url = start_server(int8_dir, tmp_path / "server.log", LOG_FORMAT="json", DATABASE_URL="none")
    try:
        httpx.post(f"{url}/chat/", json={"question": "What is Amazon S3?", "temperature": 0},
                   headers={"X-Request-ID": "json-line-test"}, timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # -X importtime writes to stderr too: everything else must parse, uvicorn's own lines included.
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()
             if not line.startswith("import time:")]
    request = next(line for line in lines if line.get("request_id") == "json-line-test")
    assert (request["status"], request["path"], request["logger"]) == (200, "/chat/", "iscoolgpt.access")
    assert isinstance(request["latency_ms"], float)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
