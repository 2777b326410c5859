"""Server registry: servers.json (or the single-server env fallback) -> immutable configs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from bot.config import ConfigError
from bot.config_parsing import load_zone

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SSHTarget:
    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path | None  # None only with insecure_skip_host_key
    remote_stats_path: str
    insecure_skip_host_key: bool = False


@dataclass(frozen=True, slots=True)
class ServerConfig:
    server_id: str
    server_name: str
    enabled: bool
    timezone: ZoneInfo
    ssh: SSHTarget | None  # None: push-only server, never polled
    trigger_webhook_ids: tuple[int, ...] = ()
    stats_channel_id: int | None = None
    voice_channel_ids: tuple[int, ...] = ()

    @property
    def pollable(self) -> bool:
        return self.enabled and self.ssh is not None


class ServerRegistry:
    """The configured game servers, in file order. Immutable; lookups by id and webhook id."""

    __slots__ = ("_by_id", "_by_webhook", "_servers")

    _servers: tuple[ServerConfig, ...]
    _by_id: Mapping[str, ServerConfig]
    _by_webhook: Mapping[int, ServerConfig]

    def __init__(self, servers: Iterable[ServerConfig] = ()) -> None:
        ordered = tuple(servers)
        by_id: dict[str, ServerConfig] = {}
        by_webhook: dict[int, ServerConfig] = {}
        for server in ordered:
            if server.server_id in by_id:
                raise ValueError(f"duplicate server_id {server.server_id!r}")
            by_id[server.server_id] = server
            for webhook_id in server.trigger_webhook_ids:
                owner = by_webhook.setdefault(webhook_id, server)
                if owner is not server:
                    raise ValueError(
                        f"webhook id {webhook_id} belongs to both {owner.server_id!r} "
                        f"and {server.server_id!r}"
                    )
        object.__setattr__(self, "_servers", ordered)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_by_webhook", by_webhook)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ServerRegistry is immutable")

    def get(self, server_id: str) -> ServerConfig:
        try:
            return self._by_id[server_id]
        except KeyError:
            known = ", ".join(self._by_id) or "none configured"
            raise KeyError(f"unknown server {server_id!r} (known: {known})") from None

    def __iter__(self) -> Iterator[ServerConfig]:
        return iter(self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._by_id

    def __repr__(self) -> str:
        return f"ServerRegistry({list(self._by_id)!r})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def enabled(self) -> tuple[ServerConfig, ...]:
        return tuple(s for s in self._servers if s.enabled)

    def pollable(self) -> tuple[ServerConfig, ...]:
        """Enabled servers with SSH settings: the ones the SFTP pollers run for."""
        return tuple(s for s in self._servers if s.pollable)

    def by_webhook_id(self, webhook_id: int) -> ServerConfig | None:
        """The server owning this trigger webhook (also when disabled; callers check)."""
        return self._by_webhook.get(webhook_id)

    @property
    def all_webhook_ids(self) -> frozenset[int]:
        return frozenset(self._by_webhook)


# ---- servers.json value checks: return the typed value or raise ValueError("expected ...") ----

_SERVER_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SSH_REQUIRED = ("ssh_host", "ssh_user", "ssh_key_path", "known_hosts", "remote_stats_path")
_SSH_KEYS = frozenset({*_SSH_REQUIRED, "ssh_port", "ssh_insecure_skip_host_key"})
_KNOWN_KEYS = _SSH_KEYS | {
    "server_id",
    "server_name",
    "enabled",
    "timezone",
    "trigger_webhook_ids",
    "stats_channel_id",
    "voice_channel_ids",
}


def _show(value: object) -> str:
    shown = repr(value) if isinstance(value, str) else json.dumps(value, default=repr)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _want_str(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError("a non-empty string")


def _want_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def _want_port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise ValueError("an integer 1-65535")


def _want_path(value: object) -> Path:
    if isinstance(value, str) and value.strip():
        return Path(value.strip()).expanduser()
    raise ValueError("a path (non-empty string)")


def _want_server_id(value: object) -> str:
    if isinstance(value, str) and _SERVER_ID_RE.fullmatch(value):
        return value
    raise ValueError("a lowercase letter then up to 31 lowercase letters, digits or _")


def _want_zone(value: object) -> ZoneInfo:
    if not isinstance(value, str):
        raise ValueError("an IANA time zone name such as Europe/Ljubljana")
    return load_zone(value)


def _snowflake(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def _want_snowflake_or_null(value: object) -> int | None:
    if value is None:
        return None
    result = _snowflake(value)
    if result is None:
        raise ValueError("a Discord id (integer or string of digits) or null")
    return result


def _want_snowflakes(value: object) -> tuple[int, ...]:
    expected = "a list of Discord ids (integers or strings of digits)"
    if not isinstance(value, list):
        raise ValueError(expected)
    ids = tuple(_snowflake(item) for item in value)
    if None in ids:
        raise ValueError(expected)
    if len(set(ids)) != len(ids):
        raise ValueError("a list of distinct Discord ids")
    return tuple(i for i in ids if i is not None)


class _Entry:
    """Reads the fields of one servers.json entry, recording problems instead of raising."""

    def __init__(self, raw: Mapping[str, Any], where: str, errors: list[str]) -> None:
        self.raw, self.where, self.errors, self.ok = raw, where, errors, True

    def problem(self, text: str) -> None:
        self.errors.append(f"{self.where}: {text}")
        self.ok = False

    def get(self, key: str, check: Callable[[object], T], default: T) -> T:
        if key not in self.raw:
            return default
        try:
            return check(self.raw[key])
        except ValueError as exc:
            self.problem(f"field '{key}': expected {exc}, got {_show(self.raw[key])}")
            return default

    def check_unknown_keys(self) -> None:
        for key in self.raw:
            if key not in _KNOWN_KEYS and not key.startswith("_"):
                self.problem(f"unknown field {key!r}")


def _read_ssh(entry: _Entry) -> SSHTarget | None:
    """The all-or-none SSH group: None (push-only) when no SSH field is present."""
    if not _SSH_KEYS.intersection(entry.raw):
        return None
    insecure = entry.get("ssh_insecure_skip_host_key", _want_bool, False)
    required = [k for k in _SSH_REQUIRED if k != "known_hosts" or not insecure]
    missing = [k for k in required if k not in entry.raw]
    if missing:
        listed = ", ".join(f"'{k}'" for k in missing)
        entry.problem(
            f"incomplete SSH settings, missing {listed} "
            f"(give all of {', '.join(_SSH_REQUIRED)}, or none for a push-only server)"
        )
    target = SSHTarget(
        host=entry.get("ssh_host", _want_str, ""),
        port=entry.get("ssh_port", _want_port, 22),
        user=entry.get("ssh_user", _want_str, ""),
        key_path=entry.get("ssh_key_path", _want_path, Path()),
        known_hosts=entry.get("known_hosts", _want_path, None),
        remote_stats_path=entry.get("remote_stats_path", _want_str, ""),
        insecure_skip_host_key=insecure,
    )
    return target if entry.ok else None


def _read_entry(entry: _Entry, default_zone: ZoneInfo) -> ServerConfig | None:
    entry.check_unknown_keys()
    server_id = entry.get("server_id", _want_server_id, "")
    if "server_id" not in entry.raw:
        entry.problem("field 'server_id' is required")
    config = ServerConfig(
        server_id=server_id,
        server_name=entry.get("server_name", _want_str, server_id),
        enabled=entry.get("enabled", _want_bool, True),
        timezone=entry.get("timezone", _want_zone, default_zone),
        ssh=_read_ssh(entry),
        trigger_webhook_ids=entry.get("trigger_webhook_ids", _want_snowflakes, ()),
        stats_channel_id=entry.get("stats_channel_id", _want_snowflake_or_null, None),
        voice_channel_ids=entry.get("voice_channel_ids", _want_snowflakes, ()),
    )
    return config if entry.ok else None


def _server_list(data: object, source: str) -> list[object]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("servers"), list):
        unknown = [k for k in data if k != "servers" and not str(k).startswith("_")]
        if unknown:
            raise ConfigError(f"{source}: unknown top-level field {unknown[0]!r}")
        return data["servers"]
    raise ConfigError(
        f'{source}: expected an object {{"servers": [...]}} or a list of servers, got {_show(data)}'
    )


def _entry_label(raw: object, index: int) -> str:
    server_id = raw.get("server_id") if isinstance(raw, dict) else None
    label = f"servers[{index}]"
    return f"{label} (id {server_id!r})" if isinstance(server_id, str) and server_id else label


def _check_unique(
    config: ServerConfig, label: str, seen: dict[str, str], webhooks: dict[int, str], source: str
) -> list[str]:
    """Problems with ids already used by earlier entries; records this entry's ids."""
    where = f"{source}: {label}"
    problems = []
    if config.server_id in seen:
        problems.append(f"{where}: duplicate server_id, already used by {seen[config.server_id]}")
    seen.setdefault(config.server_id, label)
    for webhook_id in config.trigger_webhook_ids:
        owner = webhooks.setdefault(webhook_id, config.server_id)
        if owner != config.server_id:
            problems.append(
                f"{where}: field 'trigger_webhook_ids': webhook id {webhook_id} "
                f"already belongs to server {owner!r}"
            )
    return problems


