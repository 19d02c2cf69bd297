"""Token secrets and their stored form (no imports beyond the standard library)."""

from __future__ import annotations

import hashlib
import secrets

PREFIX_CHARS = 8


def new_key() -> str:
    return secrets.token_hex(20)


def hash_key(key: str) -> str:
    """What the database keeps of a token: its SHA-256 (hex)."""
    return hashlib.sha256(key.encode()).hexdigest()
