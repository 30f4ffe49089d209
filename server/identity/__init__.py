"""Who is asking: an API key's user, a JWT's ``sub``, or the one anonymous user; and their rate limit.

With no key and no token configured everyone is ``anonymous`` (a conversation
id is then the only key to a conversation). With either, a request without
valid credentials is refused with 401 on every route that answers, searches,
embeds or touches conversations. The user label written to logs is never a
key or a token: a key's name, or a hash of the user.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from server.errors import APIError
from server.identity.keys import key_user, load_keys
from server.identity.ratelimit import RateLimiter, retry_after
from server.identity.tokens import InvalidToken, KeySetUnavailable, TokenVerifier
from server.settings import Settings

ANONYMOUS = "anonymous"
log = logging.getLogger("iscoolgpt.identity")


@dataclass(frozen=True)
class Identity:
    user: str  # what conversations are stored under: "anonymous", "key:<name>", "key-<hash>", "jwt:<sub>"
    method: str  # "anonymous", "key" or "jwt"

    @property
    def label(self) -> str:
        """For logs: a key's user as is, anyone else as a short hash (a ``sub`` may be an e-mail)."""
        return self.user if self.method != "jwt" else "jwt-" + hashlib.sha256(self.user.encode()).hexdigest()[:16]


def _unauthorized(reason: str) -> APIError:
    return APIError(401, f"missing or invalid credentials: {reason}", "unauthorized",
                    {"WWW-Authenticate": 'Bearer realm="iscoolgpt"'})


class Identifier:
    """Checks credentials and the per-user rate limit; built once at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.keys = load_keys(settings.api_keys, settings.api_keys_file)
        configured = settings.auth_jwks_url or settings.auth_jwt_secret
        self.tokens = TokenVerifier(jwks_url=settings.auth_jwks_url, secret=settings.auth_jwt_secret,
                                    issuer=settings.auth_issuer, audience=settings.auth_audience) \
            if configured else None
        self.limiter = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None

    def warm(self) -> None:
        """Fetch the key set at start-up, so the first signed-in request does not wait for it; a
        provider that does not answer now is retried by the first token (blocking)."""
        if self.tokens is not None and self.tokens.keys is not None:
            try:
                self.tokens.keys.fetch()
            except KeySetUnavailable as exc:
                log.warning("%s; retried at the first token", exc)

    @property
    def open(self) -> bool:
        return not self.keys and self.tokens is None

    @property
    def modes(self) -> list[str]:
        return (["api-keys"] if self.keys else []) + (["jwt"] if self.tokens else []) or ["open"]

    async def identify(self, header: str | None) -> Identity:
        """The caller, or an :class:`APIError`: 401 (credentials), 503 (key set unreachable), 429 (rate)."""
        identity = await self._who(header)
        if self.limiter is not None and (wait := self.limiter.take(identity.user)):
            raise APIError(429, "rate limit reached: too many requests this minute", "rate_limited",
                           {"Retry-After": retry_after(wait)})
        return identity

    async def _who(self, header: str | None) -> Identity:
        if self.open:
            return Identity(ANONYMOUS, "anonymous")
        scheme, _, credential = (header or "").partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise _unauthorized("no bearer credentials")
        if self.keys and (user := key_user(header, self.keys)) is not None:
            return Identity(user, "key")
        if self.tokens is None:
            raise _unauthorized("unknown API key")
        try:
            # Blocking at most on a key set fetch; never on the event loop.
            sub = await run_in_threadpool(self.tokens.user, credential)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        except KeySetUnavailable as exc:
            raise APIError(503, str(exc), "unavailable", {"Retry-After": "5"}) from None
        return Identity(f"jwt:{sub}", "jwt")
