"""Numbered SQL migrations, each in its own transaction, recorded with a checksum."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Any constant works; it only has to be the same for every process of this app.
MIGRATION_LOCK_KEY = 0x45544C5354  # "ETLST"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """A migration cannot be applied or an applied one was changed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to run concurrently."""
    migrations = load_migrations(directory)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = {
                r["version"]: r
                for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            }
            return [m.name for m in migrations if await _apply(conn, m, applied.get(m.version))]
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _apply(conn: asyncpg.Connection, m: Migration, applied: asyncpg.Record | None) -> bool:
    if applied is not None:
        if applied["checksum"] != m.checksum:
            raise MigrationError(
                f"migration {m.name} was changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )
        return False
    async with conn.transaction():
        await conn.execute(m.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            m.version,
            m.name,
            m.checksum,
        )
    log.info("applied migration %s", m.name)
    return True