def parse_servers(data: object, *, default_tz: str, source: str) -> ServerRegistry:
    """Validate decoded servers.json data; one ConfigError lists every problem."""
    try:
        default_zone = load_zone(default_tz)
    except ValueError as exc:
        raise ConfigError(f"DEFAULT_TIMEZONE must be {exc}, got {default_tz!r}") from None
    errors: list[str] = []
    servers: list[ServerConfig] = []
    seen: dict[str, str] = {}
    webhooks: dict[int, str] = {}
    for index, raw in enumerate(_server_list(data, source)):
        label = _entry_label(raw, index)
        where = f"{source}: {label}"
        if not isinstance(raw, dict):
            errors.append(f"{where}: expected an object, got {_show(raw)}")
            continue
        config = _read_entry(_Entry(raw, where, errors), default_zone)
        if config is not None:
            errors.extend(_check_unique(config, label, seen, webhooks, source))
            servers.append(config)
    if errors:
        raise ConfigError.collect(source, errors)
    return ServerRegistry(servers)


def _read_json(path: Path, source: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


_LEGACY_VARS = ("SSH_HOST", "SSH_USER", "SSH_KEY_PATH", "REMOTE_STATS_PATH")


def _legacy_registry(settings: Settings, source: str) -> ServerRegistry:
    """One server `legacy` from the single-server SSH_* variables, or an empty registry."""
    values = {name: getattr(settings, name.lower()) for name in _LEGACY_VARS}
    missing = [name for name, value in values.items() if value is None]
    if len(missing) == len(values):
        log.info("no %s and no SSH_* settings: no servers configured", source)
        return ServerRegistry()
    if missing:
        raise ConfigError(
            f"{source} does not exist and the single-server settings are incomplete: "
            f"missing {', '.join(missing)} (set all of {', '.join(_LEGACY_VARS)}, "
            f"or create {source})"
        )
    ssh = SSHTarget(
        host=values["SSH_HOST"],
        port=settings.ssh_port,
        user=values["SSH_USER"],
        key_path=values["SSH_KEY_PATH"],
        known_hosts=settings.ssh_known_hosts,
        remote_stats_path=values["REMOTE_STATS_PATH"],
        insecure_skip_host_key=settings.ssh_insecure_skip_host_key,
    )
    legacy = ServerConfig("legacy", "legacy", True, settings.default_zone, ssh)
    return ServerRegistry([legacy])


def load_registry(settings: Settings) -> ServerRegistry:
    """servers.json when it exists; else the legacy SSH_* server; else an empty registry."""
    path = settings.servers_config_file
    source = str(path)
    if path.exists():
        if settings.ssh_host is not None:
            log.warning("%s exists: the SSH_HOST/SSH_* single-server settings are ignored", source)
        return parse_servers(
            _read_json(path, source), default_tz=settings.default_timezone, source=source
        )
    if settings.servers_config_file_explicit:
        raise ConfigError(f"SERVERS_CONFIG_FILE is set to {source!r}, but that file does not exist")
    return _legacy_registry(settings, source)
