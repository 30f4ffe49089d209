"""Bearer API keys and CORS, as units and on a live server configured for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.identity.keys import digest, key_user, load_keys
from tests.conftest import start_server


def test_keys_are_kept_as_digests_only_each_its_own_user(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\nfile-key\nci: named-key # the CI's\n\n")
    unnamed = {k: f"key-{digest(k).hex()[:12]}" for k in ("inline-key", "file-key")}
    assert load_keys("inline-key, ", keys_file) == {digest("inline-key"): unnamed["inline-key"],
                                                    digest("file-key"): unnamed["file-key"],
                                                    digest("named-key"): "key:ci"}


def test_only_a_matching_bearer_key_has_a_user() -> None:
    keys = {digest("k1"): "key:one"}
    assert key_user("Bearer k1", keys) == "key:one"
    assert (key_user("Bearer k2", keys), key_user("Basic k1", keys), key_user(None, keys)) == (None, None, None)


@pytest.fixture(scope="module")
def guarded(int8_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("guarded") / "server.log"
    proc, url = start_server(int8_dir, log, API_KEYS="secret-one,secret-two", CORS_ORIGINS="https://console.example")
    try:
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_without_a_key_gets_401(guarded: tuple[str, Path]) -> None:
    response = httpx.post(f"{guarded[0]}/chat/", json={"question": "What is AWS EC2?"})
    assert response.status_code == 401
    assert response.json() == {"error": "missing or invalid credentials: no bearer credentials",
                               "error_type": "unauthorized"}


def test_chat_with_a_key_answers_and_the_key_is_never_logged(guarded: tuple[str, Path]) -> None:
    response = httpx.post(f"{guarded[0]}/chat/", json={"question": "What is AWS EC2?", "temperature": 0},
                          headers={"Authorization": "Bearer secret-two"})
    assert response.status_code == 200
    assert "secret-" not in guarded[1].read_text()


def test_health_stays_open(guarded: tuple[str, Path]) -> None:
    assert httpx.get(f"{guarded[0]}/health").status_code == 200


def test_cors_preflight_allows_the_configured_origin(guarded: tuple[str, Path]) -> None:
    response = httpx.options(f"{guarded[0]}/chat/", headers={
        "Origin": "https://console.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://console.example"
