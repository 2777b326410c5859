"""What the presentation layer shows: small frozen dataclasses filled by
bot/db/sessions_query.py, plus the pure rules that read a round's result
(who attacked, was the objective done, who won the stopwatch map).

Sides: 1 Axis, 2 Allies, 3 Spectator. `defender` is the side that defends the
map in BOTH rounds; the player groups swap sides between R1 and R2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.discord_ui import tables

AXIS, ALLIES, SPECTATOR = 1, 2, 3
SIDE_NAMES = {AXIS: "Axis", ALLIES: "Allies", SPECTATOR: "Spectators"}


def side_name(side: int | None) -> str:
    return SIDE_NAMES.get(side or 0, "?")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    server_id: str
    server_name: str
    started_at: datetime
    ended_at: datetime
    round_count: int


@dataclass(frozen=True, slots=True)
class RoundInfo:
    id: int
    server_id: str
    server_name: str  # our registry's name for the server
    host_name: str  # the header's host name, colour codes removed
    map_name: str
    round_number: int
    status: str  # complete | paired | orphan_r2
    r1_round_id: int | None
    defender: int
    winner: int  # 0: no winner (round cut short)
    time_limit: str  # R1: map time limit; R2: the time to beat, set by R1
    next_time_limit: str  # R1: the time to beat; R2: garbage, never shown
    duration_seconds: int | None
    aborted: bool
    played_at: datetime
    gaming_session_id: int | None = None

    @property
    def is_orphan(self) -> bool:
        return self.status == "orphan_r2"

    @property
    def attackers(self) -> int | None:
        return attackers(self.defender)

    @property
    def objective_done(self) -> bool | None:
        """True: attackers did the objective (R2: beat the clock); False: the
        defenders held; None: no winner recorded."""
        att = self.attackers
        if att is None or self.winner not in (AXIS, ALLIES):
            return None
        return self.winner == att


@dataclass(frozen=True, slots=True)
class PlayerStatLine:
    """One player's numbers: for one round (team set) or summed over rounds
    (team 0). `ident` is the GUID8 for humans, the player_key for bots."""

    ident: str
    name: str
    is_bot: bool
    kills: int
    deaths: int
    damage_given: int | None = None
    damage_received: int | None = None
    time_played_seconds: int | None = None
    aimed_hits: int = 0
    aimed_shots: int = 0
    headshot_kills: int | None = None
    revives_given: int | None = None
    gibs: int | None = None
    team: int = 0
    rounds: int = 1
    player_key: str = ""

    @property
    def dpm(self) -> float | None:
        return tables.dpm(self.damage_given, self.time_played_seconds)

    @property
    def accuracy(self) -> float | None:
        return tables.accuracy(self.aimed_hits, self.aimed_shots)

    @property
    def kd(self) -> float:
        return tables.kd_ratio(self.kills, self.deaths)


def _add(a: int | None, b: int | None) -> int | None:
    """Unknown + unknown stays unknown; unknown + n = n."""
    if a is None:
        return b
    return a if b is None else a + b


_SUMMED = (
    "kills",
    "deaths",
    "damage_given",
    "damage_received",
    "time_played_seconds",
    "aimed_hits",
    "aimed_shots",
    "headshot_kills",
    "revives_given",
    "gibs",
    "rounds",
)


def combine(lines: Sequence[PlayerStatLine]) -> PlayerStatLine:
    """One player's lines added up (e.g. R1 + R2-only = match totals); the name
    and bot flag of the last line win (players rename between rounds)."""
    sums: dict[str, int | None] = {}
    for name in _SUMMED:
        total: int | None = None
        for line in lines:
            total = _add(total, getattr(line, name))
        sums[name] = total
    last = lines[-1]
    return PlayerStatLine(
        ident=last.ident, name=last.name, is_bot=last.is_bot, player_key=last.player_key, **sums
    )  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AwardLine:
    title: str
    player: str
    value: str


@dataclass(frozen=True, slots=True)
class RoundPostData:
    """Everything one round post needs. For a paired R2, `r1`/`r1_players` hold
    Round 1 so the match result and both-round totals can be shown."""

    round: RoundInfo
    players: tuple[PlayerStatLine, ...]
    r1: RoundInfo | None = None
    r1_players: tuple[PlayerStatLine, ...] = ()
    awards: tuple[AwardLine, ...] = ()


@dataclass(frozen=True, slots=True)
class WeaponLine:
    ident: str
    name: str
    is_bot: bool
    weapon: str  # WS_* name
    hits: int
    shots: int
    kills: int
    deaths: int
    headshots: int

    @property
    def accuracy(self) -> float | None:
        return tables.weapon_accuracy(self.weapon, self.hits, self.shots)


@dataclass(frozen=True, slots=True)
class PlayerRoundPoint:
    """One player in one (non-orphan) round of a session, for graphs and the
    per-map view."""

    ident: str
    name: str
    is_bot: bool
    round_id: int
    kills: int
    deaths: int
    damage_given: int | None
    time_played_seconds: int | None

    @property
    def dpm(self) -> float | None:
        return tables.dpm(self.damage_given, self.time_played_seconds)


def combine_points(points: Iterable[PlayerRoundPoint]) -> list[PlayerStatLine]:
    """Per-round points summed per player (e.g. over one map's rounds)."""
    lines: dict[str, list[PlayerStatLine]] = {}
    for p in points:
        line = PlayerStatLine(
            ident=p.ident,
            name=p.name,
            is_bot=p.is_bot,
            kills=p.kills,
            deaths=p.deaths,
            damage_given=p.damage_given,
            time_played_seconds=p.time_played_seconds,
        )
        lines.setdefault(p.ident, []).append(line)
    return [combine(group) for group in lines.values()]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    info: SessionInfo
    rounds: tuple[RoundInfo, ...]
    players: tuple[PlayerStatLine, ...]  # orphan R2 rows excluded, DPM order

    @property
    def matches(self) -> list[Match]:
        return group_matches(self.rounds)


# --- results -------------------------------------------------------------------


def attackers(defender: int) -> int | None:
    return 3 - defender if defender in (AXIS, ALLIES) else None


@dataclass(frozen=True, slots=True)
class StopwatchResult:
    first_attackers: int  # the side the attack-first group played in R1
    r1_time: int | None  # seconds the R1 attackers needed; None = full hold
    r2_time: int | None  # seconds the R2 attackers needed; None = did not finish
    winner: str  # "first" | "second" | "draw" | "undecided"


def stopwatch_result(r1: RoundInfo, r2: RoundInfo) -> StopwatchResult | None:
    """The map result from both rounds. R2's winner already encodes the race:
    R2 attackers win R2 only by doing the objective before the clock set by R1
    runs out. None when the sides are unknown."""
    att = r1.attackers
    if att is None:
        return None
    r1_done, r2_done = r1.objective_done, r2.objective_done
    r1_time = None
    if r1_done:
        r1_time = tables.parse_clock(r1.next_time_limit) or r1.duration_seconds
    if r2_done:
        return StopwatchResult(att, r1_time, r2.duration_seconds, "second")
    if r1_done is None or r2_done is None:
        return StopwatchResult(att, r1_time, None, "undecided")
    return StopwatchResult(att, r1_time, None, "first" if r1_done else "draw")


@dataclass(frozen=True, slots=True)
class Match:
    """One map played as R1 and/or R2 (an orphan R2 or an unfinished R1 alone)."""

    r1: RoundInfo | None
    r2: RoundInfo | None
    rounds: tuple[RoundInfo, ...] = field(default=())

    @property
    def map_name(self) -> str:
        return (self.r1 or self.r2).map_name  # type: ignore[union-attr]

    @property
    def result(self) -> StopwatchResult | None:
        if self.r1 is None or self.r2 is None:
            return None
        return stopwatch_result(self.r1, self.r2)


def group_matches(rounds: Iterable[RoundInfo]) -> list[Match]:
    """Rounds in play order folded into maps: a paired R2 joins its R1."""
    ordered = sorted(rounds, key=lambda r: (r.played_at, r.id))
    ids = {r.id for r in ordered}
    r2_of = {r.r1_round_id: r for r in ordered if r.round_number == 2 and r.r1_round_id}
    matches = []
    for r in ordered:
        if r.round_number == 1:
            r2 = r2_of.get(r.id)
            matches.append(Match(r, r2, (r, r2) if r2 else (r,)))
        elif r.r1_round_id not in ids:  # orphan, or its R1 fell into another session
            matches.append(Match(None, r, (r,)))
    return matches


def match_groups(
    r1: RoundInfo,
    r1_players: Sequence[PlayerStatLine],
    r2_players: Sequence[PlayerStatLine],
) -> tuple[list[PlayerStatLine], list[PlayerStatLine]]:
    """Both-round totals (R1 + R2-only) per player group: (attack-first,
    defend-first). A player belongs to the group of their R1 side, else of their
    R2 side (R2 side = the other R1 side); spectators in both rounds are left out."""
    first = r1.attackers
    group: dict[str, str] = {}
    for p in r2_players:
        if p.team in (AXIS, ALLIES):
            group[p.ident] = "first" if p.team != first else "second"
    for p in r1_players:
        if p.team in (AXIS, ALLIES):
            group[p.ident] = "first" if p.team == first else "second"
    lines: dict[str, list[PlayerStatLine]] = {}
    for p in (*r1_players, *r2_players):
        lines.setdefault(p.ident, []).append(p)
    totals = {ident: combine(ls) for ident, ls in lines.items() if ident in group}
    order = sorted(totals.values(), key=tables.dpm_order_key)
    return (
        [p for p in order if group[p.ident] == "first"],
        [p for p in order if group[p.ident] == "second"],
    )


@dataclass(frozen=True, slots=True)
class TopPerformer:
    title: str
    player: PlayerStatLine
    value: str


Score = Callable[[PlayerStatLine], float | None]


def _best(
    title: str, cands: Sequence[PlayerStatLine], score: Score, fmt: Callable[[float], str]
) -> TopPerformer | None:
    """The highest positive score; ties go to the better DPM order."""
    scored = [(s, p) for p in cands if (s := score(p)) is not None and s > 0]
    if not scored:
        return None
    value, who = min(scored, key=lambda sp: (-sp[0], tables.dpm_order_key(sp[1])))
    return TopPerformer(title, who, fmt(value))


def top_performers(players: Sequence[PlayerStatLine]) -> list[TopPerformer]:
    """Most kills, best DPM, most damage, most revives, best accuracy (at least
    MIN_ACCURACY_SHOTS aimed shots), best K/D (at least one kill). Humans first
    (bots only when no human played); the ratios (DPM, K/D) only among those who
    played enough (tables.eligible), so five minutes of luck cannot top them."""
    pool = [p for p in players if not p.is_bot] or list(players)
    regulars = tables.eligible(pool)
    shooters = [p for p in pool if p.aimed_shots >= tables.MIN_ACCURACY_SHOTS]
    picks = (
        _best("Most kills", pool, lambda p: p.kills, lambda v: f"{v:.0f}"),
        _best("Best DPM", regulars, lambda p: p.dpm, lambda v: f"{v:.0f}"),
        _best("Most damage", pool, lambda p: p.damage_given, lambda v: f"{v:,.0f}"),
        _best("Most revives", pool, lambda p: p.revives_given, lambda v: f"{v:.0f}"),
        _best("Best accuracy", shooters, lambda p: p.accuracy, tables.fmt_pct),
        _best("Best K/D", regulars, lambda p: p.kd if p.kills else None, lambda v: f"{v:.2f}"),
    )
    return [t for t in picks if t is not None]
