import pytest

from bot.stats import StatsFileError, parse_stats_file
from bot.stats.model import EXTENDED_FIELD_NAMES
from bot.stats.parser import MAX_FILE_SIZE, WEAPON_NAMES
from tests.stats.builders import R1_NAME, R2_NAME, extended, player_line, stats_file

HEADER_R2 = b"srv\\supply\\legacy3\\2\\1\\1\\9:13\\71:23\\600000"


def parse(*lines: bytes, header: bytes | None = None, name: str = R1_NAME):
    data = stats_file(*lines) if header is None else stats_file(*lines, header=header)
    return parse_stats_file(data, name)


def test_header_fields() -> None:
    rnd = parse(player_line())
    assert rnd.server_name_raw == "^1Test ^7Server"
    assert rnd.server_name == "Test Server"
    assert rnd.map_name == "supply"
    assert rnd.config == "legacy3"
    assert (rnd.round_number, rnd.defender, rnd.winner) == (1, 1, 2)
    assert (rnd.time_limit, rnd.time_limit_seconds, rnd.next_time_limit) == ("12:00", 720, "9:13")
    assert rnd.duration_ms == 552345
    assert rnd.duration_seconds == 552
    assert rnd.aborted is False
    assert rnd.status == "complete"
    assert rnd.file.server_id == "eu1"


@pytest.mark.parametrize(
    ("field8", "duration_ms", "aborted"),
    [
        (b"\\549805", 549805, False),
        (b"\\549", 549000, False),  # older modules wrote seconds
        (b"\\7200", 7_200_000, False),
        (b"\\7201", 7201, False),
        (b"\\0", None, False),
        (b"\\-29907688", None, True),  # map change before intermission
        (b"\\junk", None, False),
        (b"", None, False),  # 8-field header
        (b"\\549805\\extra\\fields", 549805, False),
    ],
)
def test_duration_field(field8: bytes, duration_ms: int | None, aborted: bool) -> None:
    header = b"srv\\supply\\\\1\\1\\2\\12:00\\9:13" + field8
    rnd = parse(player_line(), header=header)
    assert rnd.duration_ms == duration_ms
    assert rnd.aborted is aborted
    assert rnd.config == ""


def test_unknown_duration_falls_back_to_longest_player_time() -> None:
    header = b"srv\\supply\\\\1\\1\\2\\12:00\\9:13\\-5"
    rnd = parse(player_line(ext=extended(time_played_minutes="7.5")), header=header)
    assert rnd.duration_seconds == 450


@pytest.mark.parametrize(
    "header",
    [
        b"srv\\supply\\",
        b"srv\\supply\\cfg\\1\\1\\2\\12:00",  # 7 fields
        b"srv\\supply\\cfg\\x\\1\\2\\12:00\\9:13\\1",
        b"srv\\supply\\cfg\\3\\1\\2\\12:00\\9:13\\1",
        b"srv\\supply\\cfg\\2\\1\\2\\12:00\\9:13\\1",  # file name says round 1
        b"srv\\\\cfg\\1\\1\\2\\12:00\\9:13\\1",  # empty map
        b"srv\\supply\\cfg\\1\\-1\\2\\12:00\\9:13\\1",
        b"INVALID STATS FILE",
    ],
)
def test_bad_header_rejects_file(header: bytes) -> None:
    with pytest.raises(StatsFileError) as info:
        parse(player_line(), header=header)
    assert info.value.retryable is False


