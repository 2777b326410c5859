"""Shared bench plumbing: a PostgreSQL to measure against."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@contextmanager
def bench_database() -> Iterator[str]:
    """DATABASE_URL / TEST_DATABASE_URL when set, else a throwaway embedded server."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


async def fresh_database(url: str, name: str) -> str:
    """Drop and recreate database `name` on the server of `url`; return its DSN."""
    parts = urlsplit(url)
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
