"""When to alert the operators: one small state machine per server and condition. Pure.

The alerts cog feeds two kinds of input and sends whatever comes back, one message per alert:

- ``observe(Observation)`` once a minute per server (health verdict, failover mode, activity);
- ``on_transition(Transition)`` for every failover transition, as it happens.

The conditions, each alerted ONCE and re-armed only by its recovery:

- down: the health rule says DOWN (no contact for 15 min during a session). Recovery: the
  verdict is healthy or degraded again (contact is back). Idle keeps the alert armed (the
  session ended while the server was down: we still want to hear when it is back); disabled
  clears it silently (an operator did that on purpose);
- failover: a WEBHOOK -> POLLING transition other than an operator reset (the reason is in
  the alert);
- long backup: SSH polling (not forced) has been the only path for ``backup_limit_s`` (1 h)
  of continuous activity: the webhook service is probably dead, not just hiccuping;
- webhook back: POLLING -> WEBHOOK after a failover or long-backup alert. The start-up
  POLLING -> WEBHOOK is the normal case and says nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.ingest.failover import RESET_REASON, FailoverMode, Transition
from bot.ingest.health import Health, HealthVerdict, fmt_span

Clock = Callable[[], float]
CONTACT_BACK = frozenset({Health.HEALTHY, Health.DEGRADED})


class AlertKind(StrEnum):
    DOWN = "down"
    RECOVERED = "recovered"
    FAILOVER = "failover"
    LONG_BACKUP = "long_backup"
    WEBHOOK_BACK = "webhook_back"


@dataclass(frozen=True, slots=True)
class Alert:
    server_id: str
    kind: AlertKind
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class Observation:
    server_id: str
    health: HealthVerdict
    mode: FailoverMode
    active: bool


@dataclass(slots=True)
class _ServerState:
    down_alerted: bool = False
    backup_alerted: bool = False  # a failover or long-backup alert awaits "webhook back"
    long_backup_alerted: bool = False
    backup_active_since: float | None = None  # polling AND active, continuously, since


class AlertRules:
    def __init__(self, *, backup_limit_s: float = 3600.0, clock: Clock = time.time) -> None:
        self.backup_limit_s = backup_limit_s
        self._clock = clock
        self._states: dict[str, _ServerState] = {}

    def _state(self, server_id: str) -> _ServerState:
        return self._states.setdefault(server_id, _ServerState())

    def observe(self, obs: Observation) -> list[Alert]:
        now = self._clock()
        state = self._state(obs.server_id)
        alerts = [self._down_rule(obs, state, now)]
        alerts += self._backup_rule(obs, state, now)
        return [a for a in alerts if a is not None]

    def on_transition(self, t: Transition) -> list[Alert]:
        state = self._state(t.server_id)
        now = self._clock()
        if t.to_mode is FailoverMode.POLLING and t.from_mode is FailoverMode.WEBHOOK:
            state.backup_active_since = None  # the hour counts from this failover
            if t.reason == RESET_REASON:
                return []
            state.backup_alerted = True
            return [Alert(t.server_id, AlertKind.FAILOVER, t.reason, now)]
        if t.to_mode is FailoverMode.WEBHOOK:
            return self._webhook_back(t.server_id, state, now)
        return []

    def _down_rule(self, obs: Observation, state: _ServerState, now: float) -> Alert | None:
        health = obs.health
        if health.state is Health.DOWN and not state.down_alerted:
            state.down_alerted = True
            return Alert(obs.server_id, AlertKind.DOWN, health.reason, now)
        if state.down_alerted and health.state in CONTACT_BACK:
            state.down_alerted = False
            return Alert(obs.server_id, AlertKind.RECOVERED, health.reason, now)
        if health.state is Health.DISABLED:
            state.down_alerted = False
        return None

    def _backup_rule(self, obs: Observation, state: _ServerState, now: float) -> list[Alert]:
        if obs.mode is FailoverMode.WEBHOOK:
            # Also here, not only in on_transition: a missed transition must not leave the
            # conditions armed forever.
            return self._webhook_back(obs.server_id, state, now)
        if obs.mode is not FailoverMode.POLLING or not obs.active:
            state.backup_active_since = None
            return []
        if state.backup_active_since is None:
            state.backup_active_since = now
        lasted = now - state.backup_active_since
        if lasted < self.backup_limit_s or state.long_backup_alerted:
            return []
        state.long_backup_alerted = state.backup_alerted = True
        detail = f"SSH polling has been the only path for {fmt_span(lasted)} of an active session"
        return [Alert(obs.server_id, AlertKind.LONG_BACKUP, detail, now)]

    def _webhook_back(self, server_id: str, state: _ServerState, now: float) -> list[Alert]:
        state.backup_active_since = None
        state.long_backup_alerted = False
        if not state.backup_alerted:
            return []
        state.backup_alerted = False
        return [Alert(server_id, AlertKind.WEBHOOK_BACK, "webhook is primary again", now)]


def alert_text(alert: Alert, server_name: str) -> str:
    """The one message line for an alert; `server_name` is used as given (escape it first)."""
    who = f"**{server_name}** (`{alert.server_id}`)"
    match alert.kind:
        case AlertKind.DOWN:
            return f"🔴 {who} is down: {alert.detail}."
        case AlertKind.RECOVERED:
            return f"🟢 {who} is back: {alert.detail}."
        case AlertKind.FAILOVER:
            return (
                f"🟠 {who}: the webhook failed, SSH polling is now the backup path. "
                f"Reason: {alert.detail}"
            )
        case AlertKind.LONG_BACKUP:
            return (
                f"🟠 {who}: {alert.detail}; the webhook service on the game server "
                f"is probably dead."
            )
        case AlertKind.WEBHOOK_BACK:
            return f"🟢 {who}: the webhook works again and is primary; SSH polling is off."
    raise AssertionError(f"unhandled alert kind {alert.kind}")