def test_player_line_values() -> None:
    line = player_line(
        guid="9dd9e94e",
        name="^2M^0r^b. ^8T",
        rounds=1,
        team=2,
        weapons={2: (12, 44, 1, 0, 1), 8: (26, 23, 10, 0, 0), 27: (11, 12, 0, 0, 0)},
        ext=extended(damage_given=4335, alive_percent="93.0", kd_ratio="6.5", revives_given=11),
    )
    (p,) = parse(line).players
    assert (p.guid, p.raw_name, p.name, p.name_ascii) == (
        "9DD9E94E",
        "^2M^0r^b. ^8T",
        "Mr. T",
        "Mr. T",
    )
    assert (p.is_bot, p.rounds, p.team, p.key) == (False, 1, 2, "9DD9E94E")
    assert list(p.weapons) == ["WS_LUGER", "WS_PANZERFAUST", "WS_SYRINGE"]
    luger = p.weapons["WS_LUGER"]
    assert (luger.hits, luger.shots, luger.kills, luger.deaths, luger.headshots) == (
        12,
        44,
        1,
        0,
        1,
    )
    assert (p.kills, p.deaths, p.headshots, p.shots, p.hits) == (11, 0, 1, 79, 49)
    assert p.damage_given == 4335
    assert p.alive_percent == 93.0
    assert p.kd_ratio == 6.5
    assert p.revives_given == 11
    assert p.time_played_minutes == 9.2
    assert p.time_played_seconds == 552
    assert p.source == "file"


def test_every_weapon_bit_maps_to_its_name() -> None:
    weapons = {bit: (bit, bit + 1, 0, 1, 0) for bit in range(28)}
    (p,) = parse(player_line(weapons=weapons)).players
    assert list(p.weapons) == list(WEAPON_NAMES)
    assert p.weapons["WS_SYRINGE"].hits == 27
    assert p.weapons["WS_KNIFE"].shots == 1


def test_unknown_weapon_bits_are_kept() -> None:
    weapons = {4: (1, 2, 3, 0, 0), 28: (7, 19, 0, 0, 0), 30: (3, 4, 1, 0, 0)}
    (p,) = parse(player_line(weapons=weapons)).players
    assert list(p.weapons) == ["WS_MP40", "unknown_28", "unknown_30"]
    assert p.weapons["unknown_30"].hits == 3
    assert p.kills == 4


def test_bots_are_keyed_by_guid_and_name() -> None:
    rnd = parse(
        player_line(guid="OMNIBOT1", name="[BOT]Hans"),
        player_line(guid="OMNIBOT1", name="[BOT]Heinz"),
    )
    assert sorted(p.key for p in rnd.players) == ["OMNIBOT1:[BOT]Hans", "OMNIBOT1:[BOT]Heinz"]
    assert all(p.is_bot for p in rnd.players)


def test_humans_sharing_guid8_get_name_keys() -> None:
    rnd = parse(player_line(name="Alice"), player_line(name="^3Bob", team=2))
    assert sorted(p.key for p in rnd.players) == ["EF8DAA0B:Alice", "EF8DAA0B:Bob"]


def test_same_guid_and_name_different_values_get_numbered_keys() -> None:
    a = player_line(weapons={4: (1, 2, 0, 0, 0)})
    b = player_line(weapons={4: (5, 6, 0, 0, 0)})
    keys_ab = sorted(p.key for p in parse(a, b).players)
    keys_ba = sorted(p.key for p in parse(b, a).players)
    assert keys_ab == keys_ba == ["EF8DAA0B", "EF8DAA0B#2"]
    first = next(p for p in parse(b, a).players if p.key == "EF8DAA0B")
    assert first.weapons["WS_MP40"].hits == 1  # the smaller line bytes win, in any order


