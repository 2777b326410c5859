"""Smart failover between the webhook trigger and SSH polling: one pure state machine per server.

Every server starts in POLLING at every process start (we never trust a webhook we have not seen
work in this process). After ``success_threshold`` consecutive webhook successes the machine
switches to WEBHOOK and the poller stops, except for a slow safety sweep. ``failure_threshold``
consecutive webhook failures, or a silent webhook during an active session (heartbeat timeout),
switch it back to POLLING. With smart failover disabled the machine sits in FORCED_POLLING and
never transitions.

What the caller reports (the machine imports nothing and does no I/O):

- a webhook-announced file stored fine -> ``record_webhook_success()``;
- a webhook-announced file that could not be downloaded, parsed or stored, or a trigger dropped
  by a rate limit -> ``record_webhook_failure(reason)``;
- a file the poller or a safety sweep found that no webhook announced within
  ``unannounced_grace_s`` -> ``record_unannounced_file(filename)`` (a webhook failure);
- "endstats arrived before its round" is NOT a failure: the file is fine and will be paired
  later, so the caller simply reports nothing for it.

The ``on_transition`` hook is called synchronously with every ``Transition``; an async caller
that persists it should schedule a task. A failing hook is logged and swallowed, because the
state change has already happened and must not be undone by a database hiccup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], float]
DAY_S = 24 * 3600.0
RESET_REASON = "manual reset"
STARTUP_REASON = "start-up: polling enabled until the webhook proves itself"


class FailoverMode(StrEnum):
    POLLING = "polling"  # SSH polling is the active path (start-up state)
    WEBHOOK = "webhook"  # webhook is primary; polling off except the safety sweep
    FORCED_POLLING = "forced_polling"  # smart failover disabled: polling always on


@dataclass(frozen=True, slots=True)
class FailoverThresholds:
    success_threshold: int = 2
    failure_threshold: int = 1
    heartbeat_timeout_s: float = 900.0
    safety_sweep_s: float = 1800.0  # 0 = no safety sweep
    unannounced_grace_s: float = 120.0

    def __post_init__(self) -> None:
        if self.success_threshold < 1:
            raise ValueError(f"success_threshold must be >= 1, got {self.success_threshold}")
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if self.heartbeat_timeout_s <= 0:
            raise ValueError(f"heartbeat_timeout_s must be > 0, got {self.heartbeat_timeout_s}")
        if self.safety_sweep_s < 0:
            raise ValueError(f"safety_sweep_s must be >= 0 (0 = off), got {self.safety_sweep_s}")
        if self.unannounced_grace_s < 0:
            raise ValueError(f"unannounced_grace_s must be >= 0, got {self.unannounced_grace_s}")

    @classmethod
    def from_settings(cls, settings: Settings) -> FailoverThresholds:
        # unannounced_grace_s has no environment variable (yet): the default applies.
        return cls(
            success_threshold=settings.webhook_success_threshold,
            failure_threshold=settings.webhook_failure_threshold,
            heartbeat_timeout_s=float(settings.webhook_heartbeat_timeout),
            safety_sweep_s=settings.failover_safety_sweep_minutes * 60.0,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    server_id: str
    from_mode: FailoverMode
    to_mode: FailoverMode
    reason: str
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class FailoverStatus:
    server_id: str
    mode: FailoverMode
    polling_enabled: bool
    consecutive_successes: int
    consecutive_failures: int
    last_webhook_success_at: float | None
    last_webhook_failure_at: float | None
    last_webhook_failure_reason: str | None
    last_poll_at: float | None
    last_poll_ok: bool | None
    last_poll_error: str | None
    state_since: float
    time_in_mode_24h: dict[FailoverMode, float]
    failovers_24h: int
    transitions_24h: tuple[Transition, ...]
    last_transition_reason: str
    thresholds: FailoverThresholds
    smart_enabled: bool
    as_of: float  # the clock reading the status was computed at


class FailoverMachine:
    """The failover state of ONE server. Not thread-safe; use it from the event loop."""

    def __init__(
        self,
        server_id: str,
        thresholds: FailoverThresholds | None = None,
        *,
        enabled: bool = True,
        clock: Clock = time.time,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self.server_id = server_id
        self.thresholds = thresholds or FailoverThresholds()
        self.enabled = enabled
        self._clock = clock
        self._on_transition = on_transition
        self._started_at = clock()
        self._mode = self._startup_mode()
        self._state_since = self._started_at
        self._last_reason = STARTUP_REASON
        self._successes = 0
        self._failures = 0
        self._last_success_at: float | None = None
        self._last_failure_at: float | None = None
        self._last_failure_reason: str | None = None
        self._last_poll_at: float | None = None
        self._last_poll_ok: bool | None = None
        self._last_poll_error: str | None = None
        self._last_sweep_at: float | None = None
        self._active_since: float | None = None
        # For display: seeded + live transitions of the last 24 h, oldest first.
        self._transitions: list[Transition] = []
        # For time-in-mode: (since, mode) points; pruning keeps the one in force at the horizon.
        self._timeline: list[tuple[float, FailoverMode]] = [(self._started_at, self._mode)]

    # -- read-only view ----------------------------------------------------------------------

    @property
    def mode(self) -> FailoverMode:
        return self._mode

    @property
    def polling_enabled(self) -> bool:
        return self._mode is not FailoverMode.WEBHOOK

    def _startup_mode(self) -> FailoverMode:
        return FailoverMode.POLLING if self.enabled else FailoverMode.FORCED_POLLING

    # -- events ------------------------------------------------------------------------------

    def record_webhook_success(self) -> Transition | None:
        """A webhook-announced file went through the pipeline. Returns the transition, if any."""
        self._last_success_at = self._clock()
        self._successes += 1
        self._failures = 0
        th = self.thresholds.success_threshold
        if self._mode is FailoverMode.POLLING and self._successes >= th:
            return self._transition(
                FailoverMode.WEBHOOK, f"{self._successes} consecutive webhook successes"
            )
        return None

    def record_webhook_failure(self, reason: str) -> Transition | None:
        """A webhook-announced file failed (download, parse, store, rate-limit drop...)."""
        self._last_failure_at = self._clock()
        self._last_failure_reason = reason
        self._failures += 1
        self._successes = 0
        th = self.thresholds.failure_threshold
        if self._mode is FailoverMode.WEBHOOK and self._failures >= th:
            prefix = "webhook failure" if th == 1 else f"{self._failures} consecutive failures"
            return self._transition(FailoverMode.POLLING, f"{prefix}: {reason}")
        return None

    def record_unannounced_file(self, filename: str) -> Transition | None:
        """A file no webhook announced within ``unannounced_grace_s`` (the caller checks that)."""
        grace = self.thresholds.unannounced_grace_s
        return self.record_webhook_failure(
            f"unannounced file {filename}: no webhook within {grace:.0f} s"
        )

    def record_poll_result(self, ok: bool, error: str | None = None) -> None:
        """Status only: polling health never moves the machine (the webhook decides)."""
        self._last_poll_at = self._clock()
        self._last_poll_ok = ok
        self._last_poll_error = None if ok else error

    def record_sweep(self) -> None:
        self._last_sweep_at = self._clock()

    def safety_sweep_due(self) -> bool:
        """In WEBHOOK mode: has ``safety_sweep_s`` passed since the last sweep or poll?

        With no sweep or poll on record, the time WEBHOOK mode began is the reference.
        Outside WEBHOOK mode polling runs anyway, so no separate sweep is ever due.
        """
        every = self.thresholds.safety_sweep_s
        if self._mode is not FailoverMode.WEBHOOK or every <= 0:
            return False
        seen = [t for t in (self._last_sweep_at, self._last_poll_at) if t is not None]
        since = max(seen) if seen else self._state_since
        return self._clock() - since >= every

    def check_heartbeat(self, active: bool) -> Transition | None:
        """Call periodically with whether the server has an active session.

        Silence is measured from the later of the last webhook success and the moment the
        session became active (the first ``active=True`` call after an inactive one), so a
        server that was idle overnight does not fail over the minute players join.
        """
        now = self._clock()
        if not active:
            self._active_since = None
            return None
        if self._active_since is None:
            self._active_since = now
        if self._mode is not FailoverMode.WEBHOOK:
            return None
        last_ok = self._last_success_at if self._last_success_at is not None else self._state_since
        silent = now - max(last_ok, self._active_since)
        if silent < self.thresholds.heartbeat_timeout_s:
            return None
        # Earlier successes must not carry the machine straight back to WEBHOOK.
        self._successes = 0
        return self._transition(
            FailoverMode.POLLING,
            f"heartbeat timeout: no webhook success for {silent:.0f} s during an active session",
        )

    def reset(self) -> Transition:
        """Operator reset: start-up mode, counters zero. Always recorded, even POLLING->POLLING,
        so the audit trail shows the operator acted."""
        self._successes = 0
        self._failures = 0
        return self._transition(self._startup_mode(), RESET_REASON, force=True)

    def seed_history(self, transitions: Iterable[Transition]) -> None:
        """Load persisted transitions from before this process for the 24 h statistics only.

        The current mode is NOT restored: every start-up begins in polling. Records at or after
        this machine's start are ignored (they cannot be from an earlier run).
        """
        old = [t for t in transitions if t.at < self._started_at]
        for t in old:
            if t.server_id != self.server_id:
                raise ValueError(f"transition for {t.server_id!r} seeded into {self.server_id!r}")
        # Stable sorts keep same-instant records in insertion order.
        self._transitions = sorted(self._transitions + old, key=lambda t: t.at)
        points = [(t.at, t.to_mode) for t in old]
        self._timeline = sorted(self._timeline + points, key=lambda p: p[0])
        self._prune(self._clock())

    # -- status ------------------------------------------------------------------------------

    def status(self) -> FailoverStatus:
        now = self._clock()
        self._prune(now)
        return FailoverStatus(
            server_id=self.server_id,
            mode=self._mode,
            polling_enabled=self.polling_enabled,
            consecutive_successes=self._successes,
            consecutive_failures=self._failures,
            last_webhook_success_at=self._last_success_at,
            last_webhook_failure_at=self._last_failure_at,
            last_webhook_failure_reason=self._last_failure_reason,
            last_poll_at=self._last_poll_at,
            last_poll_ok=self._last_poll_ok,
            last_poll_error=self._last_poll_error,
            state_since=self._state_since,
            time_in_mode_24h=self._time_in_mode(now),
            failovers_24h=sum(1 for t in self._transitions if _is_failover(t)),
            transitions_24h=tuple(self._transitions),
            last_transition_reason=self._last_reason,
            thresholds=self.thresholds,
            smart_enabled=self.enabled,
            as_of=now,
        )

    def _time_in_mode(self, now: float) -> dict[FailoverMode, float]:
        """Seconds per mode within [now - 24 h, now]; time before the first known point is
        unknown and counted nowhere, so the sum can be below 24 h right after a first start."""
        horizon = now - DAY_S
        totals = dict.fromkeys(FailoverMode, 0.0)
        points = self._timeline
        for i, (since, mode) in enumerate(points):
            until = points[i + 1][0] if i + 1 < len(points) else now
            span = min(until, now) - max(since, horizon)
            if span > 0:
                totals[mode] += span
        return totals

    # -- internals ---------------------------------------------------------------------------

    def _transition(self, to_mode: FailoverMode, reason: str, *, force: bool = False) -> Transition:
        # Callers only ask for transitions in enabled mode; reset() is the one forced record.
        assert self.enabled or force, "smart failover disabled: no transitions"
        now = self._clock()
        record = Transition(self.server_id, self._mode, to_mode, reason, now)
        self._mode = to_mode
        self._state_since = now
        self._last_reason = reason
        self._transitions.append(record)
        self._timeline.append((now, to_mode))
        self._prune(now)
        level = logging.WARNING if _is_failover(record) else logging.INFO
        log.log(
            level,
            "failover %s: %s -> %s (%s)",
            self.server_id,
            record.from_mode,
            to_mode,
            reason,
        )
        if self._on_transition is not None:
            try:
                self._on_transition(record)
            except Exception:
                log.exception("failover %s: on_transition hook failed", self.server_id)
        return record

    def _prune(self, now: float) -> None:
        horizon = now - DAY_S
        self._transitions = [t for t in self._transitions if t.at >= horizon]
        # Keep the last point at or before the horizon: it says which mode was in force then.
        keep_from = 0
        for i, (since, _mode) in enumerate(self._timeline):
            if since <= horizon:
                keep_from = i
        if keep_from:
            del self._timeline[:keep_from]


def _is_failover(t: Transition) -> bool:
    """An automatic fall-back from webhook to polling; an operator reset is not a failover."""
    return (
        t.from_mode is FailoverMode.WEBHOOK
        and t.to_mode is FailoverMode.POLLING
        and t.reason != RESET_REASON
    )


class FailoverManager:
    """One FailoverMachine per known server id, all sharing thresholds, flag, clock and hook."""

    def __init__(
        self,
        server_ids: Iterable[str],
        thresholds: FailoverThresholds | None = None,
        *,
        enabled: bool = True,
        clock: Clock = time.time,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self._machines: dict[str, FailoverMachine] = {}
        for server_id in server_ids:
            if server_id in self._machines:
                raise ValueError(f"duplicate server id {server_id!r} for failover")
            self._machines[server_id] = FailoverMachine(
                server_id, thresholds, enabled=enabled, clock=clock, on_transition=on_transition
            )

    @property
    def server_ids(self) -> tuple[str, ...]:
        return tuple(self._machines)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._machines

    def get(self, server_id: str) -> FailoverMachine:
        try:
            return self._machines[server_id]
        except KeyError:
            known = ", ".join(sorted(self._machines)) or "none"
            raise KeyError(f"no failover state for server {server_id!r} (known: {known})") from None

    def get_status(self, server_id: str) -> FailoverStatus:
        return self.get(server_id).status()

    def all_status(self) -> list[FailoverStatus]:
        return [self._machines[sid].status() for sid in sorted(self._machines)]

    def seed_history(self, transitions: Iterable[Transition]) -> int:
        """Distribute persisted transitions to their machines; returns how many were skipped
        because their server is no longer configured."""
        by_server: dict[str, list[Transition]] = {}
        skipped = 0
        for t in transitions:
            if t.server_id in self._machines:
                by_server.setdefault(t.server_id, []).append(t)
            else:
                skipped += 1
        for server_id, records in by_server.items():
            self._machines[server_id].seed_history(records)
        return skipped
