"""The wording, and the plain-text renderers for the terminal.

The sentences below (round outcome, stopwatch result, map lines, times) carry no
markup and no player names, so the embeds use them as they are and the
terminal renderers (`python -m bot last-session`, the demo) print them next to
the same tables as the embeds, in their wide form. Names are passed through
tables.clean_name, which also strips terminal control sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.discord_ui import tables
from bot.discord_ui.models import (
    ALLIES,
    AXIS,
    SPECTATOR,
    Match,
    PlayerRoundPoint,
    PlayerStatLine,
    RoundInfo,
    RoundPostData,
    SessionInfo,
    SessionSummary,
    StopwatchResult,
    WeaponLine,
    combine_points,
    match_groups,
    side_name,
    stopwatch_result,
    top_performers,
)

UTC = ZoneInfo("UTC")
ORPHAN_NOTE = "Round 1 is missing, so these values are match totals (R1 + R2)."

# --- wording --------------------------------------------------------------------


def local_time(when: datetime, tz: ZoneInfo | None) -> str:
    """'2025-03-03 21:42 CET' in the server's zone (UTC when none is given)."""
    local = when.astimezone(tz or UTC)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def session_period(info: SessionInfo, tz: ZoneInfo) -> str:
    """'2025-03-03 21:42–22:54 CET' (the end date too when it crosses midnight)."""
    start, end = info.started_at.astimezone(tz), info.ended_at.astimezone(tz)
    tail = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M}–{tail} {end.tzname()}"


def round_outcome_lines(r: RoundInfo) -> list[str]:
    """Who attacked, and whether the objective was done (R1: the time to beat or a
    full hold; R2: whether the attackers beat the clock set by R1)."""
    att, done = r.attackers, r.objective_done
    if att is None:
        return ["Sides unknown (no defender recorded)."]
    lines = [f"{side_name(att)} attacked, {side_name(r.defender)} defended."]
    if r.round_number == 1 and done:
        lines.append(f"Objective done: time to beat {_clock(r.next_time_limit)}.")
    elif r.round_number == 1 and done is False:
        lines.append(f"Full hold: {side_name(r.defender)} held the full {r.time_limit}.")
    elif done:
        beat_in = f" in {tables.fmt_clock(r.duration_seconds)}" if r.duration_seconds else ""
        lines.append(f"Objective done: {side_name(att)} beat the clock ({r.time_limit}){beat_in}.")
    elif done is False:
        lines.append(f"{side_name(r.defender)} held: the clock ({r.time_limit}) ran out.")
    else:
        lines.append("No result: the round ended without a winner.")
    return lines


def _clock(text: str) -> str:
    seconds = tables.parse_clock(text)
    return tables.fmt_clock(seconds) if seconds is not None else text


def duration_line(r: RoundInfo) -> str:
    early = " (ended early by a map change)" if r.aborted else ""
    return f"Duration {tables.fmt_clock(r.duration_seconds)}{early}"


def group_label(result: StopwatchResult, group: str) -> str:
    """'Attack-first team (Allies in R1)' / 'Defend-first team (Axis in R1)'."""
    side = result.first_attackers if group == "first" else 3 - result.first_attackers
    kind = "Attack-first" if group == "first" else "Defend-first"
    return f"{kind} team ({side_name(side)} in R1)"


def stopwatch_summary(result: StopwatchResult) -> str:
    set_time = tables.fmt_clock(result.r1_time) if result.r1_time is not None else None
    if result.winner == "second":
        target = f"beat {set_time}" if set_time else "did the objective after a full hold"
        when = tables.fmt_clock(result.r2_time)
        return f"{group_label(result, 'second')} wins the map: {target} in {when}."
    if result.winner == "first":
        return f"{group_label(result, 'first')} wins the map: their {set_time} was not beaten."
    if result.winner == "draw":
        return "Draw: both teams held the full time."
    return "No map result: a round ended without a winner."


def stopwatch_times(result: StopwatchResult) -> str:
    r1 = tables.fmt_clock(result.r1_time) if result.r1_time is not None else "full hold"
    r2 = tables.fmt_clock(result.r2_time) if result.r2_time is not None else "not done"
    return f"R1 attackers: {r1} · R2 attackers: {r2}"


def match_summary(m: Match) -> str:
    if m.r1 is not None and m.r2 is not None:
        res = m.result
        return stopwatch_summary(res) if res else "No map result: sides unknown."
    if m.r2 is not None:
        return "Round 1 missing. " + " ".join(round_outcome_lines(m.r2)[1:])
    assert m.r1 is not None
    return "Round 2 not played. " + " ".join(round_outcome_lines(m.r1)[1:])


def match_line(index: int, m: Match) -> str:
    return f"{index}. {m.map_name} — {match_summary(m)}"


def match_rounds_line(m: Match) -> str:
    """'R1 9:09 · R2 9:10' with each round's duration."""
    parts = []
    for r in m.rounds:
        note = " (R1 missing)" if r.is_orphan else ""
        parts.append(f"R{r.round_number} {tables.fmt_clock(r.duration_seconds)}{note}")
    return " · ".join(parts)


