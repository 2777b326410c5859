import pytest

from bot.stats.colors import ascii_clean, decode_lenient, strip_colors


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("^1Foo^7Bar", "FooBar"),
        ("^>Doc59^<", "Doc59"),
        ("M^^oose84", "M^ose84"),  # first ^ literal, second ^ starts "^o"
        ("^:-^9=^7Gr", "-=Gr"),
        ("trailing^", "trailing^"),
        ("^^^1x", "^^x"),
        ("^^", "^^"),
        ("^", "^"),
        ("^*^=^?ok", "ok"),
        ("^2José34", "José34"),
        ("^3Ł^8u^Bk^0a^0s^bz", "Łukasz"),
        ("plain name", "plain name"),
    ],
)
def test_strip_colors(raw: str, clean: str) -> None:
    assert strip_colors(raw) == clean


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("^2José34".encode(), "Jos34"),
        ("^4Søren".encode(), "Sren"),
        ("^3Ł^8u^Bk^0a^0s^bz".encode(), "ukasz"),
        (b"Caf\xe9^1Cr\xe8me", "CafCrme"),  # Latin-1 bytes
        (b"M^^oose84", "M^ose84"),
        (b"tab\there\x7f", "tabhere"),
        (b"\xff\xfe", ""),  # only non-ASCII: cleans to the empty string
    ],
)
def test_ascii_clean(raw: bytes, key: str) -> None:
    assert ascii_clean(raw) == key


def test_ascii_clean_accepts_str() -> None:
    assert ascii_clean("^1Søren") == "Sren"


def test_decode_lenient_falls_back_to_latin1_per_field() -> None:
    assert decode_lenient("Jos\u00e9".encode()) == "José"
    assert decode_lenient(b"Caf\xe9") == "Café"
    assert decode_lenient(b"\xff") == "ÿ"
