"""`python -m bot api` (the push API alone) and `python -m bot api-key create|rotate|revoke`."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.api.app import make_app, serve_api
from bot.api.auth import generate_key, hash_key
from bot.api.metrics import Metrics
from bot.cli import EXIT_OK, EXIT_OPERATIONAL, open_context
from bot.config import Settings
from bot.db import api_keys
from bot.ingest.runtime import IngestRuntime

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `api` and `api-key` verbs to the CLI's sub-parsers."""
    api = sub.add_parser(
        "api", help="serve the push API alone (no pollers, no Discord); scale out behind a proxy"
    )
    api.add_argument("--host", help="listen address (default API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=int, help="listen port (default API_PORT, 8080)")
    api.set_defaults(func=cmd_api)
    key = sub.add_parser("api-key", help="create, rotate or revoke a server's push-API key")
    key.add_argument("action", choices=("create", "rotate", "revoke"))
    key.add_argument("server_id")
    key.set_defaults(func=cmd_api_key)


async def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runner import stop_event  # the long-running parts are only imported here

    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    async with open_context(settings) as ctx:
        # Pollers off: this process only takes uploads. The NOTIFY sent in each import
        # transaction tells the bot's publisher, wherever it runs.
        runtime = IngestRuntime(settings, ctx.registry, ctx.pool)
        await runtime.start(pollers=False)
        try:
            app = make_app(runtime, ctx.pool, settings, ctx.registry, Metrics())
            async with serve_api(app, host, port):
                await stop_event().wait()
                log.info("stopping the push API")
        finally:
            await runtime.close()
    return EXIT_OK


async def cmd_api_key(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new key ONCE on stdout (alone, for `KEY=$(...)`); store only its hash."""
    sid: str = args.server_id
    async with open_context(settings) as ctx, ctx.pool.acquire() as conn:
        if not await api_keys.server_exists(conn, sid):
            known = ", ".join(ctx.registry.ids) or "none in servers.json"
            print(f"error: unknown server {sid!r} (known: {known})", file=sys.stderr)
            return EXIT_OPERATIONAL
        if args.action == "revoke":
            had = await api_keys.revoke(conn, sid)
            print(f"{sid}: API key revoked" if had else f"{sid}: had no API key", file=sys.stderr)
            return EXIT_OK
        key = generate_key()
        if args.action == "create":
            if not await api_keys.create(conn, sid, hash_key(key)):
                print(
                    f"error: server {sid!r} already has an API key; "
                    f"use `python -m bot api-key rotate {sid}` to replace it",
                    file=sys.stderr,
                )
                return EXIT_OPERATIONAL
            note = "created"
        else:
            had = await api_keys.rotate(conn, sid, hash_key(key))
            note = "rotated: the old key no longer works" if had else "created (there was none)"
    print(f"{sid}: API key {note}. It is shown once; store it on the game server:", file=sys.stderr)
    print(key)
    return EXIT_OK
