"""RATE_LIMIT_PER_MINUTE: a token bucket per user; the 429 says when to come back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.identity.ratelimit import RateLimiter, retry_after
from tests.conftest import serve


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(per_minute=3)
    waits = [limiter.take("alice") for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 19 < waits[3] <= 20  # one token comes back every 20 s
    assert limiter.take("bob") == 0.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.01, 1.0, 19.2)] == ["1", "1", "20"]


@pytest.fixture(scope="module")
def limited(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(int8_dir, tmp_path_factory, API_KEYS="alice-key,bob-key", RATE_LIMIT_PER_MINUTE="2")


def test_past_the_limit_a_user_gets_429_and_others_do_not(limited: str) -> None:
    alice, bob = ({"Authorization": f"Bearer {k}"} for k in ("alice-key", "bob-key"))
    statuses = [httpx.get(f"{limited}/v1/models", headers=alice).status_code for _ in range(3)]
    refused = httpx.get(f"{limited}/v1/models", headers=alice)
    assert statuses == [200, 200, 429]
    assert refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    assert httpx.get(f"{limited}/v1/models", headers=bob).status_code == 200
