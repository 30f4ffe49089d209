"""JWT bearer tokens (PyJWT): RS256/ES256 against a JWKS URL (Amazon Cognito works as it is), or HS256.

What is checked: the signature, with only the algorithms of the configured
mode (never ``none``, never an HMAC keyed with a public key: an RSA key only
verifies RS256, an EC key only ES256); ``exp`` and ``sub`` present; ``exp``,
``nbf`` and ``iat`` with a small leeway; ``iss`` and ``aud`` when configured
(Cognito access tokens carry the app client in ``client_id`` instead of
``aud``: either is accepted). The key set is fetched in a worker thread,
cached, and fetched again for an unknown ``kid`` at most once a minute (5 s after
a failed fetch: until one succeeds, every token is a 503).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import jwt
from jwt.exceptions import InvalidTokenError

LEEWAY_S = 30  # clock skew allowed on exp, nbf and iat
MAX_TOKEN_CHARS = 8192  # a real token is well under 2 KB; anything longer is refused unparsed
REFRESH_EVERY_S = 60.0  # the key set is fetched again for an unknown kid at most this often
RETRY_FAILED_S = 5.0  # after a failed fetch: soon, so a provider's blip is not a minute of 503s
FETCH_TIMEOUT_S = 5.0
KEY_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}  # the one algorithm each kind of key may verify


class InvalidToken(Exception):
    """The token does not prove who the caller is; the message says why (never the token)."""


class KeySetUnavailable(Exception):
    """The JWKS could not be fetched and the token's key is not cached: a dependency failed, not the caller."""


class KeySet:
    """Public keys by ``kid`` from a JWKS URL, fetched at start-up or first use, and refreshed at most once a
    minute (5 s after a failed fetch)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str, tuple[Any, str]] = {}  # kid -> (public key, the one algorithm it verifies)
        self._attempted = float("-inf")  # monotonic time of the last fetch, successful or not
        self._wait = REFRESH_EVERY_S  # until the next fetch may start: longer after a success
        self._fetched = False
        self._lock = threading.Lock()

    def fetch(self) -> None:
        """Fetch the key set now (blocking); keys of unsupported kinds or malformed ones are skipped."""
        self._attempted = time.monotonic()  # failures count too: an outage is not retried per request
        self._wait = RETRY_FAILED_S
        try:
            with urllib.request.urlopen(self.url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 (configured URL)
                document = json.loads(response.read(1 << 20))
        except (OSError, ValueError, RecursionError) as exc:
            raise KeySetUnavailable(f"cannot fetch the key set: {exc}") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise KeySetUnavailable("the key set has no list of keys")
        keys = {}
        for entry in entries:
            if not (isinstance(entry, dict) and isinstance(entry.get("kid"), str) and entry.get("use", "sig") == "sig"
                    and isinstance(entry.get("kty"), str) and entry["kty"] in KEY_ALGORITHMS
                    and entry.get("crv", "P-256") == "P-256" and "d" not in entry):
                continue  # symmetric ("oct"), encryption, private and other-curve keys are never used
            algorithm = KEY_ALGORITHMS[entry["kty"]]
            try:
                keys[entry["kid"]] = (jwt.PyJWK(entry, algorithm).key, algorithm)
            except (jwt.exceptions.PyJWTError, TypeError, ValueError, KeyError):
                continue  # one malformed key must not take the others down
        self._keys = keys
        self._fetched = True
        self._wait = REFRESH_EVERY_S

    def key(self, kid: str) -> tuple[Any, str]:
        """The key for ``kid``; an unknown one refreshes the set, at most once a minute, or 5 s after a failed
        fetch (blocking).

        While a refresh is under way other requests do not queue behind it: they see the keys as
        they are (an unknown kid is 401, or 503 if no key set was ever fetched).
        """
        if kid not in self._keys and self._lock.acquire(blocking=False):
            try:
                if kid not in self._keys and time.monotonic() - self._attempted >= self._wait:
                    self.fetch()
            finally:
                self._lock.release()
        if not self._fetched:
            raise KeySetUnavailable("the key set has not been fetched yet")
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("unknown signing key") from None


class TokenVerifier:
    """Turns a bearer token into its user (``sub``), in the configured mode."""

    def __init__(self, *, jwks_url: str = "", secret: str = "", issuer: str = "", audience: str = "") -> None:
        self.keys = KeySet(jwks_url) if jwks_url else None
        self.secret = secret
        self.issuer = issuer
        self.audience = audience

    def user(self, token: str) -> str:
        """The token's ``sub``; :class:`InvalidToken` or :class:`KeySetUnavailable` otherwise (blocking)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise InvalidToken("malformed token") from None
        if self.keys is not None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise InvalidToken("token has no key id")
            key, algorithm = self.keys.key(kid)
            algorithms = [algorithm]
        else:
            key, algorithms = self.secret, ["HS256"]
        try:
            claims = jwt.decode(token, key, algorithms=algorithms, leeway=LEEWAY_S,
                                issuer=self.issuer or None,
                                options={"require": ["exp", "sub"], "verify_aud": False})
        except InvalidTokenError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        if self.audience and not _audience_ok(claims, self.audience):
            raise InvalidToken("token is for another audience")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 256:
            raise InvalidToken("token has no usable subject")
        return sub


def _audience_ok(claims: dict[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return audience in auds or claims.get("client_id") == audience
