"""SQL for push-API keys: only the SHA-256 hex of a key is ever stored (servers.api_key_hash)."""

from __future__ import annotations

import asyncpg


async def auth_row(conn: asyncpg.Connection, server_id: str) -> asyncpg.Record | None:
    """(enabled, api_key_hash) of a server, None when there is no such server."""
    return await conn.fetchrow(
        "SELECT enabled, api_key_hash FROM servers WHERE id = $1",
        server_id,
    )


async def server_exists(conn: asyncpg.Connection, server_id: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM servers WHERE id = $1)", server_id)
    )


async def create(conn: asyncpg.Connection, server_id: str, key_hash: str) -> bool:
    """Store the hash when the server has no key yet; False when it already has one."""
    row = await conn.fetchrow(
        """UPDATE servers SET api_key_hash = $2
           WHERE id = $1 AND api_key_hash IS NULL RETURNING id""",
        server_id,
        key_hash,
    )
    return row is not None


async def rotate(conn: asyncpg.Connection, server_id: str, key_hash: str) -> bool:
    """Replace the hash (the old key stops working at commit); True when a key existed."""
    # The sub-select reads the row before this UPDATE changes it.
    return bool(
        await conn.fetchval(
            """UPDATE servers s SET api_key_hash = $2
               FROM (SELECT api_key_hash AS old FROM servers WHERE id = $1 FOR UPDATE) o
               WHERE s.id = $1 RETURNING o.old IS NOT NULL""",
            server_id,
            key_hash,
        )
    )


async def revoke(conn: asyncpg.Connection, server_id: str) -> bool:
    """Clear the hash; True when there was one."""
    row = await conn.fetchrow(
        """UPDATE servers SET api_key_hash = NULL
           WHERE id = $1 AND api_key_hash IS NOT NULL RETURNING id""",
        server_id,
    )
    return row is not None
