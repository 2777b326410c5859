"""Hand-made presentation inputs for the pure builder tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.discord_ui.models import (
    AwardLine,
    PlayerStatLine,
    RoundInfo,
    RoundPostData,
    SessionInfo,
    SessionSummary,
)

T0 = datetime(2025, 3, 3, 20, 42, 23, tzinfo=UTC)


def rnd(**kw: Any) -> RoundInfo:
    values: dict[str, Any] = {
        "id": 1,
        "server_id": "eu1",
        "server_name": "EU #1",
        "host_name": "ET:Legacy Competitive #1",
        "map_name": "etl_frostbite",
        "round_number": 1,
        "status": "complete",
        "r1_round_id": None,
        "defender": 1,
        "winner": 2,
        "time_limit": "10:00",
        "next_time_limit": "9:10",
        "duration_seconds": 550,
        "aborted": False,
        "played_at": T0,
        "gaming_session_id": 1,
    }
    values.update(kw)
    return RoundInfo(**values)


def r2_of(r1: RoundInfo, **kw: Any) -> RoundInfo:
    """The paired Round 2 of `r1` (same defender; clock = R1's time to beat)."""
    values: dict[str, Any] = {
        "id": r1.id + 1,
        "round_number": 2,
        "status": "paired",
        "r1_round_id": r1.id,
        "defender": r1.defender,
        "time_limit": r1.next_time_limit,
        "next_time_limit": "71:23",
        "played_at": r1.played_at + timedelta(minutes=12),
    }
    values.update(kw)
    return rnd(**values)


def player(name: str, **kw: Any) -> PlayerStatLine:
    values: dict[str, Any] = {
        "ident": kw.pop("ident", name.upper()[:8]),
        "name": name,
        "is_bot": False,
        "kills": 10,
        "deaths": 5,
        "damage_given": 2000,
        "damage_received": 1500,
        "time_played_seconds": 600,
        "aimed_hits": 50,
        "aimed_shots": 200,
        "headshot_kills": 2,
        "revives_given": 0,
        "gibs": 3,
        "team": 1,
    }
    values.update(kw)
    values.setdefault("player_key", values["ident"])
    return PlayerStatLine(**values)


def big_round(n: int = 64, *, round_number: int = 2) -> RoundPostData:
    """A full server: n players with maximal-width names, a paired R2 with its R1,
    and a full set of awards, so the post must split."""
    r1 = rnd(id=10)
    r2 = r2_of(r1, winner=1)
    names = [f"`*_Player{i:02d}_*`|~~>@everyone" for i in range(n)]
    r1_players = tuple(
        player(nm, ident=f"G{i:07d}", team=1 + i % 2, kills=i, damage_given=1000 + i * 97)
        for i, nm in enumerate(names)
    )
    r2_players = tuple(
        player(nm, ident=f"G{i:07d}", team=2 - i % 2, kills=i + 1, damage_given=900 + i * 13)
        for i, nm in enumerate(names)
    )
    awards = tuple(AwardLine(f"Award number {i}", names[i], f"{i}.5 percent") for i in range(48))
    return RoundPostData(r2, r2_players, r1, r1_players, awards)


def session(players: int = 25, rounds: int = 4) -> SessionSummary:
    info = SessionInfo(1, "eu1", "EU #1", T0, T0 + timedelta(hours=2), rounds)
    rs: list[RoundInfo] = []
    for i in range(rounds // 2):
        r1 = rnd(id=2 * i + 1, played_at=T0 + timedelta(minutes=30 * i), map_name=f"map{i}")
        rs += [r1, r2_of(r1, map_name=f"map{i}", winner=1 + i % 2)]
    ps = tuple(
        player(f"P{i}", ident=f"G{i:07d}", damage_given=5000 - i * 100, team=0, rounds=rounds)
        for i in range(players)
    )
    return SessionSummary(info, tuple(rs), ps)


def assert_within_limits(embeds: list[discord.Embed]) -> None:
    """Discord's embed limits, checked on every embed."""
    assert embeds
    for e in embeds:
        assert len(e) <= 6000
        assert len(e.fields) <= 25
        assert len(e.title or "") <= 256
        assert len(e.description or "") <= 4096
        assert len(e.footer.text or "") <= 2048
        for f in e.fields:
            assert 0 < len(f.name or "") <= 256
            assert 0 < len(f.value or "") <= 1024


def code_lines(embeds: list[discord.Embed]) -> list[str]:
    """Every line inside a code block of every field."""
    out: list[str] = []
    for e in embeds:
        for f in e.fields:
            value = f.value or ""
            if value.startswith("```"):
                out += value.strip("`").strip("\n").split("\n")
    return out
