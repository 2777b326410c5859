"""API keys: generation, hashing, constant-time checks, and the lookup against the database."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from bot.api.auth import (
    MAX_KEY_LENGTH,
    Credentials,
    authenticate,
    credentials_from,
    generate_key,
    hash_key,
    verify_key,
)
from bot.db import api_keys
from bot.registry import ServerConfig, ServerRegistry
from tests.api.conftest import TZ, api_registry, install_keys


def test_keys_are_random_and_long() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    # token_urlsafe(32): 32 random bytes -> 43 URL-safe characters
    assert all(len(k) >= 43 for k in keys)
    assert all(k.replace("-", "").replace("_", "").isalnum() for k in keys)


def test_only_the_sha256_is_stored() -> None:
    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key not in hash_key(key)


def test_verify_key() -> None:
    key = generate_key()
    assert verify_key(key, hash_key(key))
    assert not verify_key(key + "x", hash_key(key))
    assert not verify_key(key, None)  # no key stored: compared against the dummy, refused
    assert not verify_key(key, "")
    assert not verify_key(key, "ä-not-hex")


def test_credentials_from_headers() -> None:
    assert credentials_from({"X-Server-ID": "eu1", "X-API-Key": "k"}) == Credentials("eu1", "k")
    bearer = {"X-Server-ID": " eu1 ", "Authorization": "Bearer  tok "}
    assert credentials_from(bearer) == Credentials("eu1", "tok")
    lower = {"X-Server-ID": "eu1", "Authorization": "bearer tok"}
    assert credentials_from(lower) == Credentials("eu1", "tok")
    # X-API-Key wins over Authorization when both are sent
    both = {"X-Server-ID": "eu1", "X-API-Key": "a", "Authorization": "Bearer b"}
    assert credentials_from(both) == Credentials("eu1", "a")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Server-ID": "eu1"},
        {"X-API-Key": "k"},
        {"X-Server-ID": "eu1", "Authorization": "Basic Zm9vOmJhcg=="},
        {"X-Server-ID": "eu1", "Authorization": "Bearer "},
        {"X-Server-ID": "", "X-API-Key": "k"},
        {"X-Server-ID": "eu1", "X-API-Key": "k" * (MAX_KEY_LENGTH + 1)},
        {"X-Server-ID": "e" * 65, "X-API-Key": "k"},
    ],
)
def test_incomplete_credentials(headers: dict[str, str]) -> None:
    assert credentials_from(headers) is None


def test_the_key_is_not_in_the_repr() -> None:
    creds = Credentials("eu1", "s3cr3t-key")
    assert "s3cr3t-key" not in repr(creds) and "eu1" in repr(creds)


async def test_authenticate_against_the_database(pool: asyncpg.Pool) -> None:
    registry = api_registry()
    keys = await install_keys(pool, registry)
    assert await authenticate(pool, Credentials("eu1", keys["eu1"]), registry)
    assert not await authenticate(pool, Credentials("eu1", keys["eu2"]), registry)
    assert not await authenticate(pool, Credentials("nosuch", keys["eu1"]), registry)
    assert not await authenticate(pool, Credentials("off1", keys["off1"]), registry)
    assert not await authenticate(pool, Credentials("nokey", "anything"), registry)


async def test_disabled_in_the_registry_or_the_table(pool: asyncpg.Pool) -> None:
    registry = api_registry()
    keys = await install_keys(pool, registry)
    # servers.json says disabled, though the row (not yet synced) still says enabled
    off = ServerRegistry([ServerConfig("eu1", "EU1", False, TZ, None)])
    assert not await authenticate(pool, Credentials("eu1", keys["eu1"]), off)
    # a server known only to the database (no registry entry) follows servers.enabled
    assert await authenticate(pool, Credentials("eu2", keys["eu2"]), ServerRegistry())
    await pool.execute("UPDATE servers SET enabled = false WHERE id = 'eu2'")
    assert not await authenticate(pool, Credentials("eu2", keys["eu2"]), None)


async def test_key_sql(pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO servers (id, name) VALUES ('eu1', 'EU1')")
    async with pool.acquire() as conn:
        assert await api_keys.server_exists(conn, "eu1")
        assert not await api_keys.server_exists(conn, "nosuch")
        assert not await api_keys.revoke(conn, "eu1")
        assert not await api_keys.rotate(conn, "nosuch", "h")
        assert await api_keys.create(conn, "eu1", "h1")
        assert not await api_keys.create(conn, "eu1", "h2")  # create never overwrites
        assert (await api_keys.auth_row(conn, "eu1"))["api_key_hash"] == "h1"
        assert await api_keys.rotate(conn, "eu1", "h3")
        assert (await api_keys.auth_row(conn, "eu1"))["api_key_hash"] == "h3"
        assert await api_keys.revoke(conn, "eu1")
        assert (await api_keys.auth_row(conn, "eu1"))["api_key_hash"] is None
        assert not await api_keys.rotate(conn, "eu1", "h4")  # no previous key...
        assert (await api_keys.auth_row(conn, "eu1"))["api_key_hash"] == "h4"  # ...but set
        assert await api_keys.auth_row(conn, "nosuch") is None
