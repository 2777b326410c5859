"""The website's read-only role: reads everything, now and later, writes nothing."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import ssl
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.cli import EXIT_OK, EXIT_USAGE
from bot.cli_ops import cmd_db_readonly_role
from bot.config import Settings
from bot.db.migrate import migrate
from bot.db.pool import open_database
from bot.db.roles import RoleError, ensure_readonly_role, scram_verifier
from bot.importer import Importer
from tests.conftest import FIXTURES
from tests.ops.pg_tls import TlsCluster
from tests.ops.test_tls_database import tls_settings

PASSWORD = "correct horse battery staple"
BOT_PASSWORD = "bot-password-on-the-vps"
STATS = FIXTURES / "stats" / "multi" / "stats"
WRITES = (
    "INSERT INTO servers (id, name) VALUES ('zz9', 'x')",
    "UPDATE rounds SET map_name = 'x'",
    "DELETE FROM rounds",
    "TRUNCATE rounds CASCADE",
)


def as_user(dsn: str, user: str) -> str:
    """The same database DSN with another user name (the test server trusts local users)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def drop_role(conn: asyncpg.Connection, role: str) -> None:
    # Roles are cluster-wide: remove the grants in this database, then the role itself.
    await conn.execute(await conn.fetchval("SELECT format('DROP OWNED BY %I', $1::text)", role))
    await conn.execute(await conn.fetchval("SELECT format('DROP ROLE %I', $1::text)", role))


@pytest.fixture
async def role(pool: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"web_ro_{uuid.uuid4().hex[:8]}"
    yield name
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", name):
            await drop_role(conn, name)


async def import_rounds(pool: asyncpg.Pool) -> int:
    importer = Importer(pool, timezone_for=lambda _sid: ZoneInfo("Europe/Ljubljana"))
    for path in sorted(STATS.iterdir()):
        await importer.import_file(path.name.split("-")[0], path.name, path.read_bytes())
    return await pool.fetchval("SELECT count(*) FROM rounds")


async def test_role_reads_every_table_now_and_later_and_writes_nothing(
    pool: asyncpg.Pool, db_dsn: str, role: str
) -> None:
    stored = await import_rounds(pool)
    async with pool.acquire() as conn:
        result = await ensure_readonly_role(conn, role, PASSWORD)
        await conn.execute(
            "CREATE TABLE website_later (x integer); INSERT INTO website_later VALUES (7)"
        )
    assert result.created and result.tables >= 8 and result.owner == "postgres"
    web = await asyncpg.connect(as_user(db_dsn, role))
    try:
        assert stored > 0 and await web.fetchval("SELECT count(*) FROM rounds") == stored
        assert await web.fetchval("SELECT x FROM website_later") == 7  # created after the grant
        for sql in WRITES:  # sessions start read-only ...
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await web.execute(sql)
        await web.execute("SET default_transaction_read_only = off")
        for sql in WRITES:  # ... and without that guard there are no rights to write
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await web.execute(sql)
    finally:
        await web.close()
    assert await pool.fetchval("SELECT count(*) FROM rounds") == stored


async def test_running_again_updates_and_takes_back_extra_rights(
    pool: asyncpg.Pool, role: str
) -> None:
    async with pool.acquire() as conn:
        await ensure_readonly_role(conn, role, PASSWORD)
        await conn.execute(f'GRANT INSERT, UPDATE ON rounds TO "{role}"')
        again = await ensure_readonly_role(conn, role, PASSWORD + "!")
        rights = await conn.fetchrow(
            "SELECT has_table_privilege($1, 'rounds', 'INSERT') AS ins,"
            " has_table_privilege($1, 'rounds', 'UPDATE') AS upd,"
            " has_table_privilege($1, 'rounds', 'SELECT') AS sel",
            role,
        )
    assert again.created is False
    assert (rights["ins"], rights["upd"], rights["sel"]) == (False, False, True)


async def test_names_are_quoted_by_the_server(pool: asyncpg.Pool) -> None:
    hostile = 'web "ro"; DROP TABLE rounds; --'
    async with pool.acquire() as conn:
        try:
            await ensure_readonly_role(conn, hostile, PASSWORD)
            assert await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", hostile)
            assert await conn.fetchval(
                "SELECT has_table_privilege($1, 'rounds', 'SELECT')", hostile
            )
            assert await conn.fetchval("SELECT to_regclass('rounds') IS NOT NULL")
        finally:
            await drop_role(conn, hostile)


async def test_refuses_the_bots_own_role_and_powerful_roles(pool: asyncpg.Pool, role: str) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RoleError, match="the bot's own or a built-in role"):
            await ensure_readonly_role(conn, "postgres", PASSWORD)
        await conn.execute(f'CREATE ROLE "{role}" LOGIN CREATEROLE')
        with pytest.raises(RoleError, match="exists with createrole"):
            await ensure_readonly_role(conn, role, PASSWORD)
        with pytest.raises(RoleError, match="at least 12"):
            await ensure_readonly_role(conn, role + "x", "short")
        assert not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role + "x")


