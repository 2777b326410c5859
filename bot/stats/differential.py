"""Round 2 → R2-only values (stats-format.md §5).

An R2 file holds R1+R2 for the cumulative group (every weapon column and the
CUMULATIVE_FIELDS) and R2 alone for the rest. Per player, paired by
PlayerStats.key (humans: GUID8, bots: GUID8 + name):

* in both files, nothing went down: cumulative group = R2 - R1, R2-only group
  copied, alive percent through alive minutes, source "differential";
* any per-weapon column, any cumulative field, or ROUNDS (R2 <= R1) went down:
  the session restarted, the R2 line is already R2-only: source "r2_file";
* only in R2: source "r2_file"; only in R1: absent.

Negative differences are never clamped (they are what detects a restart).

Derived fields, which mix rounds in the file, are recomputed from the R2-only
values with the module's own formulas (one decimal, half up):
  kd_ratio        kills / deaths, kills + 1 with 0 deaths (module quirk, kept so
                  R1 and R2-only rows mean the same);
  tank_ratio      (damage received / deaths) / 130 when damage received > 1000
                  and the ratio > 3, else 0.0; None with 0 deaths and > 1000
                  damage received (the module's value is undefined there);
  time_dead_ratio 100 * dead minutes / minutes played once minutes played > 2,
                  else 0.0;
  dpm_module      None: unreliable in the source (§2.3); compute DPM from
                  damage_given and time_played_minutes instead.
Any input unknown (None) makes the derived value None.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from operator import attrgetter

from bot.stats.model import CUMULATIVE_FIELDS, PlayerStats, Round, StatsFileError, WeaponStats

# alive_percent is handled through alive minutes, not subtracted.
_SUBTRACTED = tuple(sorted(CUMULATIVE_FIELDS))
_CUMULATIVE_VALUES = attrgetter(*_SUBTRACTED)
# Every init field of PlayerStats, in order: a positional copy is ~5x cheaper
# than dataclasses.replace.
_ALL_VALUES = attrgetter(*(f.name for f in fields(PlayerStats) if f.init))


def _round1(x: float) -> float:
    """One decimal, half up, like the module's writer."""
    return math.floor(x * 10 + 0.5) / 10


def headers_pair(r2: Round, r1: Round) -> bool:
    """The §5 header check: R2 field 6 equals R1 field 7 character for character,
    same map (case-insensitive), and the rounds are really 2 and 1."""
    return (
        r2.round_number == 2
        and r1.round_number == 1
        and r2.time_limit == r1.next_time_limit
        and r2.map_name.casefold() == r1.map_name.casefold()
    )


def _went_down(p2: PlayerStats, p1: PlayerStats) -> bool:
    """True when any counter of the R1 line is above the R2 line (a restart)."""
    if p2.rounds <= p1.rounds:
        return True
    w2s = p2.weapons
    for name, w1 in p1.weapons.items():
        w2 = w2s.get(name)
        if w2 is None:
            if w1.hits or w1.shots or w1.kills or w1.deaths or w1.headshots:
                return True
        elif (
            w2.hits < w1.hits
            or w2.shots < w1.shots
            or w2.kills < w1.kills
            or w2.deaths < w1.deaths
            or w2.headshots < w1.headshots
        ):
            return True
    for v1, v2 in zip(_CUMULATIVE_VALUES(p1), _CUMULATIVE_VALUES(p2), strict=True):
        if v1 is not None and v2 is not None and v2 < v1:
            return True
    return False


def _weapon_diff(p2: PlayerStats, p1: PlayerStats) -> dict[str, WeaponStats]:
    w1s = p1.weapons
    out: dict[str, WeaponStats] = {}
    for name, w2 in p2.weapons.items():
        w1 = w1s.get(name)
        if w1 is None:
            diff = WeaponStats(w2.hits, w2.shots, w2.kills, w2.deaths, w2.headshots)
        else:
            diff = WeaponStats(
                w2.hits - w1.hits,
                w2.shots - w1.shots,
                w2.kills - w1.kills,
                w2.deaths - w1.deaths,
                w2.headshots - w1.headshots,
            )
        # Like the mask in the file: only weapons with some activity get a group.
        if diff.hits or diff.shots or diff.kills or diff.deaths or diff.headshots:
            out[name] = diff
    return out


def _alive_percent(p2: PlayerStats, p1: PlayerStats, minutes: float | None) -> float | None:
    """R2-only alive percent via alive minutes (percent x minutes / 100).

    Clamped to 0..100: both inputs are rounded to 0.1, so a short round can
    produce noise like 103 %. (Counters are never clamped.)
    """
    a2, a1 = p2.alive_percent, p1.alive_percent
    t2, t1 = p2.time_played_minutes, p1.time_played_minutes
    if a2 is None or a1 is None or t2 is None or t1 is None or not minutes or minutes <= 0:
        return None
    alive = a2 * t2 / 100 - a1 * t1 / 100
    return _round1(min(100.0, max(0.0, 100 * alive / minutes)))