def test_byte_identical_duplicates_kept_once() -> None:
    line = player_line()
    rnd = parse(line, player_line(guid="AAAAAAAA"), line)
    assert len(rnd.players) == 2
    assert rnd.rejected_lines == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (player_line(weapons={4: (1, 2, 3, 4, 5)}).replace(b" 2 3", b" x2 3"), "non-numeric"),
        (player_line(weapons={4: (1, 2, 3, 4, 5)}).replace(b" 2 3", b" -2 3"), "out of range"),
        (player_line(weapons={4: (1, 2, 3, 4, 5)}).replace(b" 2 3", b" +2 3"), "non-numeric"),
        (player_line(weapons={4: (1, 2, 3, 4, 5)}).replace(b" 2 3", b" 2 3 4"), "values follow"),
        (player_line(weapons={4: (1, 2**31, 3, 4, 5)}), "out of range"),
        (player_line(ext=extended(damage_given="99999999999999999999999")), "exceeds"),
        (player_line(ext=extended(damage_received="-5")), "field 1"),
        (player_line(ext=extended(xp="1_0")), "field 9"),
        (player_line(ext=extended(gibs="x")), "field 4"),
        (player_line(ext=extended(time_played_minutes="1e309")), "field 22"),
        (player_line(ext=extended(time_played_minutes="-nan")), "field 22"),
        (player_line(ext=extended(time_dead_minutes="-0.5")), "field 25"),
        (player_line(ext=extended(time_dead_minutes="40000.0")), "field 25"),
        (player_line(team=4), "team"),
        (player_line(team="x"), "team"),
        (player_line(rounds="-1"), "rounds"),
        (player_line(guid="EF8D-A0B"), "GUID"),
        (player_line(guid=""), "GUID"),
        (b"EF8DAA0B\\Brick\\1\\1", "backslash"),
        (b"EF8DAA0B\\Brick\\1\\1\\", "mask"),
        (b"EF8DAA0B\\Brick\\1\\1\\9" + b"9" * 30 + b" 1 2 3 4 5", "mask"),
        (b"EF8DAA0B\\Brick\\1\\1\\16 1 2 3 4 " + b"5" * 5000, "non-numeric"),
    ],
)
def test_rejected_lines(line: bytes, reason: str) -> None:
    rnd = parse(player_line(guid="AAAAAAAA"), line)
    assert [p.guid for p in rnd.players] == ["AAAAAAAA"]
    assert len(rnd.rejected_lines) == 1
    assert rnd.rejected_lines[0].line_number == 3
    assert reason in rnd.rejected_lines[0].reason


@pytest.mark.parametrize("field", ["alive_percent", "dpm_module", "tank_ratio", "kd_ratio"])
@pytest.mark.parametrize("value", ["-nan", "nan", "inf", "-inf", "garbage"])
def test_bad_derived_float_is_unknown_but_line_kept(field: str, value: str) -> None:
    (p,) = parse(player_line(ext=extended(**{field: value}))).players
    assert getattr(p, field) is None
    assert p.damage_given == 1500


def test_negative_and_large_derived_floats_are_kept() -> None:
    (p,) = parse(player_line(ext=extended(dpm_module="-12.5", kd_ratio="1e5"))).players
    assert (p.dpm_module, p.kd_ratio) == (-12.5, 100000.0)


def test_values_beyond_lookup_tables() -> None:
    ext = extended(damage_given=123456, time_played_minutes="1234.5", alive_percent="100.0")
    (p,) = parse(player_line(weapons={20: (20000, 99999, 0, 0, 0)}, ext=ext)).players
    assert (p.damage_given, p.time_played_minutes) == (123456, 1234.5)
    assert p.weapons["WS_MG42"].shots == 99999


def test_older_layouts_missing_values_are_unknown() -> None:
    no_tab = player_line(guid="AAAAAAAA", ext=None)
    short = player_line(guid="BBBBBBBB", ext=extended()[:36])
    rnd = parse(no_tab, short)
    a, b = sorted(rnd.players, key=lambda p: p.guid)
    assert a.weapons["WS_MP40"].kills == 2
    assert all(getattr(a, n) is None for n in EXTENDED_FIELD_NAMES)
    assert a.time_played_seconds is None
    assert (b.useless_kills, b.full_selfkills) == (0, 0)
    assert (b.repairs_constructions, b.revives_given) == (None, None)


def test_extra_extended_fields_are_ignored() -> None:
    (p,) = parse(player_line(ext=[*extended(revives_given=4), "77", "x"])).players
    assert p.revives_given == 4


