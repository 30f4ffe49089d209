"""JWT sign-in against real RSA and EC keys, their set served over HTTP on loopback: what passes, and
every way in that must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.identity.tokens import InvalidToken, KeySet, KeySetUnavailable, TokenVerifier
from tests.conftest import free_port, start_server

ISSUER = "https://issuer.test/pool"
AUDIENCE = "iscoolgpt-client"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


class KeySetServer:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is fetched."""

    def __init__(self, keys: list[dict[str, Any]] | None) -> None:
        self.keys = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def keyset() -> Iterator[KeySetServer]:
    served = KeySetServer([public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")])
    yield served
    served.close()


@pytest.fixture(scope="module")
def signed_in(int8_dir: Path, keyset: KeySetServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("jwt") / "server.log"
    proc, url = start_server(int8_dir, log, AUTH_JWKS_URL=keyset.url, AUTH_ISSUER=ISSUER, AUTH_AUDIENCE=AUDIENCE)
    try:
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any = RSA_KEY, kid: str = "rsa-1", algorithm: str = "RS256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_public_key() -> str:
    """The classic confusion attack: an HMAC keyed with the server's own public key."""
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def unsigned() -> str:
    head = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    return f"{head}.{b64(json.dumps(claims()).encode())}."


def chat(url: str, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return httpx.post(f"{url}/chat/", json={"question": "What is AWS EC2?", "temperature": 0, "max_new_tokens": 4},
                      headers=headers, timeout=30)


@pytest.mark.parametrize("make", [lambda: token(), lambda: token(EC_KEY, "ec-1", "ES256"),
                                  lambda: token(aud=None, client_id=AUDIENCE, token_use="access")],
                         ids=["rs256", "es256", "cognito-access-token"])
def test_valid_tokens_are_answered(signed_in: tuple[str, Path], make: Any) -> None:
    assert chat(signed_in[0], make()).status_code == 200


BAD = {
    "expired": lambda: token(exp=int(time.time()) - 3600),
    "not yet valid": lambda: token(nbf=int(time.time()) + 3600),
    "wrong issuer": lambda: token(iss="https://evil.test"),
    "wrong audience": lambda: token(aud="someone-else"),
    "bad signature": lambda: token(OTHER_RSA_KEY),
    "alg none": unsigned,
    "hs256 keyed with the public key": hs256_with_the_public_key,
    "rs256 key claimed as es256": lambda: token(kid="ec-1"),
    "unknown kid": lambda: token(kid="rsa-99"),
    "no kid": lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256"),
    "missing sub": lambda: token(sub=None),
    "missing exp": lambda: token(exp=None),
    "64 KB token": lambda: token(padding="x" * 65536),
    "garbage": lambda: "not.a.token",
    "dots only": lambda: "..",
    "one segment": lambda: "eyJhbGciOiJSUzI1NiJ9",
}


@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
def test_every_bad_token_is_401_with_a_bearer_challenge(signed_in: tuple[str, Path], make: Any) -> None:
    response = chat(signed_in[0], make())
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error_type"] == "unauthorized"


ROUTES = [("POST", "/chat/", {"question": "What is S3?", "max_new_tokens": 2}), ("POST", "/search", {"query": "s3"}),
          ("POST", "/v1/embeddings", {"input": "s3"}),
          ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "What is S3?"}], "max_tokens": 2}),
          ("GET", "/v1/models", None), ("GET", "/search/filters", None), ("GET", "/conversations", None),
          ("GET", "/conversations/c-1", None), ("DELETE", "/conversations/c-1", None)]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_that_answers_needs_a_token(signed_in: tuple[str, Path], method: str, path: str,
                                                body: dict[str, Any] | None) -> None:
    refused = httpx.request(method, f"{signed_in[0]}{path}", json=body)
    signed = httpx.request(method, f"{signed_in[0]}{path}", json=body, headers={"Authorization": f"Bearer {token()}"})
    assert (refused.status_code, refused.headers["www-authenticate"][:6]) == (401, "Bearer")
    assert signed.status_code != 401  # past identity: answered, or this server's own 404 (no knowledge base, no id)


def test_health_needs_no_token(signed_in: tuple[str, Path]) -> None:
    assert httpx.get(f"{signed_in[0]}/health").status_code == 200


def test_one_subject_cannot_touch_anothers_conversation(signed_in: tuple[str, Path]) -> None:
    url = signed_in[0]
    cid = chat(url, token(sub="alice")).json()["conversation_id"]
    bob = {"Authorization": f"Bearer {token(sub='bob')}"}
    tries = [httpx.get(f"{url}/conversations/{cid}", headers=bob), httpx.delete(f"{url}/conversations/{cid}",
                                                                                  headers=bob),
             httpx.post(f"{url}/chat/", json={"question": "q", "conversation_id": cid}, headers=bob)]
    assert [t.status_code for t in tries] == [404, 404, 404]
    assert cid not in httpx.get(f"{url}/conversations", headers=bob).text


