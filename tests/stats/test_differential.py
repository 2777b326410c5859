import pytest

from bot.stats import (
    StatsFileError,
    headers_pair,
    mark_orphan,
    parse_stats_file,
    round2_only,
)
from bot.stats.differential import recompute_derived
from tests.stats.builders import R1_NAME, R2_NAME, extended, player_line, stats_file

R1_HEADER = b"srv\\supply\\legacy3\\1\\1\\2\\12:00\\9:13\\552345"
R2_HEADER = b"srv\\Supply\\legacy3\\2\\1\\1\\9:13\\71:23\\550000"


def r1(*lines: bytes, header: bytes = R1_HEADER):
    return parse_stats_file(stats_file(*lines, header=header), R1_NAME)


def r2(*lines: bytes, header: bytes = R2_HEADER):
    return parse_stats_file(stats_file(*lines, header=header), R2_NAME)


R1_LINE = player_line(
    rounds=1,
    team=1,
    weapons={2: (12, 44, 1, 0, 1), 4: (50, 200, 5, 0, 4), 5: (0, 0, 0, 3, 0)},
    ext=extended(
        damage_given=2000, damage_received=1500, alive_percent="90.0",
        time_played_minutes="9.2", time_dead_minutes="0.9", xp=40, revives_given=2,
        bullets_fired=244, team_kills=1, kd_ratio="2.0",
    ),
)  # fmt: skip
R2_LINE = player_line(
    rounds=2,
    team=2,
    weapons={2: (12, 44, 1, 2, 1), 4: (50, 200, 5, 0, 4), 5: (70, 300, 6, 3, 9)},
    ext=extended(
        damage_given=4000, damage_received=3500, alive_percent="80.0",
        time_played_minutes="18.4", time_dead_minutes="1.8", xp=21, revives_given=0,
        bullets_fired=544, team_kills=1, kd_ratio="1.5", dpm_module="-3.0",
    ),
)  # fmt: skip


def test_headers_pair() -> None:
    a, b = r1(R1_LINE), r2(R2_LINE)
    assert headers_pair(b, a) is True
    assert headers_pair(a, b) is False
    other = r2(R2_LINE, header=R2_HEADER.replace(b"\\9:13\\", b"\\9:14\\"))
    assert headers_pair(other, a) is False
    other_map = r2(R2_LINE, header=R2_HEADER.replace(b"Supply", b"radar"))
    assert headers_pair(other_map, a) is False


def test_subtraction() -> None:
    first, second = r1(R1_LINE), r2(R2_LINE)
    out = round2_only(second, first)
    assert (out.status, out.paired_r1) == ("paired", R1_NAME)
    (p,) = out.players
    assert p.source == "differential"
    # frozen R1-side weapons vanish, like in a real mask; the rest is R2 - R1
    assert sorted(p.weapons) == ["WS_LUGER", "WS_THOMPSON"]
    assert p.weapons["WS_LUGER"].deaths == 2 and p.weapons["WS_LUGER"].shots == 0
    assert p.weapons["WS_THOMPSON"].kills == 6
    assert (p.kills, p.deaths) == (6, 2)
    assert (p.damage_given, p.damage_received, p.bullets_fired) == (2000, 2000, 300)
    assert p.team_kills == 0
    assert p.time_played_minutes == 9.2
    assert p.time_played_seconds == 552
    # alive minutes: 18.4 * 0.8 - 9.2 * 0.9 = 6.44 over 9.2 min -> 70 %
    assert p.alive_percent == 70.0
    # R2-only group copied as written
    assert (p.xp, p.revives_given, p.time_dead_minutes, p.team) == (21, 0, 1.8, 2)
    # derived: recomputed from R2-only values
    assert p.kd_ratio == 3.0
    assert p.dpm_module is None
    assert p.tank_ratio == 7.7  # 2000 / 2 / 130 = 7.69
    assert p.time_dead_ratio == 19.6  # 100 * 1.8 / 9.2


def test_inputs_are_not_modified() -> None:
    first, second = r1(R1_LINE), r2(R2_LINE)
    before = (repr(first), repr(second))
    out = round2_only(second, first)
    out.players[0].weapons["WS_LUGER"].deaths = 99
    assert (repr(first), repr(second)) == before
    orphan = mark_orphan(second)
    orphan.players[0].weapons["WS_LUGER"].deaths = 99
    assert repr(second) == before[1]


@pytest.mark.parametrize(
    "r2_line",
    [
        # a frozen R1-side weapon column dropped to zero: the session restarted
        R2_LINE.replace(b"12 44 1 2 1", b"0 0 0 2 0"),
        # a cumulative field went down
        R2_LINE.replace(b"\t544\t", b"\t200\t"),
        # ROUNDS not greater than in R1
        R2_LINE.replace(b"\\2\\2\\", b"\\1\\2\\"),
    ],
)
def test_restart_takes_r2_line_as_is(r2_line: bytes) -> None:
    out = round2_only(r2(r2_line), r1(R1_LINE))
    (p,) = out.players
    assert p.source == "r2_file"
    assert p.damage_given == 4000
    assert p.weapons["WS_THOMPSON"].kills == 6


