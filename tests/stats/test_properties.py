"""Property tests: damaged input never raises anything but StatsFileError."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.stats import (
    StatsFileError,
    mark_orphan,
    parse_endstats_file,
    parse_filename,
    parse_stats_file,
    round2_only,
    round_to_json,
)
from bot.stats.model import Round

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "multi" / "stats"
R1_FILE = FIXTURES / "eu2-2025-03-05-233259-etl_frostbite-round-1.txt"
R2_FILE = FIXTURES / "eu2-2025-03-05-234809-etl_frostbite-round-2.txt"
ENDSTATS_FILE = FIXTURES / "eu2-2025-03-05-234807-etl_frostbite-round-2-endstats.txt"
STATS_BASES = [R1_FILE.read_bytes(), R2_FILE.read_bytes()]
ENDSTATS_BASE = ENDSTATS_FILE.read_bytes()
R1 = parse_stats_file(R1_FILE.read_bytes(), R1_FILE.name)

# Tokens that hit the parser's edge cases when spliced in.
NASTY = [
    b"-nan", b"nan", b"inf", b"1e309", b"-5", b"99999999999999999999999", b"2147483648",
    b"\\", b"\t", b"\r", b"\n", b"\r\n", b"^", b"^^", b"\xff", b"\xc3", b"\x00", b" ",
    b"+1", b"1_0", b"\xef\xbb\xbf", b"VS_HEADER\t", b"\t\t", b"0", b"4294967295",
]  # fmt: skip
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutate(draw: st.DrawFn, base: bytes) -> bytes:
    """1-5 random edits: flip, insert, delete, truncate, splice lines, nasty tokens."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice", "token"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
        elif op == "token":
            end = pos + draw(st.integers(0, 6))
            data[pos:end] = draw(st.sampled_from(NASTY))
        else:
            lines = bytes(data).split(b"\n")
            src = draw(st.integers(0, len(lines) - 1))
            dst = draw(st.integers(0, len(lines)))
            lines.insert(dst, lines[src])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _check_round(rnd: Round) -> None:
    keys = [p.key for p in rnd.players]
    assert len(keys) == len(set(keys))
    assert all(r.line_number >= 2 for r in rnd.rejected_lines)
    json.dumps(round_to_json(rnd))


@SETTINGS
@given(st.sampled_from(STATS_BASES).flatmap(mutate))
def test_mutated_stats_files(data: bytes) -> None:
    for name in (R1_FILE.name, R2_FILE.name):
        try:
            rnd = parse_stats_file(data, name)
        except StatsFileError:
            continue
        _check_round(rnd)
        if rnd.round_number == 2:
            try:
                paired = round2_only(rnd, R1)
            except StatsFileError:
                pass
            else:
                assert len(paired.players) == len(rnd.players)
                _check_round(paired)
            _check_round(mark_orphan(rnd))


@SETTINGS
@given(mutate(STATS_BASES[0]), mutate(STATS_BASES[1]))
def test_differential_of_two_mutated_files(r1_data: bytes, r2_data: bytes) -> None:
    try:
        r1 = parse_stats_file(r1_data, R1_FILE.name)
        r2 = parse_stats_file(r2_data, R2_FILE.name)
        paired = round2_only(r2, r1)
    except StatsFileError:
        return
    assert {p.source for p in paired.players} <= {"differential", "r2_file"}
    _check_round(paired)


@SETTINGS
@given(mutate(ENDSTATS_BASE))
def test_mutated_endstats_files(data: bytes) -> None:
    try:
        es = parse_endstats_file(data, ENDSTATS_FILE.name)
    except StatsFileError:
        return
    assert es.line_count + len(es.skipped_lines) >= 1
    assert [a.position for a in es.awards] == list(range(len(es.awards)))
    assert all(r.kills >= 0 and r.deaths >= 0 for b in es.versus for r in b.rows)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_random_file_names(name: str) -> None:
    try:
        parsed = parse_filename(name)
    except StatsFileError:
        return
    assert parsed.basename == name and parsed.round_number in (1, 2)


@settings(max_examples=60, deadline=None)
@given(st.permutations(STATS_BASES[1].split(b"\n")[1:-1]))
def test_player_line_order_does_not_matter(lines: list[bytes]) -> None:
    header = STATS_BASES[1].split(b"\n")[0]
    shuffled = b"\n".join([header, *lines]) + b"\n"
    got = round_to_json(parse_stats_file(shuffled, R2_FILE.name))
    want = round_to_json(parse_stats_file(STATS_BASES[1], R2_FILE.name))
    assert got == want
