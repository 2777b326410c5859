"""Settings from the environment (and `.env` via python-dotenv), validated once at startup.

Every field of `Settings` is read from the upper-cased variable of the same name; the field's
metadata holds its parser (see bot.config_parsing). Empty values count as unset, except for
DEAD_HOURS where empty means "no dead hours".
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dotenv import load_dotenv

from bot import config_parsing as p
from bot.config_parsing import DeadHours, Parser

__all__ = ["ConfigError", "DeadHours", "Settings", "load_settings"]


class ConfigError(Exception):
    """Invalid configuration. `problems` holds one readable line per problem."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or (message,)
        lines = [message, *(f"  - {problem}" for problem in problems)]
        super().__init__("\n".join(lines))

    @classmethod
    def collect(cls, what: str, problems: Sequence[str]) -> ConfigError:
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        return cls(f"invalid {what} ({count} {noun}):", problems)


def _hidden(_raw: str) -> str:
    return "a hidden value"


def _redacted_url(raw: str) -> str:
    return repr(p.redact_url(raw))


def _spec(
    parse: Parser = p.text, *, keep_empty: bool = False, show: Callable[[str], str] = repr
) -> dict[str, Any]:
    """Field metadata: read from the upper-cased variable of the field's name with `parse`."""
    return {"parse": parse, "keep_empty": keep_empty, "show": show}


_SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_COUNT = p.integer(1)
_MINUTES = p.integer(1, what="a whole number of minutes")
_MINUTES_OR_0 = p.integer(0, what="a whole number of minutes")
_SECONDS = p.integer(1, what="a whole number of seconds")
_POLL_SECONDS = p.integer(5, what="a whole number of seconds")
_TIMEOUT = p.positive_number("a number of seconds")
_PER_MINUTE = p.integer(1, what="a whole number per minute")


def _default_known_hosts() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


@dataclass(frozen=True, kw_only=True)
class Settings:
    # Database (none of DATABASE_URL / POSTGRES_* set: embedded PostgreSQL in DATA_DIR)
    database_url: str | None = field(
        default=None, repr=False, metadata=_spec(p.postgres_url, show=_redacted_url)
    )
    postgres_host: str | None = field(default=None, metadata=_spec())
    postgres_port: int = field(default=5432, metadata=_spec(p.port))
    postgres_user: str | None = field(default=None, metadata=_spec())
    postgres_password: str | None = field(
        default=None, repr=False, metadata=_spec(p.verbatim, show=_hidden)
    )
    postgres_db: str | None = field(default=None, metadata=_spec())
    postgres_ssl_mode: str = field(default="disable", metadata=_spec(p.choice(*_SSL_MODES)))
    postgres_ssl_root_cert: Path | None = field(default=None, metadata=_spec(p.path))
    postgres_min_pool: int = field(default=1, metadata=_spec(_COUNT))
    postgres_max_pool: int = field(default=10, metadata=_spec(_COUNT))
    data_dir: Path = field(default=Path("data"), metadata=_spec(p.path))
    # Server registry (servers.json, or the legacy single-server SSH_* variables)
    servers_config_file: Path = field(default=Path("servers.json"), metadata=_spec(p.path))
    servers_config_file_explicit: bool = False  # set by load_settings, not an env variable
    default_timezone: str = field(default="Europe/Ljubljana", metadata=_spec(p.timezone_name))
    ssh_host: str | None = field(default=None, metadata=_spec())
    ssh_port: int = field(default=22, metadata=_spec(p.port))
    ssh_user: str | None = field(default=None, metadata=_spec())
    ssh_key_path: Path | None = field(default=None, metadata=_spec(p.path))
    ssh_known_hosts: Path = field(default_factory=_default_known_hosts, metadata=_spec(p.path))
    remote_stats_path: str | None = field(default=None, metadata=_spec())
    ssh_insecure_skip_host_key: bool = field(default=False, metadata=_spec(p.boolean))
    # Import
    round_match_window_minutes: int = field(default=45, metadata=_spec(_MINUTES))
    session_gap_minutes: int = field(default=60, metadata=_spec(_MINUTES))
    max_import_attempts: int = field(default=5, metadata=_spec(_COUNT))
    startup_lookback_hours: int = field(
        default=168, metadata=_spec(p.integer(0, what="a whole number of hours"))
    )
    # SSH / polling
    ssh_max_concurrency_per_host: int = field(default=4, metadata=_spec(_COUNT))
    ssh_connect_timeout: float = field(default=15.0, metadata=_spec(_TIMEOUT))
    ssh_operation_timeout: float = field(default=30.0, metadata=_spec(_TIMEOUT))
    ssh_active_interval: int = field(default=60, metadata=_spec(_POLL_SECONDS))
    ssh_idle_interval: int = field(default=600, metadata=_spec(_POLL_SECONDS))
    ssh_grace_period_minutes: int = field(default=30, metadata=_spec(_MINUTES_OR_0))
    voice_active_min_players: int = field(default=4, metadata=_spec(_COUNT))
    dead_hours: DeadHours | None = field(
        default=DeadHours(2, 11), metadata=_spec(p.dead_hours, keep_empty=True)
    )
    # Webhook trigger / smart failover
    control_channel_id: int | None = field(default=None, metadata=_spec(p.snowflake))
    webhook_trigger_username: str | None = field(default=None, metadata=_spec())
    webhook_rate_limit: int = field(default=5, metadata=_spec(_COUNT))
    webhook_rate_window: int = field(default=60, metadata=_spec(_SECONDS))
    smart_failover_enabled: bool = field(default=True, metadata=_spec(p.boolean))
    webhook_success_threshold: int = field(default=2, metadata=_spec(_COUNT))
    webhook_failure_threshold: int = field(default=1, metadata=_spec(_COUNT))
    webhook_heartbeat_timeout: int = field(default=900, metadata=_spec(_SECONDS))
    failover_safety_sweep_minutes: int = field(default=30, metadata=_spec(_MINUTES_OR_0))
    # Discord
    discord_token: str | None = field(
        default=None, repr=False, metadata=_spec(p.verbatim, show=_hidden)
    )
    command_prefix: str = field(default="!", metadata=_spec())
    stats_channel_id: int | None = field(default=None, metadata=_spec(p.snowflake))
    alert_channel_id: int | None = field(default=None, metadata=_spec(p.snowflake))
    alert_role_id: int | None = field(default=None, metadata=_spec(p.snowflake))
    admin_user_ids: tuple[int, ...] = field(default=(), metadata=_spec(p.id_list))
    admin_role_ids: tuple[int, ...] = field(default=(), metadata=_spec(p.id_list))
    round_autopost_enabled: bool = field(default=True, metadata=_spec(p.boolean))
    posts_per_minute_per_server: int = field(default=5, metadata=_spec(_COUNT))
    # Push API
    api_enabled: bool = field(default=False, metadata=_spec(p.boolean))
    api_host: str = field(default="127.0.0.1", metadata=_spec())
    api_port: int = field(default=8080, metadata=_spec(p.port))
    api_max_body_bytes: int = field(
        default=1_048_576, metadata=_spec(p.integer(1, what="a whole number of bytes"))
    )
    api_rate_limit_per_server: int = field(default=10, metadata=_spec(_PER_MINUTE))
    api_rate_limit_global: int = field(default=100, metadata=_spec(_PER_MINUTE))
    # Logging
    log_level: str = field(default="INFO", metadata=_spec(p.choice(*_LOG_LEVELS, upper=True)))
    log_file: Path | None = field(default=None, metadata=_spec(p.path))

    @property
    def use_embedded_db(self) -> bool:
        """True when no database is configured: run a private PostgreSQL in DATA_DIR."""
        configured = (
            self.database_url,
            self.postgres_host,
            self.postgres_user,
            self.postgres_db,
            self.postgres_password,
        )
        return not any(configured)

    @property
    def default_zone(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)

    def database_url_redacted(self) -> str | None:
        """DATABASE_URL with its password replaced by ***, for log lines (None when unset)."""
        return p.redact_url(self.database_url) if self.database_url else None