def test_restart_detected_when_r2_did_more_than_r1() -> None:
    # totals and minutes both go up, only a per-weapon column reveals the restart
    restarted = R2_LINE.replace(b"50 200 5 0 4", b"49 200 5 0 4")
    (p,) = round2_only(r2(restarted), r1(R1_LINE)).players
    assert p.source == "r2_file"


def test_joined_in_r2_and_left_in_r1() -> None:
    joiner = player_line(guid="CCCCCCCC", rounds=0, team=2)
    leaver = player_line(guid="DDDDDDDD", rounds=1, team=1)
    out = round2_only(r2(R2_LINE, joiner), r1(R1_LINE, leaver))
    by_guid = {p.guid: p for p in out.players}
    assert sorted(by_guid) == ["CCCCCCCC", "EF8DAA0B"]
    assert by_guid["CCCCCCCC"].source == "r2_file"
    assert by_guid["CCCCCCCC"].damage_given == 1500


def test_unknown_r1_values_make_differences_unknown() -> None:
    old_r1 = player_line(rounds=1, ext=None, weapons={4: (1, 1, 0, 0, 0)})
    (p,) = round2_only(r2(R2_LINE), r1(old_r1)).players
    assert p.source == "differential"
    assert p.damage_given is None  # R1 value unknown: the difference is unknown
    assert p.time_played_minutes is None and p.alive_percent is None
    assert p.xp == 21


def test_bots_pair_by_guid_and_name() -> None:
    a1 = player_line(guid="OMNIBOT0", name="[BOT]Hans", weapons={4: (1, 1, 1, 0, 0)})
    b1 = player_line(guid="OMNIBOT0", name="[BOT]Fritz", weapons={4: (5, 5, 5, 0, 0)})
    a2 = player_line(guid="OMNIBOT0", name="[BOT]Hans", rounds=2, weapons={4: (2, 2, 2, 0, 0)})
    b2 = player_line(guid="OMNIBOT0", name="[BOT]Fritz", rounds=2, weapons={4: (9, 9, 9, 0, 0)})
    out = round2_only(r2(b2, a2), r1(a1, b1))
    kills = {p.name: (p.kills, p.source) for p in out.players}
    assert kills == {"[BOT]Hans": (1, "differential"), "[BOT]Fritz": (4, "differential")}


def test_renamed_human_pairs_by_guid() -> None:
    renamed = R2_LINE.replace(b"\\Brick\\", b"\\^1NewName\\")
    (p,) = round2_only(r2(renamed), r1(R1_LINE)).players
    assert (p.name, p.source, p.kills) == ("NewName", "differential", 6)


def test_guid8_collision_in_r1_only() -> None:
    other = player_line(name="Other", rounds=1, weapons={4: (1, 1, 1, 0, 0)})
    out = round2_only(r2(R2_LINE), r1(R1_LINE, other))
    (p,) = out.players
    assert (p.key, p.source, p.kills) == ("EF8DAA0B", "differential", 6)


def test_guid8_collision_in_r2_only() -> None:
    joiner = player_line(name="Other", rounds=0, team=1, weapons={4: (1, 1, 1, 0, 0)})
    out = round2_only(r2(R2_LINE, joiner), r1(R1_LINE))
    by_key = {p.key: (p.source, p.kills) for p in out.players}
    assert by_key == {"EF8DAA0B:Brick": ("differential", 6), "EF8DAA0B:Other": ("r2_file", 1)}


def test_wrong_rounds_or_maps_raise_stats_file_error() -> None:
    first, second = r1(R1_LINE), r2(R2_LINE)
    with pytest.raises(StatsFileError):
        round2_only(first, second)
    with pytest.raises(StatsFileError):
        round2_only(r2(R2_LINE, header=R2_HEADER.replace(b"Supply", b"radar")), first)


def test_mark_orphan() -> None:
    joiner = player_line(guid="CCCCCCCC", rounds=0, team=2)
    late = player_line(guid="DDDDDDDD", rounds=1, team=2)
    out = mark_orphan(r2(R2_LINE, joiner, late))
    assert (out.status, out.paired_r1) == ("orphan_r2", None)
    sources = {p.guid: p.source for p in out.players}
    assert sources == {"EF8DAA0B": "orphan", "CCCCCCCC": "r2_file", "DDDDDDDD": "orphan"}
    assert next(p for p in out.players if p.guid == "EF8DAA0B").damage_given == 4000


@pytest.mark.parametrize(
    ("kills", "deaths", "received", "kd", "tank"),
    [
        (3, 0, 759, 4.0, 0.0),  # module quirk: kills + 1 with no deaths
        (2, 8, 1557, 0.3, 0.0),  # 0.25 rounds half up, ratio 1.5 <= 3
        (7, 4, 2106, 1.8, 4.1),  # 4.05 -> 4.1
        (1, 0, 1500, 2.0, None),  # undefined tank ratio with no deaths
    ],
)
def test_recompute_derived(
    kills: int, deaths: int, received: int, kd: float, tank: float | None
) -> None:
    line = player_line(
        weapons={4: (1, 1, kills, deaths, 0)},
        ext=extended(damage_received=received, time_played_minutes="2.0"),
    )
    (p,) = r1(line).players
    recompute_derived(p)
    assert (p.kd_ratio, p.tank_ratio, p.dpm_module) == (kd, tank, None)
    assert p.time_dead_ratio == 0.0  # only filled above 2 minutes