async def test_scram_verifier_matches_postgresql(pool: asyncpg.Pool, role: str) -> None:
    """PostgreSQL hashes a clear password itself; the same salt must give the same verifier."""
    async with pool.acquire() as conn:
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        await conn.execute(f"CREATE ROLE \"{role}\" PASSWORD '{PASSWORD}'")
        stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    salt_b64 = stored.split("$")[1].split(":")[1]
    assert scram_verifier(PASSWORD, salt=base64.b64decode(salt_b64)) == stored


def role_args(name: str, password_env: str = "WEB_RO_PASSWORD") -> argparse.Namespace:
    return argparse.Namespace(name=name, password_env=password_env, schema="public", owner=None)


async def vps_database(cluster: TlsCluster) -> Settings:
    """As on a VPS: the bot's own non-superuser role owns its database and migrated it."""
    admin = tls_settings(cluster, "verify-full", root_cert=cluster.ca_cert)
    async with open_database(admin) as pool:
        await pool.execute(f"CREATE ROLE etlstats LOGIN PASSWORD '{BOT_PASSWORD}'")
        await pool.execute("CREATE DATABASE etlstats OWNER etlstats")
    bot = tls_settings(
        cluster,
        "verify-full",
        root_cert=cluster.ca_cert,
        login=("etlstats", BOT_PASSWORD),
        database="etlstats",
    )
    async with open_database(bot) as pool:
        await migrate(pool)
        await import_rounds(pool)
    return bot


async def test_verb_run_by_the_admin_makes_a_website_role_on_a_tls_server(
    tls_cluster: TlsCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = await vps_database(tls_cluster)
    admin = dataclasses.replace(
        bot, postgres_user="postgres", postgres_password=tls_cluster.password
    )
    monkeypatch.setenv("WEB_RO_PASSWORD", PASSWORD)
    assert await cmd_db_readonly_role(role_args("website"), admin) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.startswith("read-only role 'website' created: SELECT on ")
    assert "tables 'etlstats' creates there later; no write rights" in out
    assert PASSWORD not in out + err
    async with open_database(bot) as pool:  # the bot adds a table after the grant
        await pool.execute(
            "CREATE TABLE later_table (x integer); INSERT INTO later_table VALUES (3)"
        )
        stored = await pool.fetchval("SELECT count(*) FROM rounds")
    ctx = ssl.create_default_context(cafile=str(tls_cluster.ca_cert))
    dsn = f"postgresql://website@localhost:{tls_cluster.port}/etlstats"
    web = await asyncpg.connect(dsn, password=PASSWORD, ssl=ctx)  # the SCRAM verifier works
    try:
        assert await web.fetchval("SELECT count(*) FROM rounds") == stored > 0
        assert await web.fetchval("SELECT x FROM later_table") == 3
        assert await web.fetchval("SHOW default_transaction_read_only") == "on"
        await web.execute("SET default_transaction_read_only = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await web.execute("DELETE FROM later_table")
    finally:
        await web.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, password=PASSWORD + "x", ssl=ctx)


async def test_verb_wants_the_password_in_the_environment(
    tls_cluster: TlsCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tls_settings(tls_cluster, "require")
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    rc = await cmd_db_readonly_role(role_args("web2", "NO_SUCH_PASSWORD_VAR"), settings)
    assert rc == EXIT_USAGE
    err = capsys.readouterr().err
    assert "NO_SUCH_PASSWORD_VAR" in err and "never taken from the command line" in err