def test_tokens_and_subjects_never_reach_the_log(signed_in: tuple[str, Path]) -> None:
    secret_sub = "carol@example.com"
    presented = token(sub=secret_sub)
    chat(signed_in[0], presented)
    text = signed_in[1].read_text()
    assert presented not in text and secret_sub not in text
    assert '"user": "jwt-' in text


def test_unknown_kids_refetch_the_key_set_at_most_once_a_minute(signed_in: tuple[str, Path],
                                                               keyset: KeySetServer) -> None:
    chat(signed_in[0], token())  # the set is cached by now
    before = keyset.fetches
    for n in range(5):
        chat(signed_in[0], token(kid=f"rotated-{n}"))
    assert keyset.fetches - before <= 1


def test_a_rotated_key_is_found_after_the_minute(keyset: KeySetServer) -> None:
    keys = KeySet(keyset.url)
    keys.fetch()
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keyset.keys.append(public_jwk(new_key, "rsa-2"))
    with pytest.raises(InvalidToken, match="unknown signing key"):
        keys.key("rsa-2")  # fetched less than a minute ago: not fetched again
    keys._attempted -= 61  # a minute later
    assert keys.key("rsa-2")[1] == "RS256"


def test_an_unreachable_key_set_is_503_not_401_or_500(int8_dir: Path, tmp_path: Path) -> None:
    proc, url = start_server(int8_dir, tmp_path / "server.log", AUTH_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks",
                             AUTH_ISSUER=ISSUER, AUTH_AUDIENCE=AUDIENCE)
    try:
        response = chat(url, token())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (response.status_code, response.json()["error_type"]) == (503, "unavailable")
    assert response.headers["retry-after"] == "5"


def test_hs256_mode_accepts_only_its_secret() -> None:
    secret = "s" * 40
    verifier = TokenVerifier(secret=secret, audience=AUDIENCE)
    assert verifier.user(jwt.encode(claims(), secret, algorithm="HS256")) == "alice"
    for bad in (jwt.encode(claims(), "t" * 40, algorithm="HS256"), token()):
        with pytest.raises(InvalidToken):
            verifier.user(bad)


@pytest.mark.parametrize("changes", [{"iss": "https://evil.test"}, {"aud": "someone-else"}, {"iss": None}],
                         ids=["wrong issuer", "wrong audience", "no issuer"])
def test_hs256_mode_checks_issuer_and_audience_too(changes: dict[str, Any]) -> None:
    secret = "s" * 40
    verifier = TokenVerifier(secret=secret, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken):
        verifier.user(jwt.encode(claims(**changes), secret, algorithm="HS256"))


def test_a_failed_fetch_is_retried_after_seconds_not_a_minute() -> None:
    provider = KeySetServer(None)  # answers, but with no keys: a provider mid-deployment
    try:
        verifier = TokenVerifier(jwks_url=provider.url)
        with pytest.raises(KeySetUnavailable):
            verifier.user(token())
        provider.keys = [public_jwk(RSA_KEY, "rsa-1")]
        assert verifier.keys is not None
        verifier.keys._attempted -= 6  # six seconds later
        assert verifier.user(token(aud=None, iss=None)) == "alice"
    finally:
        provider.close()


def test_a_malformed_key_in_the_set_leaves_the_good_ones_usable(keyset: KeySetServer) -> None:
    broken = KeySetServer([{"kty": "RSA", "kid": "broken"}, {"kty": "EC", "kid": "no-curve-points"},
                           {"kty": ["RSA"], "kid": "kty-a-list"}, "not-a-key", {"kty": "RSA", "kid": 7},
                           {**public_jwk(RSA_KEY, "rsa-1"), "use": "sig"}])
    try:
        verifier = TokenVerifier(jwks_url=broken.url)
        assert verifier.user(token(aud=None, iss=None)) == "alice"
    finally:
        broken.close()


def test_a_key_set_that_is_not_one_is_503_and_not_fetched_per_request() -> None:
    bad = KeySetServer(None)  # {"keys": null}
    try:
        verifier = TokenVerifier(jwks_url=bad.url)
        for n in range(5):
            with pytest.raises(KeySetUnavailable):
                verifier.user(token(kid=f"k{n}"))
        assert bad.fetches == 1
    finally:
        bad.close()
