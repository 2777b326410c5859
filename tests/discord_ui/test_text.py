"""Terminal renderers: same content as the embeds, plain text, safe names."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.discord_ui.models import RoundPostData, WeaponLine
from bot.discord_ui.text import round_post_text, session_summary_text, session_weapons_text
from tests.discord_ui.factories import big_round, player, rnd, session

TZ = ZoneInfo("Europe/Ljubljana")


def test_round_text_has_result_teams_and_match_totals() -> None:
    out = round_post_text(big_round(64), TZ)
    assert out.startswith("etl_frostbite · Round 2 — EU #1 · 2025-03-03 21:54 CET\n")
    assert "Allies attacked, Axis defended." in out
    assert "Map result (stopwatch)" in out
    assert "Attack-first team (Allies in R1) wins the map: their 9:10 was not beaten." in out
    assert "Defend-first team (Axis in R1) · both rounds" in out
    for i in range(64):  # everyone, in the team table and the group totals
        assert out.count(f"Player{i:02d}") >= 2
    assert "**" not in out and "```" not in out and "`" not in out  # no Discord markup


def test_round_text_orphan_note_and_terminal_safety() -> None:
    orphan = rnd(round_number=2, status="orphan_r2", time_limit="10:23")
    nasty = player("\x1b[2J\x1b]0;pwned\x07Evil\u202e", team=1)
    out = round_post_text(RoundPostData(orphan, (nasty, player("Ok", team=2))), TZ)
    assert "Round 1 is missing, so these values are match totals (R1 + R2)." in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "MVP:" in out


def test_session_text_lists_everyone_with_wide_columns() -> None:
    summary = session(players=25, rounds=4)
    out = session_summary_text(summary, TZ)
    assert out.startswith("Last session · EU #1 · 2025-03-03 21:42–23:42 CET\n")
    assert "4 rounds · 2 maps · 25 players" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("# Name"))
    assert header.split() == [
        "#",
        "Name",
        "K",
        "D",
        "K/D",
        "DMG",
        "RCV",
        "DPM",
        "ACC",
        "HS",
        "REV",
        "TIME",
    ]
    for i in range(25):
        assert f" P{i} " in out
    assert "Top performers" in out and "1. map0 — " in out


def test_weapons_text() -> None:
    summary = session(players=2)
    weapons = [
        WeaponLine(p.ident, p.name, False, "WS_MP40", 40, 160, 3, 0, 5) for p in summary.players
    ]
    out = session_weapons_text(summary.info, weapons, TZ)
    assert "Top weapons" in out and "MP40" in out and "25%" in out
