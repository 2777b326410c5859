"""Operations verbs: `systemd-unit` (print the service unit) and `db-readonly-role`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bot.cli import EXIT_OK, EXIT_OPERATIONAL, EXIT_USAGE
from bot.config import ConfigError, Settings
from bot.db.pool import open_database
from bot.db.roles import RoleError, ensure_readonly_role

REPO_ROOT = Path(__file__).resolve().parents[1]
UNIT_TEMPLATE = REPO_ROOT / "deploy" / "etl-stats-bot.service.in"
DEFAULT_SERVICE = "etl-stats-bot"
DEFAULT_USER = "etlstats"
DEFAULT_PASSWORD_ENV = "READONLY_ROLE_PASSWORD"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.-]{0,200}")
# Names that need no quoting in SQL, so the website can write them as they are.
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


# --- systemd-unit --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitParams:
    user: str
    service_name: str
    repo: Path
    python: Path
    read_write_paths: tuple[Path, ...]


def venv_python() -> Path:
    """The interpreter of this virtual environment, as a path inside it (links not resolved:
    the venv's python is a symlink, and only the link path gets the venv's site-packages)."""
    candidate = Path(sys.prefix) / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable).absolute()


def writable_paths(settings: Settings, repo: Path) -> tuple[Path, ...]:
    """DATA_DIR and LOG_FILE's directory, resolved as the service sees them (cwd = repo)."""
    paths = [repo / settings.data_dir]
    if settings.log_file is not None:
        paths.append((repo / settings.log_file).parent)
    unique: list[Path] = []
    for path in (Path(os.path.normpath(p)) for p in paths):
        if not any(path == u or path.is_relative_to(u) for u in unique):
            unique.append(path)
    return tuple(unique)


def _unit_path(path: Path) -> str:
    """A path for a unit file, % doubled (systemd specifiers). Blanks, quotes and backslashes
    would need a different quoting in each of the settings it goes into: refused."""
    text = str(path)
    if any(ch.isspace() or ch in "\"'\\" for ch in text):
        raise ConfigError(
            f"path {text!r} contains blanks, quotes or backslashes; move it to a plain path "
            "for the systemd unit"
        )
    return text.replace("%", "%%")


def render_unit(params: UnitParams, template: Path = UNIT_TEMPLATE) -> str:
    """The unit file text: the template with every @PLACEHOLDER@ filled in."""
    values = {
        "USER": params.user,
        "SERVICE_NAME": params.service_name,
        "REPO": _unit_path(params.repo),
        "ENV_FILE": _unit_path(params.repo / ".env"),
        "PYTHON": _unit_path(params.python),
        "READ_WRITE_PATHS": " ".join(_unit_path(p) for p in params.read_write_paths),
    }
    text = template.read_text(encoding="utf-8")
    unknown = set(_PLACEHOLDER.findall(text)) - values.keys()
    if unknown:
        raise ConfigError(f"{template}: unknown placeholder(s) {', '.join(sorted(unknown))}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def unit_params(args: argparse.Namespace, settings: Settings) -> UnitParams:
    service = str(args.service_name).removesuffix(".service")
    if not _USER_NAME.fullmatch(args.user):
        raise ConfigError(f"--user {args.user!r} is not a valid user name")
    if not _SERVICE_NAME.fullmatch(service):
        raise ConfigError(f"--service-name {args.service_name!r} is not a valid unit name")
    return UnitParams(
        user=args.user,
        service_name=service,
        repo=REPO_ROOT,
        python=venv_python(),
        read_write_paths=writable_paths(settings, REPO_ROOT),
    )


def cmd_systemd_unit(args: argparse.Namespace, settings: Settings) -> int:
    params = unit_params(args, settings)
    sys.stdout.write(render_unit(params))
    # Hints on stderr, so `... > /etc/systemd/system/x.service` gets only the unit.
    for path in params.read_write_paths:
        if not path.is_dir():
            print(
                f"note: create {path} (owned by {params.user}) before starting: "
                "ReadWritePaths= needs it to exist",
                file=sys.stderr,
            )
    if not (params.repo / ".env").is_file():
        print(
            f"note: {params.repo / '.env'} does not exist yet (EnvironmentFile=)", file=sys.stderr
        )
    return EXIT_OK


# --- db-readonly-role ----------------------------------------------------------------


async def cmd_db_readonly_role(args: argparse.Namespace, settings: Settings) -> int:
    if not _ROLE_NAME.fullmatch(args.name):
        raise ConfigError(
            f"role name {args.name!r}: use lower-case letters, digits and _ (at most 63)"
        )
    password = os.environ.get(args.password_env, "")
    if not password:
        print(
            f"error: set the role's password in the environment variable {args.password_env} "
            "(it is never taken from the command line)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    async with open_database(settings) as pool, pool.acquire() as conn:
        try:
            result = await ensure_readonly_role(
                conn, args.name, password, schema=args.schema, owner=args.owner
            )
        except (RoleError, asyncpg.PostgresError) as exc:
            print(f"error: read-only role {args.name!r}: {exc}", file=sys.stderr)
            return EXIT_OPERATIONAL
    print(
        f"read-only role {result.role!r} {'created' if result.created else 'updated'}: "
        f"SELECT on {result.tables} table(s) in schema {result.schema!r}, and on tables "
        f"{result.owner!r} creates there later; no write rights"
    )
    return EXIT_OK


# --- registration (called from bot.cli.build_parser) ------------------------------------


def add_ops_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    unit = sub.add_parser(
        "systemd-unit", help="print the systemd service unit for this checkout and venv"
    )
    unit.add_argument("--user", default=DEFAULT_USER, help=f"service user (default {DEFAULT_USER})")
    unit.add_argument(
        "--service-name", default=DEFAULT_SERVICE, help=f"unit name (default {DEFAULT_SERVICE})"
    )
    unit.set_defaults(func=cmd_systemd_unit)
    role = sub.add_parser(
        "db-readonly-role", help="create/update a read-only LOGIN role (e.g. for a website)"
    )
    role.add_argument("name", help="the role name")
    role.add_argument(
        "--password-env",
        default=DEFAULT_PASSWORD_ENV,
        metavar="VAR",
        help=f"environment variable holding the password (default {DEFAULT_PASSWORD_ENV})",
    )
    role.add_argument("--schema", default="public", help="schema to grant on (default public)")
    role.add_argument(
        "--owner",
        help="role whose future tables become readable (default: who ran the migrations)",
    )
    role.set_defaults(func=cmd_db_readonly_role)
