"""Control-channel trigger messages, as pure code: who may send them, what they name.

Two formats come from the game server's notifier (vps_scripts/):
(a) the file name in backticks: "📊 `2025-…-round-1.txt`" / "🏆 `…-endstats.txt`";
(b) "STATS_READY" with an embed carrying map, round and round-end time when the
    notifier could not find the file name in time: resolved by listing the
    server's directory and taking the file of that map and round nearest the end.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.registry import ServerConfig, ServerRegistry
from bot.stats import StatsFileError, parse_filename

MAX_CONTENT = 2000  # Discord's own message limit; anything longer is not ours
MAX_NAME = 255
_BACKTICKED = re.compile(r"`([^`\n]{1,300})`")
# The file is written ~3 s after the round ends; allow clock skew and slow disks.
READY_TOLERANCE = timedelta(seconds=120)


@dataclass(frozen=True, slots=True)
class FileTrigger:
    filenames: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadyTrigger:
    map_name: str
    round_number: int
    round_end: datetime  # naive: the game server's local clock


class TriggerError(ValueError):
    """A message from an allowed webhook that names nothing usable; `reason` is one line."""

    @property
    def reason(self) -> str:
        return str(self)


def validate_filename(name: str, server: ServerConfig) -> str:
    """A basename that passes the grammar and whose prefix (if any) is this server's."""
    if "\x00" in name or "/" in name or "\\" in name or ".." in name or len(name) > MAX_NAME:
        raise TriggerError(f"refused file name {name[:80]!r}: not a plain file name")
    try:
        parsed = parse_filename(name)
    except StatsFileError as exc:
        raise TriggerError(f"refused file name {name[:80]!r}: {exc.reason}") from None
    if parsed.server_id is not None and parsed.server_id != server.server_id:
        raise TriggerError(
            f"file {name!r} is prefixed '{parsed.server_id}' but the webhook belongs to "
            f"'{server.server_id}'"
        )
    return name


def parse_trigger(
    content: str, embeds: Sequence[Mapping[str, object]], server: ServerConfig
) -> FileTrigger | ReadyTrigger:
    """What a trigger message asks for; TriggerError when it names nothing usable."""
    if len(content) > MAX_CONTENT:
        raise TriggerError("message too long to be a trigger")
    names = _BACKTICKED.findall(content)
    if names:
        return FileTrigger(tuple(validate_filename(n.strip(), server) for n in names))
    if "STATS_READY" in content or any(e.get("title") == "STATS_READY" for e in embeds):
        return _parse_ready(embeds)
    raise TriggerError("no file name in backticks and no STATS_READY embed")


def _embed_fields(embeds: Sequence[Mapping[str, object]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for embed in embeds:
        for f in embed.get("fields") or []:  # type: ignore[union-attr]
            if isinstance(f, Mapping):
                fields[str(f.get("name", "")).strip().lower()] = str(f.get("value", "")).strip()
    return fields


def _parse_ready(embeds: Sequence[Mapping[str, object]]) -> ReadyTrigger:
    fields = _embed_fields(embeds)
    map_name = fields.get("map", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", map_name):
        raise TriggerError(f"STATS_READY without a valid map (got {map_name[:40]!r})")
    if fields.get("round") not in ("1", "2"):
        raise TriggerError("STATS_READY without round 1 or 2")
    try:
        end = datetime.strptime(fields.get("round_end", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise TriggerError("STATS_READY without round_end 'YYYY-MM-DD HH:MM:SS'") from None
    return ReadyTrigger(map_name, int(fields["round"]), end)


def resolve_ready(trigger: ReadyTrigger, names: Iterable[str]) -> str | None:
    """The stats file of that map and round nearest the round end, within tolerance."""
    best: tuple[timedelta, str] | None = None
    for name in names:
        try:
            f = parse_filename(name)
        except StatsFileError:
            continue
        if f.is_endstats or f.round_number != trigger.round_number:
            continue
        if f.map_name.lower() != trigger.map_name.lower():
            continue
        gap = abs(f.timestamp - trigger.round_end)
        if gap <= READY_TOLERANCE and (best is None or (gap, name) < best):
            best = (gap, name)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Authorization:
    server: ServerConfig | None
    reason: str  # why it was refused, "" when allowed


def authorize(
    registry: ServerRegistry,
    *,
    webhook_id: int | None,
    author_name: str,
    required_username: str | None,
) -> Authorization:
    """Only whitelisted webhook ids (the id decides the server), optionally a fixed name."""
    if webhook_id is None:
        return Authorization(None, "not a webhook message")
    server = registry.by_webhook_id(webhook_id)
    if server is None:
        return Authorization(None, f"webhook {webhook_id} is not in any server's trigger list")
    if not server.enabled:
        return Authorization(None, f"server '{server.server_id}' is disabled")
    if required_username and author_name != required_username:
        return Authorization(None, f"webhook author {author_name[:40]!r} is not the trigger name")
    return Authorization(server, "")


@dataclass
class RateLimiter:
    """At most `limit` events per `window` seconds per key (sliding window)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _events: dict[Hashable, deque[float]] = field(default_factory=dict)

    def allow(self, key: Hashable) -> bool:
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, key: Hashable) -> float:
        """Seconds until `allow(key)` would succeed; 0.0 when it would now. Records nothing."""
        now = self.clock()
        events = self._events.get(key)
        if not events:
            return 0.0
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) < self.limit:
            return 0.0
        # The slot that frees first belongs to the event `limit` places from the end.
        return max(0.0, self.window - (now - events[-self.limit]))
