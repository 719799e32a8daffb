"""Privacy helpers: withdrawn identities are remembered only by a salted digest of their key."""

from __future__ import annotations

import hashlib


def key_digest(salt: str, key: str) -> str:
    """sha256 hex of ``salt + key`` — what the takedowns table stores instead of the key."""
    return hashlib.sha256((salt + key).encode("utf-8")).hexdigest()