def test_truncated_last_line() -> None:
    data = stats_file(player_line(guid="AAAAAAAA")) + player_line(guid="BBBBBBBB")[:40]
    rnd = parse_stats_file(data, R1_NAME)
    assert rnd.partial is True
    assert [p.guid for p in rnd.players] == ["AAAAAAAA"]
    assert [r.line_number for r in rnd.rejected_lines] == [3]


def test_header_only_file_and_incomplete_header() -> None:
    rnd = parse()
    assert rnd.players == [] and rnd.rejected_lines == []
    with pytest.raises(StatsFileError) as info:
        parse_stats_file(b"srv\\supply\\cfg\\1\\1\\2\\12:00\\9:13\\55", R1_NAME)
    assert info.value.retryable is True


def test_crlf_bom_and_latin1() -> None:
    line = player_line(name=b"Caf\xe9^1Cr\xe8me")
    data = b"\xef\xbb\xbf" + stats_file(line).replace(b"\n", b"\r\n")
    (p,) = parse_stats_file(data, R1_NAME).players
    assert (p.raw_name, p.name, p.name_ascii) == ("Caf\xe9^1Cr\xe8me", "CaféCrème", "CafCrme")
    assert p.revives_given == 0


def test_every_line_rejected_is_still_a_round() -> None:
    rnd = parse(b"garbage", b"more\\garbage")
    assert rnd.players == []
    assert [r.line_number for r in rnd.rejected_lines] == [2, 3]


def test_empty_line_is_recorded() -> None:
    rnd = parse(player_line(), b"")
    assert len(rnd.players) == 1
    assert rnd.rejected_lines[0].reason == "empty line"


@pytest.mark.parametrize(
    ("data", "retryable"),
    [
        (b"", True),
        (b"\xef\xbb\xbf", True),
        (b"INVALID STATS FILE\nthis is not a stats file\n\x00\x01\x02 garbage\n", False),
        (b"\x00" * 100, False),
        (b"a" * (MAX_FILE_SIZE + 1), False),
    ],
)
def test_unusable_files(data: bytes, retryable: bool) -> None:
    with pytest.raises(StatsFileError) as info:
        parse_stats_file(data, R1_NAME)
    assert info.value.retryable is retryable


def test_bad_name_and_wrong_kind_rejected() -> None:
    data = stats_file(player_line())
    with pytest.raises(StatsFileError):
        parse_stats_file(data, "eu1-2025-02-30-256199-supply-round-3.txt")
    with pytest.raises(StatsFileError):
        parse_stats_file(data, "eu1-2025-03-02-120000-supply-round-1-endstats.txt")
    with pytest.raises(StatsFileError):
        parse_stats_file("text, not bytes", R1_NAME)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_accepted() -> None:
    data = stats_file(player_line())
    assert len(parse_stats_file(bytearray(data), R1_NAME).players) == 1
    assert len(parse_stats_file(memoryview(data), R1_NAME).players) == 1


def test_round2_file_is_parsed_as_written() -> None:
    rnd = parse(player_line(rounds=2, team=2), header=HEADER_R2, name=R2_NAME)
    assert rnd.round_number == 2
    assert rnd.next_time_limit == "71:23"
    assert rnd.players[0].rounds == 2


def test_weapon_bits_beyond_32_are_unknown_weapons() -> None:
    weapons = {27: (1, 1, 0, 0, 0), 31: (2, 2, 0, 0, 0), 40: (3, 3, 1, 0, 0)}
    (p,) = parse(player_line(weapons=weapons)).players
    assert list(p.weapons) == ["WS_SYRINGE", "unknown_31", "unknown_40"]
    assert p.weapons["unknown_40"].kills == 1


def test_absurd_header_values_do_not_reject_the_round() -> None:
    huge = b"9" * 5000
    header = b"srv\\supply\\cfg\\1\\1\\2\\" + huge + b":00\\" + huge + b"\\" + huge
    rnd = parse(player_line(), header=header)
    assert (rnd.time_limit_seconds, rnd.duration_ms, rnd.aborted) == (None, None, False)
    assert len(rnd.players) == 1
