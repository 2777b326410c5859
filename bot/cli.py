"""`python -m bot <verb>`: the command line. Errors are one readable line, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bot.bulk_import import collect_jobs, run_jobs
from bot.config import ConfigError, Settings, load_settings
from bot.db import servers as servers_db
from bot.db.export import export_rounds
from bot.db.migrate import MigrationError, migrate
from bot.db.pool import DatabaseUnavailable, open_database
from bot.importer import Importer, make_importer
from bot.logging_setup import setup_logging
from bot.registry import ServerRegistry, load_registry
from bot.stats import (
    StatsFileError,
    parse_endstats_file,
    parse_stats_file,
    round2_only,
    round_to_json,
)
from bot.stats.jsonout import endstats_to_json

log = logging.getLogger(__name__)

EXIT_OK, EXIT_OPERATIONAL, EXIT_USAGE = 0, 1, 2


@dataclass(slots=True)
class Context:
    settings: Settings
    registry: ServerRegistry
    pool: asyncpg.Pool

    def importer(self) -> Importer:
        return make_importer(self.pool, self.settings, self.registry)


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[Context]:
    """Registry + migrated database with the registry's servers synced."""
    registry = load_registry(settings)
    async with open_database(settings) as pool:
        await migrate(pool)
        async with pool.acquire() as conn:
            await servers_db.sync_registry(
                conn, [(s.server_id, s.server_name, s.enabled) for s in registry]
            )
        yield Context(settings, registry, pool)


# --- verbs -----------------------------------------------------------------


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings) as pool:
        applied = await migrate(pool)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return EXIT_OK


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    jobs = collect_jobs([Path(p) for p in args.paths], args.server)
    async with open_context(settings) as ctx:
        bar = _progress_bar(len(jobs))
        summary = await run_jobs(ctx.importer(), jobs, progress=bar.update if bar else None)
        if bar:
            bar.close()
    print(summary.line())
    return EXIT_OK


def _progress_bar(total: int):
    if not sys.stderr.isatty() or total < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr)


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    """Pure parsing: no database, so no event loop either."""
    path = Path(args.file)
    data = path.read_bytes()
    if path.name.endswith("-endstats.txt"):
        out = endstats_to_json(parse_endstats_file(data, path.name))
    else:
        rnd = parse_stats_file(data, path.name)
        if args.r1:
            r1_path = Path(args.r1)
            rnd = round2_only(rnd, parse_stats_file(r1_path.read_bytes(), r1_path.name))
        out = round_to_json(rnd)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return EXIT_OK


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    async with open_context(settings) as ctx:
        async for item in export_rounds(ctx.pool, args.server):
            print(json.dumps(item, ensure_ascii=False))
    return EXIT_OK


async def cmd_servers(args: argparse.Namespace, settings: Settings) -> int:
    registry = load_registry(settings)
    if not len(registry):
        print(f"no servers configured (looked for {settings.servers_config_file})")
        return EXIT_OK
    for s in registry:
        where = (
            f"sftp {s.ssh.user}@{s.ssh.host}:{s.ssh.port}{s.ssh.remote_stats_path}"
            if s.ssh
            else "push-only"
        )
        state = "enabled" if s.enabled else "disabled"
        print(
            f"{s.server_id:<12} {s.server_name:<28} {state:<8} {s.timezone.key:<20} {where}"
            f"  webhooks={len(s.trigger_webhook_ids)}"
        )
    return EXIT_OK


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import runner  # the long-running parts are only imported here

    if args.headless:
        return await runner.run_headless(settings)
    if not settings.discord_token:
        print(
            "error: DISCORD_TOKEN is not set; set it in .env, or run with --headless to "
            "collect and store rounds without Discord (posts go to the log)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return await runner.run_discord(settings)


# --- parser and entry point -------------------------------------------------

Verb = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run the bot (pollers, webhook listener, posts)")
    run.add_argument(
        "--headless", action="store_true", help="no Discord: ingest, store, log the posts"
    )
    run.set_defaults(func=cmd_run)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    imp = sub.add_parser("import", help="import stats files or directories (recursive)")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--server", help="server id for legacy file names (no prefix)")
    imp.set_defaults(func=cmd_import)
    prs = sub.add_parser("parse", help="print one file as round JSON")
    prs.add_argument("file")
    prs.add_argument("--r1", help="the Round 1 file: print Round-2-only values")
    prs.set_defaults(func=cmd_parse)
    exp = sub.add_parser("export", help="print every stored round as one JSON per line")
    exp.add_argument("--server")
    exp.set_defaults(func=cmd_export)
    from bot.cli_present import cmd_last_session  # here: bot.cli_present imports bot.cli

    last = sub.add_parser("last-session", help="print the latest gaming session as text")
    last.add_argument("--server", help="only this server id (default: the latest of all)")
    last.set_defaults(func=cmd_last_session)
    sub.add_parser("servers", help="list the configured servers").set_defaults(func=cmd_servers)
    from bot.cli_ingest import cmd_poll  # here, not at the top: bot.cli_ingest imports bot.cli

    pol = sub.add_parser("poll", help="poll the game servers' stats directories over SFTP")
    pol.add_argument("--once", action="store_true", help="one cycle, print a line per server")
    pol.add_argument("--server", help="only this server id")
    pol.set_defaults(func=cmd_poll)
    from bot.devtools.demo import add_demo_verb  # here: bot.devtools.demo imports bot.cli

    add_demo_verb(sub)  # demo
    from bot.cli_ops import add_ops_verbs  # here: bot.cli_ops imports bot.cli

    add_ops_verbs(sub)  # systemd-unit, db-readonly-role
    from bot.cli_api import register as add_api_verbs  # here: bot.cli_api imports bot.cli

    add_api_verbs(sub)  # api, api-key
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings)
        result = args.func(args, settings)
        return asyncio.run(result) if inspect.isawaitable(result) else result
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatabaseUnavailable, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_OPERATIONAL
    except StatsFileError as exc:
        print(f"error: {args_file(args)}: {exc.reason}", file=sys.stderr)
        return EXIT_OPERATIONAL
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_OPERATIONAL
    except KeyboardInterrupt:
        return 130


def args_file(args: argparse.Namespace) -> str:
    return getattr(args, "file", "") or ""
