"""`python -m bot poll [--once] [--server ID]`: the SFTP pollers from the command line.

--once runs one cycle over every enabled SSH server (or one) and prints a line per server;
without it the pollers run on their schedule until interrupted (no webhook listener runs
here, so every failover machine stays in polling mode).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.cli import EXIT_OK, EXIT_OPERATIONAL, EXIT_USAGE, open_context
from bot.config import Settings
from bot.ingest.poller import PollSummary
from bot.ingest.runtime import IngestRuntime
from bot.ingest.sftp import check_host_keys
from bot.registry import ServerRegistry, load_registry


def _targets(registry: ServerRegistry, only: str | None) -> list[str] | str:
    """The server ids to poll, or one line saying why that cannot be done."""
    if only is None:
        ids = [s.server_id for s in registry.pollable()]
        return ids or "no enabled server with SSH settings to poll"
    if only not in registry:
        known = ", ".join(registry.ids) or "none configured"
        return f"unknown server {only!r} (known: {known})"
    if not registry.get(only).pollable:
        return f"server {only!r} is disabled or has no SSH settings"
    return [only]


def format_summary(s: PollSummary) -> str:
    line = (
        f"{s.server_id:<12} files {s.files_seen:>4}  new {s.new:>3}  imported {s.imported:>3}  "
        f"errors {s.errors:>2}  {s.seconds:6.2f} s"
    )
    return f"{line}  error: {s.error}" if s.error else line


async def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    registry = load_registry(settings)
    targets = _targets(registry, args.server)
    if isinstance(targets, str):
        print(f"error: {targets}", file=sys.stderr)
        return EXIT_USAGE
    problems = check_host_keys(registry.get(sid) for sid in targets)
    if problems:
        print(f"error: host key problems: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_USAGE
    if not args.once:
        return await _run_forever(settings)
    async with open_context(settings) as ctx:
        runtime = IngestRuntime(settings, ctx.registry, ctx.pool)
        try:
            await runtime.prepare()
            summaries = await runtime.poller.poll_once(targets)
        finally:
            await runtime.close()
    for summary in summaries:
        print(format_summary(summary))
    failed = any(s.error or s.errors for s in summaries)
    return EXIT_OPERATIONAL if failed else EXIT_OK


async def _run_forever(settings: Settings) -> int:
    async with open_context(settings) as ctx:
        runtime = IngestRuntime(settings, ctx.registry, ctx.pool)
        try:
            await runtime.start()
            await asyncio.Event().wait()  # until Ctrl-C cancels us
        finally:
            await runtime.close()
    return EXIT_OK
