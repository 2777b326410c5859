"""Push-API keys: generation, the stored form (SHA-256 hex), constant-time verification.

A key is `secrets.token_urlsafe(32)` (256 bits). Only its SHA-256 is stored: a plain hash
is enough for a random 256-bit secret (nothing to brute-force), and it keeps every request
cheap. A request names its server (X-Server-ID) and carries the key (X-API-Key, or
`Authorization: Bearer <key>`). Unknown server, disabled server, server without a key and
wrong key all take the same path: one database lookup, one hash, one compare_digest (against
a dummy hash when there is nothing to compare with), so neither the answer nor its timing
tells whether a server id exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg

from bot.db import api_keys
from bot.registry import ServerRegistry

KEY_BYTES = 32
MAX_KEY_LENGTH = 256  # longer headers are refused before hashing
MAX_SERVER_ID_LENGTH = 64
# Random per process: nobody can know a key that matches it.
_DUMMY_HASH = hashlib.sha256(secrets.token_bytes(KEY_BYTES)).hexdigest()


def generate_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def verify_key(key: str, stored_hash: str | None) -> bool:
    """Constant time in the key; a missing hash still costs one hash and one compare."""
    expected = stored_hash if stored_hash else _DUMMY_HASH
    same = hmac.compare_digest(hash_key(key).encode(), expected.encode("utf-8", "replace"))
    return same and bool(stored_hash)


@dataclass(frozen=True, slots=True)
class Credentials:
    server_id: str
    key: str = field(repr=False)  # never in a repr, hence never in a log line


def credentials_from(headers: Mapping[str, str]) -> Credentials | None:
    """X-Server-ID plus X-API-Key or `Authorization: Bearer`; None when either is missing."""
    server_id = headers.get("X-Server-ID", "").strip()
    key = headers.get("X-API-Key", "").strip()
    if not key:
        scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not server_id or not key:
        return None
    if len(server_id) > MAX_SERVER_ID_LENGTH or len(key) > MAX_KEY_LENGTH:
        return None
    return Credentials(server_id, key)


async def authenticate(
    pool: asyncpg.Pool, creds: Credentials, registry: ServerRegistry | None = None
) -> bool:
    """True when the key is the server's and the server is enabled. Database errors raise."""
    async with pool.acquire() as conn:
        row = await api_keys.auth_row(conn, creds.server_id)
    stored = row["api_key_hash"] if row is not None else None
    valid = verify_key(creds.key, stored)
    enabled = row is not None and row["enabled"]
    if registry is not None and creds.server_id in registry:
        enabled = enabled and registry.get(creds.server_id).enabled
    return valid and enabled
