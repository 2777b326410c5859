from datetime import datetime

import pytest

from bot.stats import StatsFileError, is_valid_filename, parse_filename


def test_prefixed_stats_name_with_dashed_map() -> None:
    f = parse_filename("eu1-2025-03-03-224658-mp_sub-rc1-round-1.txt")
    assert f.server_id == "eu1"
    assert f.timestamp == datetime(2025, 3, 3, 22, 46, 58)
    assert f.map_name == "mp_sub-rc1"
    assert f.round_number == 1
    assert f.is_endstats is False
    assert f.basename == "eu1-2025-03-03-224658-mp_sub-rc1-round-1.txt"


def test_legacy_endstats_name() -> None:
    f = parse_filename("2025-03-03-224658-mp_sub-rc1-round-2-endstats.txt")
    assert f.server_id is None
    assert f.map_name == "mp_sub-rc1"
    assert f.round_number == 2
    assert f.is_endstats is True


def test_last_round_marker_wins() -> None:
    f = parse_filename("na1-2025-01-01-000000-odd-round-1-map-round-2.txt")
    assert f.map_name == "odd-round-1-map"
    assert f.round_number == 2


def test_server_id_with_underscore_and_digits() -> None:
    assert parse_filename("eu_2x-2024-02-29-235959-supply-round-1.txt").server_id == "eu_2x"


@pytest.mark.parametrize(
    "name",
    [
        "eu1-2025-02-30-256199-supply-round-3.txt",  # the corpus's bad name
        "eu1-2025-02-30-120000-supply-round-1.txt",  # Feb 30
        "eu1-2025-03-02-240000-supply-round-1.txt",  # hour 24
        "eu1-2025-03-02-236000-supply-round-1.txt",  # minute 60
        "eu1-2025-03-02-235960-supply-round-1.txt",  # second 60
        "eu1-2025-13-02-120000-supply-round-1.txt",  # month 13
        "eu1-0000-01-01-120000-supply-round-1.txt",  # year 0
        "eu1-2025-03-02-120000-supply-round-3.txt",
        "eu1-2025-03-02-120000-supply-round-1.txt\n",
        "eu1-2025-03-02-120000-supply-round-1.TXT",
        "eu1-2025-03-02-120000-supply-round-1_ws.txt",
        "EU1-2025-03-02-120000-supply-round-1.txt",  # ids are lower case
        "1eu-2025-03-02-120000-supply-round-1.txt",
        "eu-1-2025-03-02-120000-supply-round-1.txt",  # ids never contain '-'
        "eu1-2025-03-02-120000-sup ply-round-1.txt",
        "eu1-2025-03-02-120000--round-1.txt",
        "eu1-٢٠٢٥-03-02-120000-supply-round-1.txt",  # non-ASCII digits
        "x" * 300 + "-2025-03-02-120000-supply-round-1.txt",
        "gamestats/2025-03-02-120000-supply-round-1.txt",
        "..\\2025-03-02-120000-supply-round-1.txt",
        "2025-03-02-120000-supply..x-round-1.txt",
        "2025-03-02-120000-supply\x00-round-1.txt",
        "server.log",
        "",
    ],
)
def test_rejected_names(name: str) -> None:
    with pytest.raises(StatsFileError):
        parse_filename(name)
    assert is_valid_filename(name) is False


def test_non_string_is_rejected_with_stats_file_error() -> None:
    with pytest.raises(StatsFileError):
        parse_filename(b"2025-03-02-120000-supply-round-1.txt")  # type: ignore[arg-type]


def test_leap_day_and_max_length() -> None:
    assert is_valid_filename("2024-02-29-235959-supply-round-1.txt")
    long_map = "m" * (255 - len("2024-02-29-235959--round-1.txt"))
    assert is_valid_filename(f"2024-02-29-235959-{long_map}-round-1.txt")
    assert not is_valid_filename(f"2024-02-29-235959-{long_map}x-round-1.txt")
