"""A small OAuth 2.0 identity provider on 127.0.0.1, for the chat page's sign-in: the authorization code
flow with PKCE (S256) as Cognito's hosted domain runs it, RS256 access tokens from a real RSA key, and
the key set at /.well-known/jwks.json. It refuses what a real one refuses: an unknown client, a reused
code, another redirect URI, a verifier that does not match the challenge."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "page-client"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityProvider:
    """Serves /authorize, /token and /.well-known/jwks.json; ``subject`` is who signs in."""

    def __init__(self, subject: str = "page-user") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.subject = subject
        self.codes: dict[str, dict[str, str]] = {}  # code -> its challenge and redirect URI
        self.issued = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                if url.path == "/.well-known/jwks.json":
                    public = jwt.algorithms.RSAAlgorithm.to_jwk(outer.key.public_key(), as_dict=True)
                    self._json(200, {"keys": [{**public, "kid": "idp-1"}]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
                        self._json(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    outer.codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"]}
                    self.send_response(302)
                    back = urlencode({"code": code, "state": query["state"]})
                    self.send_header("Location", f"{query['redirect_uri']}?{back}")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                grant = outer.codes.pop(form.get("code", ""), None)  # single use
                verifier = form.get("code_verifier", "").encode()
                if (grant is None or form.get("client_id") != CLIENT_ID
                        or form.get("redirect_uri") != grant["redirect_uri"]
                        or _b64url(hashlib.sha256(verifier).digest()) != grant["challenge"]):
                    self._json(400, {"error": "invalid_grant"})
                    return
                outer.issued += 1
                self._json(200, {"access_token": outer.token(), "token_type": "Bearer", "expires_in": 3600})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Access-Control-Allow-Origin", "*")  # the page's origin is another port
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self) -> str:
        """An access token as Cognito issues them: no ``aud``, the app client in ``client_id``."""
        now = int(time.time())
        claims = {"sub": self.subject, "iss": self.url, "client_id": CLIENT_ID, "token_use": "access",
                  "iat": now, "exp": now + 3600}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "idp-1"})

    def server_env(self) -> dict[str, str]:
        """The server's settings for this provider."""
        return {"AUTH_JWKS_URL": f"{self.url}/.well-known/jwks.json", "AUTH_ISSUER": self.url,
                "AUTH_AUDIENCE": CLIENT_ID, "AUTH_AUTHORIZE_URL": f"{self.url}/authorize",
                "AUTH_TOKEN_URL": f"{self.url}/token", "AUTH_CLIENT_ID": CLIENT_ID}

    def close(self) -> None:
        self.httpd.shutdown()
