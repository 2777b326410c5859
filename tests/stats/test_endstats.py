import pytest

from bot.stats import KNOWN_AWARD_TITLES, StatsFileError, parse_endstats_file
from bot.stats.endstats import value_number

NAME = "eu1-2025-03-02-121500-supply-round-1-endstats.txt"


def parse(text: str):
    return parse_endstats_file(text.encode("utf-8"), NAME)


def test_awards_and_versus_blocks() -> None:
    es = parse(
        "Most damage given\tBrick\t4335\n"
        "Most multikills\t\t0\n"
        "Tank/Meatshield (Refuses to die)\t-=Grumpy\tDamage received vs death ratio: 4.05x\n"
        "Longest killing spree\tBrick\t8\n"
        "Longest killing spree\tBrick\t8\n"
        "VS_HEADER\tBrick\t9dd9e94e4580d1bdc90220c8e8bface3\n"
        "M^ose84\t4\t0\n"
        "\t3\t1\n"
        "VS_HEADER\t\tOMNIBOT1\n"
        "Yeti\t0\t2\n"
    )
    assert [(a.position, a.title, a.player, a.value) for a in es.awards] == [
        (0, "Most damage given", "Brick", "4335"),
        (1, "Most multikills", "", "0"),
        (
            2,
            "Tank/Meatshield (Refuses to die)",
            "-=Grumpy",
            "Damage received vs death ratio: 4.05x",
        ),
        (3, "Longest killing spree", "Brick", "8"),
        (4, "Longest killing spree", "Brick", "8"),
    ]
    assert [a.value_number for a in es.awards] == [4335.0, 0.0, 4.05, 8.0, 8.0]
    assert [(b.subject, b.subject_guid) for b in es.versus] == [
        ("Brick", "9DD9E94E4580D1BDC90220C8E8BFACE3"),
        ("", "OMNIBOT1"),
    ]
    assert [(r.opponent, r.kills, r.deaths) for r in es.versus[0].rows] == [
        ("M^ose84", 4, 0),
        ("", 3, 1),
    ]
    assert es.versus[1].rows[0].deaths == 2
    assert es.line_count == 10
    assert es.skipped_lines == []


def test_damaged_lines_are_skipped_with_reasons() -> None:
    es = parse(
        "Most damage given\tSomeone\t3214\n"
        "Most kills per minute\t\t\n"
        "Chicken\t4\tx\n"
        "OrphanRow\t3\t1\n"
        "VS_HEADER\tSomeone\tABCDEF0123456789ABCDEF0123456789\n"
        "Enemy One\t5\t2\n"
        "Enemy Two\tfive\t2\n"
        "Enemy Three\t1\n"
        "Enemy Four\t0\t3\n"
        "Enemy Five\t1\t2\textra\n"
        "Enemy Six\t\u00b2\t1\n"
    )
    assert [a.title for a in es.awards] == ["Most damage given"]
    assert [(r.opponent, r.kills, r.deaths) for r in es.versus[0].rows] == [
        ("Enemy One", 5, 2),
        ("Enemy Four", 0, 3),
    ]
    reasons = {r.line_number: r.reason for r in es.skipped_lines}
    assert sorted(reasons) == [2, 3, 4, 7, 8, 10, 11]
    assert "without a value" in reasons[2]
    assert "non-numeric value" in reasons[3]
    assert "before any VS_HEADER" in reasons[4]
    assert "non-numeric count" in reasons[7]
    assert "2 fields" in reasons[8]


def test_unknown_title_with_number_is_kept() -> None:
    es = parse("Most future things\tBob\t12 things\n")
    assert [(a.title, a.value_number) for a in es.awards] == [("Most future things", 12.0)]


def test_rows_after_a_broken_vs_header_are_not_misattributed() -> None:
    es = parse("VS_HEADER\tA\tAAAA\nX\t1\t1\nVS_HEADER\tB\t\nY\t2\t2\n")
    assert [(b.subject, [r.opponent for r in b.rows]) for b in es.versus] == [("A", ["X"])]
    assert [r.line_number for r in es.skipped_lines] == [3, 4]


def test_award_after_vs_header_is_skipped() -> None:
    es = parse("VS_HEADER\tA\tAAAA\nMost deaths\tBob\t9\n")
    assert es.awards == []
    assert es.skipped_lines[0].line_number == 2


def test_crlf_bom_and_truncated_tail() -> None:
    data = b"\xef\xbb\xbfMost deaths\tBob\t9\r\nMost revives\tAnn\t1"
    es = parse_endstats_file(data, NAME)
    assert [(a.title, a.player, a.value) for a in es.awards] == [("Most deaths", "Bob", "9")]
    assert es.skipped_lines[0].line_number == 2


@pytest.mark.parametrize(
    ("data", "retryable"),
    [
        (b"", True),
        (b"Most deaths\tBo", True),
        (b"\x00\x01binary", False),
        (b"x" * ((1 << 20) + 1), False),
        (b"srv\\supply\\cfg\\1\\1\\2\\12:00\\9:13\\1\n", False),  # a stats header
    ],
)
def test_unusable_files(data: bytes, retryable: bool) -> None:
    with pytest.raises(StatsFileError) as info:
        parse_endstats_file(data, NAME)
    assert info.value.retryable is retryable


def test_name_must_be_an_endstats_name() -> None:
    with pytest.raises(StatsFileError):
        parse_endstats_file(b"Most deaths\tBob\t9\n", "eu1-2025-03-02-121500-supply-round-1.txt")


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("3214", 3214.0),
        ("2.3333333333333", 2.3333333333333),
        ("21.39 m", 21.39),
        ("3 kills in 2.14s", 3.0),
        ("34.56 percent, 4.12 min", 34.56),
        ("Damage received vs death ratio: 4.05x", 4.05),
        ("-1.5", -1.5),
        ("none", None),
        ("", None),
    ],
)
def test_value_number(value: str, number: float | None) -> None:
    assert value_number(value) == number


def test_known_titles_constant() -> None:
    assert len(KNOWN_AWARD_TITLES) == len(set(KNOWN_AWARD_TITLES)) == 51
    assert KNOWN_AWARD_TITLES[0] == "Most damage given"
    assert "Most useless kills" in KNOWN_AWARD_TITLES
