"""SQL for the servers table: registry sync and per-server health."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg


async def ensure_server(conn: asyncpg.Connection, server_id: str, name: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO servers (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        server_id,
        name or server_id,
    )


async def sync_registry(conn: asyncpg.Connection, servers: Iterable[tuple[str, str, bool]]) -> None:
    """Upsert (id, name, enabled) for every configured server."""
    await conn.executemany(
        """INSERT INTO servers (id, name, enabled) VALUES ($1, $2, $3)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, enabled = EXCLUDED.enabled""",
        list(servers),
    )


async def note_error(conn: asyncpg.Connection, server_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE servers SET last_error = $2, last_error_at = now() WHERE id = $1",
        server_id,
        error[:500],
    )


async def note_contact(conn: asyncpg.Connection, server_id: str) -> None:
    await conn.execute("UPDATE servers SET last_seen = now() WHERE id = $1", server_id)
