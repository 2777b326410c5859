"""`python -m bot last-session [--server ID]`: the `!last_session` summary as plain text.

For operators on the LAN box over SSH: the same numbers and wording as the Discord embeds
(bot.discord_ui.text), in the wide terminal layout, with the top player of every map.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli import EXIT_OK, EXIT_USAGE, open_context
from bot.config import Settings
from bot.db import sessions_query as sq
from bot.discord_ui.text import session_summary_text


async def cmd_last_session(args: argparse.Namespace, settings: Settings) -> int:
    server_id = args.server.lower() if args.server else None
    async with open_context(settings) as ctx, ctx.pool.acquire() as conn:
        if server_id is not None:
            stored = [r["id"] for r in await conn.fetch("SELECT id FROM servers ORDER BY id")]
            known = list(dict.fromkeys([*ctx.registry.ids, *stored]))
            if server_id not in known:
                listed = ", ".join(known) or "none yet"
                print(f"error: unknown server {server_id!r} (known: {listed})", file=sys.stderr)
                return EXIT_USAGE
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            summary = await sq.load_session_summary(conn, server_id)
            points = await sq.session_player_rounds(conn, summary.info.id) if summary else []
        registry = ctx.registry
    if summary is None:
        where = f" on {server_id}" if server_id else ""
        print(f"No sessions yet{where}: nothing has been recorded.")
        return EXIT_OK
    sid = summary.info.server_id
    tz = registry.get(sid).timezone if sid in registry else settings.default_zone
    sys.stdout.write(session_summary_text(summary, tz, points))
    return EXIT_OK