def mvp_stats(p: PlayerStatLine) -> str:
    return f"{tables.fmt_num(p.dpm)} DPM · {p.kills}/{p.deaths} K/D · {p.damage_given or 0} dmg"


def team_title(r: RoundInfo, side: int, team: Sequence[PlayerStatLine]) -> str:
    """'Allies · attack (6) · 45 kills'."""
    role = {r.attackers: " · attack", r.defender: " · defence"}.get(side, "")
    role = "" if side == SPECTATOR else role
    return f"{side_name(side)}{role} ({len(team)}) · {sum(p.kills for p in team)} kills"


def team_sides(r: RoundInfo) -> list[int]:
    """Attackers first, then defenders, then spectators."""
    first = [s for s in (r.attackers, r.defender) if s is not None]
    return [*first, *(s for s in (AXIS, ALLIES) if s not in first), SPECTATOR]


# --- terminal renderers -------------------------------------------------------------


def _block(title: str, lines: Sequence[str]) -> list[str]:
    return ["", title, *("  " + line for line in lines)]


def round_post_text(data: RoundPostData, tz: ZoneInfo | None = None) -> str:
    """The round post as plain text: same content as round_post_embeds."""
    r = data.round
    server = tables.clean_name(r.server_name)
    out = [f"{r.map_name} · Round {r.round_number} — {server} · {local_time(r.played_at, tz)}"]
    if r.is_orphan:
        out.append(ORPHAN_NOTE)
    out += [*round_outcome_lines(r), duration_line(r)]
    mvp = tables.pick_mvp(data.players)
    if mvp is not None:
        out.append(f"MVP: {tables.clean_name(mvp.name)} · {mvp_stats(mvp)}")
    order = sorted(data.players, key=tables.dpm_order_key)
    for side in team_sides(r):
        team = [p for p in order if p.team == side]
        if team or side != SPECTATOR:
            table = tables.round_table(team, tables.TEXT_NAME_WIDTH).lines()
            out += _block(team_title(r, side, team), table if team else ["no players"])
    if r.round_number == 2 and data.r1 is not None:
        out += _match_text(data)
    if data.awards:
        lines = [f"{a.title}: {tables.clean_name(a.player)} ({a.value})" for a in data.awards]
        out += _block("Awards", lines)
    return "\n".join(out) + "\n"


def _match_text(data: RoundPostData) -> list[str]:
    assert data.r1 is not None
    result = stopwatch_result(data.r1, data.round)
    if result is None:
        return _block("Map result", ["No map result: sides unknown."])
    out = _block("Map result (stopwatch)", [stopwatch_summary(result), stopwatch_times(result)])
    groups = match_groups(data.r1, data.r1_players, data.players)
    for key, group in zip(("first", "second"), groups, strict=True):
        if group:
            table = tables.match_table(group, tables.TEXT_NAME_WIDTH).lines()
            out += _block(f"{group_label(result, key)} · both rounds", table)
    return out


def session_summary_text(
    summary: SessionSummary,
    tz: ZoneInfo,
    points: Sequence[PlayerRoundPoint] = (),
) -> str:
    """`!last_session` for the terminal: header, maps with results (and the top
    player per map when `points` are given), top performers, every player."""
    info = summary.info
    out = [
        f"Last session · {tables.clean_name(info.server_name)} · {session_period(info, tz)}",
        f"{len(summary.rounds)} rounds · {len(summary.matches)} maps"
        f" · {len(summary.players)} players",
    ]
    by_round: dict[int, list[PlayerRoundPoint]] = {}
    for p in points:
        by_round.setdefault(p.round_id, []).append(p)
    maps = []
    for i, m in enumerate(summary.matches, 1):
        maps.append(f"{match_line(i, m)} [{match_rounds_line(m)}]")
        top = tables.pick_mvp(combine_points(p for r in m.rounds for p in by_round.get(r.id, ())))
        if top is not None:
            maps.append(f"   top: {tables.clean_name(top.name)} · {tables.fmt_num(top.dpm)} DPM")
    out += _block("Maps", maps or ["no rounds"])
    tops = [
        f"{t.title}: {tables.clean_name(t.player.name)} ({t.value})"
        for t in top_performers(summary.players)
    ]
    if tops:
        out += _block("Top performers", tops)
    table = tables.session_table(summary.players, wide=True).lines()
    out += _block("Players (by DPM)", table if summary.players else ["no player stats"])
    return "\n".join(out) + "\n"


def session_weapons_text(info: SessionInfo, weapons: Sequence[WeaponLine], tz: ZoneInfo) -> str:
    """Top weapons of the session, then every player's weapons."""
    out = [f"Weapons · {tables.clean_name(info.server_name)} · {session_period(info, tz)}"]
    out += _block("Top weapons", tables.top_weapons_table(weapons).lines())
    players: dict[str, list[WeaponLine]] = {}
    for w in weapons:
        players.setdefault(w.ident, []).append(w)
    for ws in sorted(players.values(), key=lambda ws: (-sum(w.kills for w in ws), ws[0].name)):
        out += _block(tables.clean_name(ws[0].name), tables.weapon_table(ws).lines())
    return "\n".join(out) + "\n"
