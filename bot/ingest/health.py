"""Server health as one pure rule, shared by `!servers`, `!failover-status` and the alerts.

    server_health(HealthInput(...), now) -> HealthVerdict(state, reason)

The states, checked in this order:

- disabled: switched off in the server list;
- down: the server should be active (voice channel full enough, or a file within the grace
  period) and there has been no contact for ``down_after_s`` (15 min). Silence is measured from
  the later of the last contact and ``active_since`` (when the voice channel filled up), so a
  server that slept all afternoon is not "down" the minute players join voice;
- degraded: an error within ``error_window_s`` (30 min), but not down: still importing;
- healthy: contact (a file, a successful poll or listing) within ``healthy_within_s`` (30 min);
- idle: no session and no recent contact; nothing is expected of the server.

"Contact" is whatever proves the server and the path to it work: a stored file (any path), a
successful SFTP listing, a webhook success. The caller passes the latest of those it knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

MINUTE_S = 60.0


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    IDLE = "idle"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class HealthRules:
    down_after_s: float = 15 * MINUTE_S
    healthy_within_s: float = 30 * MINUTE_S
    error_window_s: float = 30 * MINUTE_S


@dataclass(frozen=True, slots=True)
class HealthInput:
    """Plain facts about one server; every time is epoch seconds."""

    enabled: bool
    active: bool  # a session is on: voice or a recent file
    last_contact: float | None
    last_error_at: float | None = None
    last_error: str | None = None
    active_since: float | None = None  # when the voice channel filled up, if it is full


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    state: Health
    reason: str


def latest(times: Iterable[float | None]) -> float | None:
    """The latest of the known times (None when none is known)."""
    known = [t for t in times if t is not None]
    return max(known) if known else None


def fmt_span(seconds: float) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 d 4 h': a duration a person reads at a glance."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _contact_text(last_contact: float | None, now: float) -> str:
    if last_contact is None:
        return "never in contact"
    return f"last contact {fmt_span(now - last_contact)} ago"


def server_health(
    facts: HealthInput, now: float, rules: HealthRules | None = None
) -> HealthVerdict:
    rules = rules or HealthRules()
    if not facts.enabled:
        return HealthVerdict(Health.DISABLED, "disabled in the server list")
    contact = _contact_text(facts.last_contact, now)
    if facts.active:
        reference = latest((facts.last_contact, facts.active_since))
        if reference is None or now - reference >= rules.down_after_s:
            silent = "no contact yet" if facts.last_contact is None else contact
            return HealthVerdict(Health.DOWN, f"{silent} during an active session")
    error_at = facts.last_error_at
    if error_at is not None and now - error_at <= rules.error_window_s:
        error = facts.last_error or "an error"
        return HealthVerdict(
            Health.DEGRADED, f"{error} ({fmt_span(now - error_at)} ago); {contact}"
        )
    if facts.last_contact is not None and now - facts.last_contact <= rules.healthy_within_s:
        return HealthVerdict(Health.HEALTHY, contact)
    if facts.active:  # within the down grace of a session that just began
        return HealthVerdict(Health.HEALTHY, f"session starting; {contact}")
    return HealthVerdict(Health.IDLE, f"no session; {contact}")


class ActivityWatch:
    """Since when a condition (e.g. "the voice channel is full") has held for each server,
    from the observations it is given: the first True after a False starts the span."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def observe(self, server_id: str, active: bool, now: float) -> float | None:
        """Record one observation; returns the start of the current span (None: not holding)."""
        if not active:
            self._since.pop(server_id, None)
            return None
        return self._since.setdefault(server_id, now)

    def since(self, server_id: str) -> float | None:
        return self._since.get(server_id)
