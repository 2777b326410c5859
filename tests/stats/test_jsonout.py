import json

from bot.stats import parse_endstats_file, parse_stats_file, round2_only, round_to_json
from tests.stats.builders import R1_NAME, extended, player_line, stats_file

REQUIRED_ROUND_KEYS = {
    "server_id", "filename", "map", "round", "status", "paired_r1", "defender", "winner",
    "duration_seconds", "players", "awards",
}  # fmt: skip
REQUIRED_PLAYER_KEYS = {
    "guid", "name", "is_bot", "team", "kills", "deaths", "headshots", "headshot_kills",
    "damage_given", "damage_received", "team_damage_given", "team_damage_received", "gibs",
    "self_kills", "team_kills", "revives_given", "times_revived", "xp", "time_played_seconds",
    "weapons",
}  # fmt: skip


def _round():
    lines = (
        player_line(
            guid="BBBBBBBB", name="^1Zed", weapons={4: (10, 40, 2, 1, 3), 28: (1, 2, 0, 0, 0)}
        ),
        player_line(guid="AAAAAAAA", name="Amy", team=2, ext=extended(headshot_kills=2, xp=55)),
        player_line(guid="OMNIBOT0", name="[BOT]Hans", team=2, ext=None),
    )
    return parse_stats_file(stats_file(*lines), R1_NAME)


def test_shape_and_values() -> None:
    es = parse_endstats_file(
        b"Most damage given\tZed\t1500\nVS_HEADER\tZed\tBBBBBBBBCCCC\nAmy\t2\t1\n",
        "eu1-2025-03-02-115958-supply-round-1-endstats.txt",
    )
    out = round_to_json(_round(), endstats=es)
    assert REQUIRED_ROUND_KEYS <= set(out)
    assert out["server_id"] == "eu1"
    assert (out["filename"], out["map"], out["round"]) == (R1_NAME, "supply", 1)
    assert (out["status"], out["paired_r1"], out["defender"], out["winner"]) == (
        "complete",
        None,
        1,
        2,
    )
    assert out["duration_seconds"] == 552
    assert out["awards"] == [["Most damage given", "Zed", "1500"]]
    assert out["versus"][0]["rows"] == [["Amy", 2, 1]]
    assert [p["guid"] for p in out["players"]] == ["AAAAAAAA", "BBBBBBBB", "OMNIBOT0"]
    for p in out["players"]:
        assert REQUIRED_PLAYER_KEYS <= set(p)
    amy, zed, bot = out["players"]
    assert (amy["headshot_kills"], amy["xp"], amy["team"], amy["time_played_seconds"]) == (
        2,
        55,
        2,
        552,
    )
    assert zed["weapons"] == {
        "WS_MP40": {"hits": 10, "shots": 40, "kills": 2, "deaths": 1, "headshots": 3}
    }
    assert zed["unknown_weapons"] == {
        "28": {"hits": 1, "shots": 2, "kills": 0, "deaths": 0, "headshots": 0}
    }
    assert (zed["name"], zed["raw_name"], zed["name_ascii"]) == ("Zed", "^1Zed", "Zed")
    assert (zed["kills"], zed["deaths"], zed["headshots"]) == (2, 1, 3)
    assert bot["is_bot"] is True and bot["key"] == "OMNIBOT0:[BOT]Hans"
    assert bot["damage_given"] is None and bot["time_played_seconds"] is None
    json.dumps(out)  # JSON-serialisable as is


def test_server_id_override_and_defaults() -> None:
    out = round_to_json(_round(), server_id="legacy1")
    assert out["server_id"] == "legacy1"
    assert out["awards"] == [] and out["versus"] == []
    assert out["rejected_lines"] == [] and out["partial"] is False and out["aborted"] is False


def test_paired_round() -> None:
    r1 = _round()
    header = b"srv\\supply\\legacy3\\2\\1\\1\\9:13\\71:23\\550000"
    line = player_line(
        guid="AAAAAAAA", name="Amy", rounds=2, ext=extended(time_played_minutes="18.3")
    )
    r2 = parse_stats_file(
        stats_file(line, header=header), "eu1-2025-03-02-121500-supply-round-2.txt"
    )
    out = round_to_json(round2_only(r2, r1))
    assert (out["status"], out["paired_r1"]) == ("paired", R1_NAME)
    (amy,) = out["players"]
    assert (amy["source"], amy["time_played_seconds"], amy["kills"]) == ("differential", 546, 0)