def recompute_derived(p: PlayerStats) -> None:
    """Set the derived fields from the player's own values (see module doc)."""
    kills, deaths, received = p.kills, p.deaths, p.damage_received
    p.dpm_module = None
    p.kd_ratio = _round1(kills / deaths) if deaths else float(kills + 1)
    if received is None:
        p.tank_ratio = None
    elif received <= 1000:
        p.tank_ratio = 0.0
    elif not deaths:
        p.tank_ratio = None
    else:
        ratio = received / deaths / 130
        p.tank_ratio = _round1(ratio) if ratio > 3 else 0.0
    minutes, dead = p.time_played_minutes, p.time_dead_minutes
    if minutes is None or dead is None:
        p.time_dead_ratio = None
    else:
        p.time_dead_ratio = _round1(100 * dead / minutes) if minutes > 2 else 0.0


def _clone(p: PlayerStats, source: str, weapons: dict[str, WeaponStats]) -> PlayerStats:
    """A copy of `p` with new weapons and source (faster than dataclasses.replace)."""
    out = PlayerStats(*_ALL_VALUES(p))
    out.weapons = weapons
    out.source = source
    return out


def _subtract(p2: PlayerStats, p1: PlayerStats) -> PlayerStats:
    out = _clone(p2, "differential", _weapon_diff(p2, p1))
    values = zip(_SUBTRACTED, _CUMULATIVE_VALUES(p1), _CUMULATIVE_VALUES(p2), strict=True)
    for field, v1, v2 in values:
        setattr(out, field, None if v1 is None or v2 is None else v2 - v1)
    if out.time_played_minutes is not None:
        # both inputs have one decimal: drop the float noise of the subtraction
        out.time_played_minutes = round(out.time_played_minutes, 1)
    out.alive_percent = _alive_percent(p2, p1, out.time_played_minutes)
    recompute_derived(out)
    return out


def _copy(p: PlayerStats, source: str) -> PlayerStats:
    """An independent copy (weapons included) with a new source."""
    weapons = {
        name: WeaponStats(w.hits, w.shots, w.kills, w.deaths, w.headshots)
        for name, w in p.weapons.items()
    }
    return _clone(p, source, weapons)


def _guid_fallback(
    p2: PlayerStats, unmatched_r1: dict[str, PlayerStats], r2_same_guid: int
) -> PlayerStats | None:
    """R1 line of a human whose key did not match.

    Human keys carry the name only when a GUID8 collided within one file, so a
    human can be "GUID" in one file and "GUID:name" in the other: match on the
    GUID8, preferring the same name, else the only candidate on both sides.
    """
    candidates = [p for p in unmatched_r1.values() if not p.is_bot and p.guid == p2.guid]
    same_name = [p for p in candidates if p.name == p2.name]
    if len(same_name) == 1:
        return same_name[0]
    if len(candidates) == 1 and r2_same_guid == 1:
        return candidates[0]
    return None


def pair_players(r2: Round, r1: Round) -> list[tuple[PlayerStats, PlayerStats | None]]:
    """Each R2 player with its R1 line (None: not in R1), in R2 order.

    Exact key matches are taken first, so the GUID8 fallback can never steal
    an R1 line that another R2 player matches exactly.
    """
    unmatched = {p.key: p for p in r1.players}
    matched: dict[int, PlayerStats] = {}
    for i, p2 in enumerate(r2.players):
        p1 = unmatched.pop(p2.key, None)
        if p1 is not None:
            matched[i] = p1
    human_guids = [p.guid for p in r2.players if not p.is_bot]
    for i, p2 in enumerate(r2.players):
        if i in matched or p2.is_bot:
            continue
        p1 = _guid_fallback(p2, unmatched, human_guids.count(p2.guid))
        if p1 is not None:
            matched[i] = unmatched.pop(p1.key)
    return [(p2, matched.get(i)) for i, p2 in enumerate(r2.players)]


def round2_only(r2: Round, r1: Round) -> Round:
    """A new Round holding R2-only values (inputs are not modified)."""
    if r2.round_number != 2 or r1.round_number != 1:
        raise StatsFileError(
            f"differential needs an R2 and an R1, got rounds "
            f"{r2.round_number} and {r1.round_number}"
        )
    if r2.map_name.casefold() != r1.map_name.casefold():
        raise StatsFileError(f"map mismatch: R2 {r2.map_name!r}, R1 {r1.map_name!r}")
    players = [
        _copy(p2, "r2_file") if p1 is None or _went_down(p2, p1) else _subtract(p2, p1)
        for p2, p1 in pair_players(r2, r1)
    ]
    return replace(
        r2,
        players=players,
        rejected_lines=list(r2.rejected_lines),
        status="paired",
        paired_r1=r1.file.basename,
    )


def mark_orphan(r2: Round) -> Round:
    """A copy of an R2 without its R1: cumulative values kept, flagged unsplittable.

    Players get source "orphan", except those whose ROUNDS is 0: their stats
    session began after R2 started (ROUNDS counts the round starts a session
    has seen), so their line is already R2-only: source "r2_file". ROUNDS 1 is
    ambiguous (late R1 joiner, cumulative, or reconnect in the break, R2-only)
    and stays "orphan".
    """
    players = [_copy(p, "r2_file" if p.rounds == 0 else "orphan") for p in r2.players]
    return replace(
        r2,
        players=players,
        rejected_lines=list(r2.rejected_lines),
        status="orphan_r2",
        paired_r1=None,
    )
