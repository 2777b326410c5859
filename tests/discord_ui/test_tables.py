"""Stat formulas, name cleaning and monospace tables (bot/discord_ui/tables.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.discord_ui import tables
from bot.discord_ui.models import WeaponLine
from tests.discord_ui.factories import player


def test_dpm_is_damage_per_minute_of_time_played() -> None:
    assert tables.dpm(4335, 550) == pytest.approx(4335 / (550 / 60))
    assert tables.dpm(1000, 0) is None
    assert tables.dpm(1000, None) is None
    assert tables.dpm(None, 600) is None
    assert tables.dpm(1000, -6) is None  # R2-only minutes can come out negative (rounding)


def test_accuracy_and_kd() -> None:
    assert tables.accuracy(25, 100) == 25
    assert tables.accuracy(3, 0) is None
    assert tables.kd_ratio(10, 4) == 2.5
    assert tables.kd_ratio(5, 0) == 5.0  # not the module's kills + 1


def test_aimed_weapons_leave_out_explosives_and_syringe() -> None:
    for w in ("WS_GRENADE", "WS_PANZERFAUST", "WS_BAZOOKA", "WS_MORTAR", "WS_MORTAR2"):
        assert w in tables.EXPLOSIVE_WEAPONS and w not in tables.AIMED_WEAPONS
    for w in ("WS_DYNAMITE", "WS_AIRSTRIKE", "WS_ARTILLERY", "WS_SATCHEL"):
        assert w not in tables.AIMED_WEAPONS
    for w in ("WS_GRENADELAUNCHER", "WS_LANDMINE", "WS_SYRINGE"):
        assert w not in tables.AIMED_WEAPONS
    for w in ("WS_MP40", "WS_THOMPSON", "WS_LUGER", "WS_COLT", "WS_K43", "WS_MG42"):
        assert w in tables.AIMED_WEAPONS
    assert "unknown_28" not in tables.AIMED_WEAPONS
    grenade = WeaponLine("A", "a", False, "WS_GRENADE", 30, 20, 2, 0, 0)
    assert grenade.accuracy is None  # hits can exceed shots for explosives
    assert WeaponLine("A", "a", False, "WS_MP40", 30, 120, 2, 0, 4).accuracy == 25


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("Brick", "Brick"),
        ("a`b```c", "a'b'''c"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # bidi override dropped
        ("zero\u200bwidth", "zerowidth"),
        ("two\nlines\ttab", "two lines tab"),
        ("\x1b[31mred\x07", "[31mred"),  # terminal escapes lose their ESC/BEL
        ("   ", "?"),
        ("", "?"),
        ("Z\u0301\u0302\u0303\u0304alg", "Z\u0301alg"),  # one combining mark per letter
    ],
)
def test_clean_name(raw: str, want: str) -> None:
    assert tables.clean_name(raw) == want


def test_clean_name_clips_by_display_width() -> None:
    assert tables.clean_name("abcdefghij", 5) == "abcd…"
    wide = tables.clean_name("日本語の名前です", 7)
    assert tables.display_width(wide) <= 7 and wide.endswith("…")


@given(st.text(max_size=40), st.integers(min_value=2, max_value=30))
def test_clean_name_never_breaks_a_code_block(raw: str, width: int) -> None:
    out = tables.clean_name(raw, width)
    assert out and "`" not in out and "\n" not in out
    assert tables.display_width(out) <= width


def test_format_table_aligns_columns_with_wide_characters() -> None:
    lines = tables.format_table(("Name", "K"), [("日本", "12"), ("ab", "3")], "lr")
    assert lines == ["Name  K", "日本 12", "ab    3"]
    widths = {tables.display_width(line) for line in lines}
    assert widths == {7}


def test_clock_round_trip() -> None:
    assert tables.parse_clock("9:10") == 550
    assert tables.parse_clock("71:23") == 71 * 60 + 23
    assert tables.parse_clock("garbage") is None
    assert tables.fmt_clock(550) == "9:10"
    assert tables.fmt_clock(3725) == "1:02:05"
    assert tables.fmt_clock(None) == "?"
    assert tables.fmt_minutes(3900) == "1h05"


def test_mvp_by_dpm_then_kills_humans_first() -> None:
    a = player("A", damage_given=3000, kills=10)
    b = player("B", damage_given=3000, kills=12)  # same DPM, more kills
    bot = player("[BOT]X", is_bot=True, damage_given=9000)
    assert tables.pick_mvp([a, b, bot]) is b
    assert tables.pick_mvp([bot]) is bot  # bots only when no human played
    assert tables.pick_mvp([]) is None


def test_mvp_needs_a_fair_share_of_the_time() -> None:
    regular = player("Regular", damage_given=3000, time_played_seconds=600)
    sprinter = player("Sprinter", damage_given=800, time_played_seconds=60)  # 800 DPM
    assert tables.pick_mvp([regular, sprinter]) is regular


def test_round_table_has_every_column() -> None:
    t = tables.round_table([player("Brick", kills=13, deaths=2, damage_given=4335)])
    assert t.headers == ("Name", "K/D", "DMG", "RCV", "DPM", "ACC", "HS", "REV", "GIB")
    assert t.rows[0][:5] == ("Brick", "13/2", "4335", "1500", "434")
    assert t.rows[0][5] == "25%"


def test_embed_tables_stay_narrow() -> None:
    """About 56 columns fit in an embed code block before Discord wraps."""
    p = player("M" * 40, kills=199, deaths=188, damage_given=99999, damage_received=99999)
    for table in (tables.round_table([p]), tables.session_table([p], start_rank=100)):
        assert max(tables.display_width(line) for line in table.lines()) <= 58
