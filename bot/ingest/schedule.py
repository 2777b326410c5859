"""Poll cadence per server: fast while a session is on, slow when idle, none in dead hours.

Pure: every function takes ``now`` (epoch seconds) or an injected clock; nothing sleeps.

This module decides only WHEN a server's poll is due by time and activity. Whether the poller
may poll at all is the failover machine's call: the poller polls a server when
``schedule.due(sid)`` and (``failover.polling_enabled`` or ``failover.safety_sweep_due()``).

Dead hours silence polling only; the webhook trigger and the push API keep working, and the
first poll after dead hours picks up whatever the webhook missed (the poll is due at once,
because the last poll is older than any interval by then).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import DeadHours
from bot.registry import ServerConfig

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "ActivityTracker",
    "DeadHours",
    "PollCadence",
    "PollSchedule",
    "in_dead_hours",
    "next_poll_delay",
    "seconds_until_dead_hours_end",
]

Clock = Callable[[], float]
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class PollCadence:
    active_interval_s: float = 60.0
    idle_interval_s: float = 600.0
    grace_s: float = 1800.0  # SSH_GRACE_PERIOD_MINUTES * 60
    voice_min_players: int = 4
    dead_hours: DeadHours | None = None  # None = never dead

    def __post_init__(self) -> None:
        if self.active_interval_s <= 0 or self.idle_interval_s <= 0:
            raise ValueError("poll intervals must be > 0 seconds")
        if self.grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {self.grace_s}")
        if self.voice_min_players < 1:
            raise ValueError(f"voice_min_players must be >= 1, got {self.voice_min_players}")

    @classmethod
    def from_settings(cls, settings: Settings) -> PollCadence:
        return cls(
            active_interval_s=float(settings.ssh_active_interval),
            idle_interval_s=float(settings.ssh_idle_interval),
            grace_s=settings.ssh_grace_period_minutes * 60.0,
            voice_min_players=settings.voice_active_min_players,
            dead_hours=settings.dead_hours,
        )


class ActivityTracker:
    """Per-server activity facts fed by every ingest path and the voice-state listener."""

    def __init__(self) -> None:
        self._last_file_at: dict[str, float] = {}
        self._voice_counts: dict[str, int] = {}

    def note_file(self, server_id: str, at: float) -> None:
        """``at`` is when the bot saw the file (bot clock), not the server-local filename time."""
        previous = self._last_file_at.get(server_id)
        if previous is None or at > previous:
            self._last_file_at[server_id] = at

    def set_voice_count(self, server_id: str, n: int) -> None:
        """Members across ALL of the server's voice channels (the caller sums them)."""
        self._voice_counts[server_id] = max(0, n)

    def last_file_at(self, server_id: str) -> float | None:
        return self._last_file_at.get(server_id)

    def voice_count(self, server_id: str) -> int:
        return self._voice_counts.get(server_id, 0)

    def is_active(
        self, server_id: str, now: float, grace_s: float = 1800.0, voice_min_players: int = 4
    ) -> bool:
        """A file seen within ``grace_s`` or at least ``voice_min_players`` in voice."""
        if self.voice_count(server_id) >= voice_min_players:
            return True
        last = self._last_file_at.get(server_id)
        return last is not None and now - last <= grace_s


def in_dead_hours(now_epoch: float, tz: ZoneInfo, dead: DeadHours | None) -> bool:
    """Is the SERVER's local wall-clock hour inside its dead hours?"""
    if dead is None or dead.empty:
        return False
    return dead.contains(datetime.fromtimestamp(now_epoch, tz).hour)


def seconds_until_dead_hours_end(now_epoch: float, tz: ZoneInfo, dead: DeadHours | None) -> float:
    """0 when not in dead hours; else seconds until the first local hour outside them.

    Walks local hour boundaries as real instants, so DST days (23 or 25 hours) come out right.
    """
    if not in_dead_hours(now_epoch, tz, dead):
        return 0.0
    local = datetime.fromtimestamp(now_epoch, tz)
    top_of_hour = local.replace(minute=0, second=0, microsecond=0).timestamp()
    # 25 local hours (a DST fall-back day) is the longest any non-empty window can last.
    for k in range(1, 27):
        candidate = top_of_hour + k * HOUR_S
        if not in_dead_hours(candidate, tz, dead):
            return candidate - now_epoch
    raise AssertionError(f"dead hours {dead} never end in {tz}")  # unreachable: start != end


def next_poll_delay(
    server: ServerConfig, now: float, tracker: ActivityTracker, cadence: PollCadence
) -> float | None:
    """The cadence for this server right now.

    None: never poll (disabled or push-only server). In dead hours: seconds until they end.
    Otherwise the active or idle interval.
    """
    if not server.pollable:
        return None
    if in_dead_hours(now, server.timezone, cadence.dead_hours):
        return seconds_until_dead_hours_end(now, server.timezone, cadence.dead_hours)
    active = tracker.is_active(server.server_id, now, cadence.grace_s, cadence.voice_min_players)
    return cadence.active_interval_s if active else cadence.idle_interval_s


class PollSchedule:
    """Per-server "is a poll due" bookkeeping on top of ``next_poll_delay``.

    The poller should sleep ``min(seconds_until_due(...))`` over its servers, capped at
    ``cadence.active_interval_s``, because a session starting (voice joins) shortens the
    interval after the sleep was chosen.
    """

    def __init__(
        self,
        servers: Iterable[ServerConfig],
        cadence: PollCadence | None = None,
        tracker: ActivityTracker | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._servers = {s.server_id: s for s in servers}
        self.cadence = cadence or PollCadence()
        self.tracker = tracker or ActivityTracker()
        self._clock = clock
        self._last_polled: dict[str, float] = {}

    def _server(self, server_id: str) -> ServerConfig:
        try:
            return self._servers[server_id]
        except KeyError:
            raise KeyError(f"no poll schedule for server {server_id!r}") from None

    def seconds_until_due(self, server_id: str, now: float | None = None) -> float | None:
        """0 when due now; None when the server is never polled."""
        now = self._clock() if now is None else now
        server = self._server(server_id)
        delay = next_poll_delay(server, now, self.tracker, self.cadence)
        if delay is None:
            return None
        if in_dead_hours(now, server.timezone, self.cadence.dead_hours):
            return delay
        last = self._last_polled.get(server_id)
        if last is None:
            return 0.0  # never polled in this process: poll at once
        return max(0.0, last + delay - now)

    def due(self, server_id: str, now: float | None = None) -> bool:
        remaining = self.seconds_until_due(server_id, now)
        return remaining is not None and remaining <= 0

    def mark_polled(self, server_id: str, now: float | None = None) -> None:
        self._server(server_id)  # fail loudly on an unknown id
        self._last_polled[server_id] = self._clock() if now is None else now

    def last_polled(self, server_id: str) -> float | None:
        return self._last_polled.get(server_id)
