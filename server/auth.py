"""Optional bearer API keys, kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def load_keys(inline: str, file: Path | None) -> tuple[bytes, ...]:
    """Digests of the keys in ``inline`` (comma-separated) and ``file`` (one per line, # comments)."""
    keys = [k.strip() for k in inline.split(",")]
    if file is not None:
        keys += [line.split("#", 1)[0].strip() for line in file.read_text().splitlines()]
    return tuple(digest(k) for k in keys if k)


def authorized(header: str | None, digests: tuple[bytes, ...]) -> bool:
    """True when no keys are configured, or the ``Authorization: Bearer`` key matches one."""
    if not digests:
        return True
    scheme, _, key = (header or "").partition(" ")
    presented = digest(key.strip())
    # Compare against every digest, without stopping early, so timing says nothing about which matched.
    matches = [hmac.compare_digest(presented, d) for d in digests]
    return scheme.lower() == "bearer" and any(matches)
