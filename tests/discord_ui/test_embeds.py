"""Round post and session embeds: Discord limits, splitting, escaping, footers."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from bot.discord_ui.embeds import group_for_messages, round_post_embeds
from bot.discord_ui.embeds_session import (
    paginate,
    session_maps_embeds,
    session_summary_embeds,
    session_weapons_embeds,
)
from bot.discord_ui.models import PlayerRoundPoint, RoundPostData, WeaponLine
from tests.discord_ui.factories import (
    assert_within_limits,
    big_round,
    code_lines,
    player,
    r2_of,
    rnd,
    session,
)

TZ = ZoneInfo("Europe/Ljubljana")


def prose(embeds: list) -> str:
    """Descriptions and non-code field values: where markdown would render."""
    parts = [e.description or "" for e in embeds]
    parts += [f.value for e in embeds for f in e.fields if not f.value.startswith("```")]
    parts += [f.name for e in embeds for f in e.fields]
    return "\n".join(parts)


def test_full_server_round_splits_without_dropping_anyone() -> None:
    data = big_round(64)
    embeds = round_post_embeds(data, TZ)
    assert len(embeds) >= 2
    assert_within_limits(embeds)
    assert sum(len(e) for e in embeds) > 6000  # it really needed splitting
    lines = code_lines(embeds)
    for i in range(64):
        rows = [line for line in lines if f"Player{i:02d}" in line]
        assert len(rows) == 2, (i, rows)  # team table + both-round group table
    titles = [e.title for e in embeds]
    assert titles[0] == "etl_frostbite · Round 2"
    assert all(t.endswith("(cont.)") for t in titles[1:])
    footers = [e.footer.text for e in embeds]
    assert footers[-1].endswith(f"part {len(embeds)}/{len(embeds)}")


def test_names_cannot_break_the_layout() -> None:
    embeds = round_post_embeds(big_round(64), TZ)
    for e in embeds:
        for f in e.fields:
            if f.value.startswith("```"):
                assert f.value.count("`") == 6  # only the fences
                assert f.value.endswith("\n```")
    text = prose(embeds)
    assert "@everyone" not in text  # escaped with a zero-width space
    assert "@\u200beveryone" in text
    assert re.search(r"(?<!\\)\*_Player", text) is None  # markdown escaped


def test_mvp_line_names_the_best_dpm_player() -> None:
    r = rnd()
    players = (
        player("Brick", team=1, damage_given=4335, time_played_seconds=550),
        player("Yeti", team=2, damage_given=3023, time_played_seconds=550),
    )
    embed = round_post_embeds(RoundPostData(r, players), TZ)[0]
    assert "MVP: **Brick** · 473 DPM" in (embed.description or "")
    assert "Allies attacked, Axis defended." in (embed.description or "")
    assert "time to beat 9:10" in (embed.description or "")
    names = [f.name for f in embed.fields]
    assert names[0].startswith("Allies · attack (1)") and names[1].startswith("Axis · defence")


def test_orphan_round_says_round_1_is_missing() -> None:
    orphan = rnd(round_number=2, status="orphan_r2", time_limit="10:23", winner=2, defender=2)
    embeds = round_post_embeds(RoundPostData(orphan, (player("A", team=1),)), TZ)
    assert "Round 1 is missing, so these values are match totals" in (embeds[0].description or "")
    assert all("Map result" not in f.name for f in embeds[0].fields)


def test_paired_round_2_shows_the_stopwatch_result_both_ways() -> None:
    r1 = rnd(defender=1, winner=2, next_time_limit="9:10")
    r1_players = (player("Al", team=2), player("Bo", team=1))
    r2_players = (player("Al", team=1), player("Bo", team=2))
    for winner, want in ((2, "Defend-first team (Axis in R1) wins"), (1, "Attack-first team")):
        r2 = r2_of(r1, winner=winner, duration_seconds=480)
        embeds = round_post_embeds(RoundPostData(r2, r2_players, r1, r1_players), TZ)
        result = next(f for f in embeds[0].fields if f.name.startswith("🏆 Map result"))
        assert result.value.startswith(want)
        groups = [f.name for f in embeds[0].fields if "both rounds" in f.name]
        assert groups == [
            "Attack-first team (Allies in R1) · both rounds",
            "Defend-first team (Axis in R1) · both rounds",
        ]


def test_spectators_are_listed_separately() -> None:
    players = (player("A", team=1), player("B", team=2), player("Spec", team=3))
    embed = round_post_embeds(RoundPostData(rnd(), players), TZ)[0]
    assert any(f.name.startswith("Spectators (1)") for f in embed.fields)


def test_messages_respect_the_per_message_total() -> None:
    embeds = round_post_embeds(big_round(64), TZ)
    messages = group_for_messages(embeds)
    assert [e for m in messages for e in m] == embeds
    for m in messages:
        assert len(m) <= 10 and sum(len(e) for e in m) <= 6000


def test_paginate() -> None:
    assert paginate(list(range(25)), 10) == [
        tuple(range(10)),
        tuple(range(10, 20)),
        tuple(range(20, 25)),
    ]
    assert paginate([], 10) == [()]
    assert paginate([1, 2], 0) == [(1,), (2,)]


def test_session_pages_have_footers_and_rank_everyone_once() -> None:
    summary = session(players=25)
    embeds = session_summary_embeds(summary, TZ, per_page=10)
    assert len(embeds) == 3
    assert_within_limits(embeds)
    assert [e.footer.text for e in embeds] == ["page 1/3", "page 2/3", "page 3/3"]
    ranks = [line.split()[0] for line in code_lines(embeds) if not line.startswith("  #")]
    ranks = [r for r in ranks if r.isdigit()]
    assert ranks == [str(i) for i in range(1, 26)]
    assert "Top performers" in [f.name for f in embeds[0].fields]
    assert "2025-03-03 21:42–23:42 CET" in (embeds[0].description or "")
    assert "1. map0 — " in (embeds[0].description or "")


def test_empty_session_still_has_a_page() -> None:
    embeds = session_summary_embeds(session(players=0, rounds=0), TZ)
    assert len(embeds) == 1 and embeds[0].footer.text == "page 1/1"
    assert_within_limits(embeds)


def test_maps_and_weapons_views_fit() -> None:
    summary = session(players=30, rounds=40)
    points = [
        PlayerRoundPoint(p.ident, p.name, False, r.id, 5, 3, 1500, 600)
        for r in summary.rounds
        for p in summary.players
    ]
    maps = session_maps_embeds(summary, points, TZ)
    assert_within_limits(maps)
    assert sum(len(e.fields) for e in maps) == 20
    assert "Top: **P0**" in maps[0].fields[0].value
    weapons = [
        WeaponLine(p.ident, p.name, False, w, 40, 150, 3, 1, 5)
        for p in summary.players
        for w in ("WS_MP40", "WS_THOMPSON", "WS_LUGER", "WS_GRENADE", "WS_K43", "WS_COLT")
    ]
    views = session_weapons_embeds(summary.info, weapons, TZ, per_page=10)
    assert_within_limits(views)
    assert views[0].fields[0].name == "Top weapons (session)"
    assert views[-1].footer.text == f"page {len(views)}/{len(views)}"


def test_emoji_names_are_measured_as_discord_counts_them() -> None:
    """Astral characters are two UTF-16 units: the limits must hold in those units."""
    from bot.discord_ui.embeds import embed_size, units

    r1 = rnd(id=10)
    names = [f"😀{i:02d}" * 5 for i in range(64)]
    r1_players = tuple(player(n, ident=f"G{i}", team=1 + i % 2) for i, n in enumerate(names))
    r2_players = tuple(player(n, ident=f"G{i}", team=2 - i % 2) for i, n in enumerate(names))
    data = RoundPostData(r2_of(r1), r2_players, r1, r1_players)
    embeds = round_post_embeds(data, TZ)
    assert_within_limits(embeds)
    for e in embeds:
        assert embed_size(e) <= 6000
        assert all(units(f.value or "") <= 1024 for f in e.fields)