def _read_field(spec: dataclasses.Field[Any], env: Mapping[str, str], errors: list[str]) -> Any:
    """The parsed value of one variable, or dataclasses.MISSING (unset, or an error recorded)."""
    name = spec.name.upper()
    raw = env.get(name)
    if raw is None or (not raw.strip() and not spec.metadata["keep_empty"]):
        return dataclasses.MISSING
    try:
        return spec.metadata["parse"](raw)
    except ValueError as exc:
        errors.append(f"{name} must be {exc}, got {spec.metadata['show'](raw)}")
        return dataclasses.MISSING


def _check_pool(s: Settings) -> str | None:
    if s.postgres_max_pool < s.postgres_min_pool:
        return (
            f"POSTGRES_MAX_POOL must be >= POSTGRES_MIN_POOL ({s.postgres_min_pool}), "
            f"got {s.postgres_max_pool}"
        )
    return None


def _check_ssl(s: Settings) -> str | None:
    if s.postgres_ssl_mode in ("verify-ca", "verify-full") and s.postgres_ssl_root_cert is None:
        return (
            f"POSTGRES_SSL_ROOT_CERT must be set to the CA certificate file "
            f"when POSTGRES_SSL_MODE is {s.postgres_ssl_mode}"
        )
    return None


# Checks across variables: (fields they read, check). Skipped when one of the fields was invalid.
_CROSS_CHECKS: tuple[tuple[tuple[str, ...], Callable[[Settings], str | None]], ...] = (
    (("postgres_min_pool", "postgres_max_pool"), _check_pool),
    (("postgres_ssl_mode", "postgres_ssl_root_cert"), _check_ssl),
)


def load_settings(
    env: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read and validate every setting; raise one ConfigError listing all problems.

    With env=None, `.env` (if present; dotenv_path=None skips it) is loaded first without
    overriding real environment variables, then os.environ is read. A given env mapping is
    used alone, which is what tests do.
    """
    if env is None:
        if dotenv_path is not None:
            load_dotenv(dotenv_path, override=False)
        env = os.environ
    errors: list[str] = []
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for spec in dataclasses.fields(Settings):
        if "parse" not in spec.metadata:
            continue
        before = len(errors)
        value = _read_field(spec, env, errors)
        if len(errors) > before:
            failed.add(spec.name)
        elif value is not dataclasses.MISSING:
            values[spec.name] = value
    values["servers_config_file_explicit"] = "servers_config_file" in values
    settings = Settings(**values)
    for names, check in _CROSS_CHECKS:
        problem = None if failed.intersection(names) else check(settings)
        if problem is not None:
            errors.append(problem)
    if errors:
        raise ConfigError.collect("configuration", errors)
    return settings
