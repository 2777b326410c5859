"""A read-only LOGIN role for a website that shows the stats straight from PostgreSQL.

DDL cannot take $1 parameters, so every statement is built by PostgreSQL itself with
format('%I' / '%L') from parameters: names and literals are quoted by the server's own rules,
never by string concatenation here.

The password never reaches the server in clear: a SCRAM-SHA-256 verifier is computed here
(what libpq's PQencryptPasswordConn does) and stored as the role's password, so neither
server logs (log_statement=ddl) nor pg_stat_activity can show it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

import asyncpg

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
MIN_PASSWORD_LENGTH = 12
_ATTRIBUTES_REFUSED = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")


class RoleError(Exception):
    """The role cannot be made read-only as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class RoleResult:
    role: str
    created: bool
    schema: str
    tables: int
    owner: str


def check_password(password: str) -> None:
    """Printable ASCII only: SASLprep (which clients apply) leaves it unchanged."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RoleError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not all(" " <= ch <= "~" for ch in password):
        raise RoleError("the password must be printable ASCII (letters, digits, punctuation)")


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def _ddl(conn: asyncpg.Connection, template: str, *values: str) -> None:
    """Execute `template` after PostgreSQL's format() quoted `values` into it."""
    sql = await conn.fetchval("SELECT format($1, VARIADIC $2::text[])", template, list(values))
    await conn.execute(sql)


async def _check_target(conn: asyncpg.Connection, role: str, owner: str) -> bool:
    """True when the role exists; refuses roles that must not be turned into this one."""
    own = {await conn.fetchval("SELECT current_user"), owner, "postgres"}
    if role in own or role.startswith("pg_"):
        raise RoleError(f"refusing to use {role!r}: it is the bot's own or a built-in role")
    row = await conn.fetchrow(
        f"SELECT {', '.join(_ATTRIBUTES_REFUSED)} FROM pg_roles WHERE rolname = $1", role
    )
    if row is None:
        return False
    powers = [name.removeprefix("rol") for name in _ATTRIBUTES_REFUSED if row[name]]
    if powers:
        raise RoleError(f"role {role!r} exists with {', '.join(powers)}: not a read-only role")
    return True


async def table_owner(conn: asyncpg.Connection, schema: str) -> str:
    """Who creates the bot's tables: the owner of schema_migrations (the role that ran the
    migrations), else the connected user (a database not migrated yet)."""
    owner = await conn.fetchval(
        "SELECT tableowner FROM pg_tables"
        " WHERE schemaname = $1 AND tablename = 'schema_migrations'",
        schema,
    )
    return owner or await conn.fetchval("SELECT current_user")


async def ensure_readonly_role(
    conn: asyncpg.Connection,
    role: str,
    password: str,
    *,
    schema: str = "public",
    owner: str | None = None,
) -> RoleResult:
    """Create or update `role`: LOGIN, SELECT on every table of `schema`, now and later.

    "Later" means tables that `owner` creates afterwards (default privileges belong to the
    role creating the objects): by default the role that ran the migrations, so this works
    when run as the bot's user or as a superuser. Any other right on the tables is revoked.
    """
    check_password(password)
    if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
        raise RoleError(f"schema {schema!r} does not exist")
    owner = owner or await table_owner(conn, schema)
    async with conn.transaction():
        existed = await _check_target(conn, role, owner)
        verb = "ALTER" if existed else "CREATE"
        await _ddl(conn, verb + " ROLE %I WITH LOGIN PASSWORD %L", role, scram_verifier(password))
        await _ddl(conn, "GRANT CONNECT ON DATABASE %I TO %I", await _database(conn), role)
        await _ddl(conn, "GRANT USAGE ON SCHEMA %I TO %I", schema, role)
        await _ddl(conn, "REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I", schema, role)
        await _ddl(conn, "GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I", schema, role)
        await _ddl(
            conn,
            "ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I",
            owner,
            schema,
            role,
        )
        # A second guard: the role's sessions start read-only.
        await _ddl(conn, "ALTER ROLE %I SET default_transaction_read_only = on", role)
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema)
    return RoleResult(role, not existed, schema, tables, owner)


async def _database(conn: asyncpg.Connection) -> str:
    return await conn.fetchval("SELECT current_database()")
