"""SQL for bot_state: small durable facts such as the last control message handled."""

from __future__ import annotations

import asyncpg


async def get_int(conn: asyncpg.Connection, key: str) -> int | None:
    value = await conn.fetchval("SELECT value FROM bot_state WHERE key = $1", key)
    return int(value) if value is not None else None


async def raise_int(conn: asyncpg.Connection, key: str, value: int) -> None:
    """Store `value` unless a larger one is stored (message ids only move forward)."""
    await conn.execute(
        """INSERT INTO bot_state (key, value) VALUES ($1, $2::bigint::text)
           ON CONFLICT (key) DO UPDATE
           SET value = greatest(bot_state.value::bigint, EXCLUDED.value::bigint)::text,
               updated_at = now()""",
        key,
        value,
    )
