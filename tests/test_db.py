"""The database layer: migrations, connection settings, the embedded default."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import asyncpg
import pytest

from bot.config import load_settings
from bot.db.migrate import MigrationError, load_migrations, migrate
from bot.db.pool import (
    DatabaseUnavailable,
    build_dsn,
    build_ssl,
    create_pool,
    open_database,
    ssl_argument,
)


async def test_concurrent_migrations_apply_each_file_once(db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_b.sql").write_text("INSERT INTO a VALUES (1);")
    admin = await asyncpg.connect(db_dsn)
    await admin.execute("CREATE SCHEMA m")  # the test database already has the real schema
    await admin.close()
    pools = [
        await asyncpg.create_pool(
            db_dsn, min_size=1, max_size=1, server_settings={"search_path": "m"}
        )
        for _ in range(4)
    ]
    try:
        applied = await asyncio.gather(*(migrate(p, tmp_path) for p in pools))
        assert sorted(len(a) for a in applied) == [0, 0, 0, 2]
        assert await pools[0].fetchval("SELECT count(*) FROM a") == 1
        versions = await pools[0].fetch("SELECT version FROM m.schema_migrations ORDER BY 1")
        assert [r["version"] for r in versions] == [1, 2]
    finally:
        for p in pools:
            await p.close()


async def test_a_changed_applied_migration_is_an_error(pool: asyncpg.Pool, tmp_path: Path) -> None:
    real = load_migrations()
    for m in real:
        (tmp_path / m.name).write_text(m.sql)
    assert await migrate(pool, tmp_path) == []  # the template already has them
    first = tmp_path / real[0].name
    first.write_text(real[0].sql + "\n-- edited\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate(pool, tmp_path)


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1-init.sql").write_text("")
    with pytest.raises(MigrationError, match="NNN_snake_case"):
        load_migrations(tmp_path)


def test_dsn_from_parts_quotes_credentials() -> None:
    settings = load_settings(
        {
            "POSTGRES_HOST": "db.lan",
            "POSTGRES_USER": "bot",
            "POSTGRES_PASSWORD": "p@ss:w/rd",
            "POSTGRES_DB": "etl",
        },
        dotenv_path=None,
    )
    assert build_dsn(settings) == "postgresql://bot:p%40ss%3Aw%2Frd@db.lan:5432/etl"
    assert not settings.use_embedded_db


def test_ssl_modes_map_to_contexts(tmp_path: Path) -> None:
    assert build_ssl("disable", None) is False
    require = build_ssl("require", None)
    assert isinstance(require, ssl.SSLContext) and require.verify_mode == ssl.CERT_NONE
    full = build_ssl("verify-full", None)
    assert isinstance(full, ssl.SSLContext)
    assert full.check_hostname and full.verify_mode == ssl.CERT_REQUIRED
    ca = build_ssl("verify-ca", None)
    assert isinstance(ca, ssl.SSLContext)
    assert not ca.check_hostname and ca.verify_mode == ssl.CERT_REQUIRED


async def test_unreachable_database_raises_one_line_without_password() -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        await create_pool("postgresql://bot:hunter2@127.0.0.1:1/x")
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message and "bot:***@" in message


async def test_embedded_database_starts_and_stops(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "data")}, dotenv_path=None)
    assert settings.use_embedded_db
    async with open_database(settings) as pool:
        assert await migrate(pool)  # a brand-new cluster gets every migration
        assert await pool.fetchval("SELECT count(*) FROM rounds") == 0
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").is_file()
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()  # stopped


def test_sslmode_in_the_url_is_never_overridden_by_a_default_disable() -> None:
    url = "postgresql://bot@db.example/etl?sslmode=verify-full"
    assert ssl_argument(url, "disable", None) is None  # asyncpg applies the URL's sslmode
    assert ssl_argument("postgresql://bot@db/etl", "disable", None) is False
    explicit = ssl_argument(url, "require", None)
    assert isinstance(explicit, ssl.SSLContext)  # POSTGRES_SSL_MODE set: it decides
