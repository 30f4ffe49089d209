"""Optional bearer API keys, kept only as SHA-256 digests and compared in constant time.

Each key is its own user: ``API_KEYS_FILE`` lines may name it (``name:key``);
an unnamed key's user is ``key-`` and the first 12 hex digits of its digest,
so neither logs nor the database ever hold a key.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def load_keys(inline: str, file: Path | None) -> dict[bytes, str]:
    """``{digest: user}`` for the keys in ``inline`` (comma-separated) and ``file`` (one per line, # comments)."""
    entries = [k.strip() for k in inline.split(",")]
    if file is not None:
        entries += [line.split("#", 1)[0].strip() for line in file.read_text().splitlines()]
    keys: dict[bytes, str] = {}
    for entry in filter(None, entries):
        name, sep, key = entry.partition(":")
        if not sep:
            name, key = "", entry
        hashed = digest(key.strip())
        keys[hashed] = f"key:{name.strip()}" if name.strip() else f"key-{hashed.hex()[:12]}"
    return keys


def key_user(header: str | None, keys: dict[bytes, str]) -> str | None:
    """The user of the ``Authorization: Bearer`` key, or None if it is missing or matches no key."""
    scheme, _, key = (header or "").partition(" ")
    presented = digest(key.strip())
    # Compare against every digest, without stopping early, so timing says nothing about which matched.
    found = None
    for known, user in keys.items():
        if hmac.compare_digest(presented, known):
            found = user
    return found if scheme.lower() == "bearer" else None
