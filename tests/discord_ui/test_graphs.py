"""The session graph: a real, decodable PNG, also with no data."""

from __future__ import annotations

import struct
import zlib

from bot.discord_ui.graphs import session_graph_png
from bot.discord_ui.models import PlayerRoundPoint
from tests.discord_ui.factories import session

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png(data: bytes) -> tuple[int, int]:
    """(width, height) after checking the chunks and inflating the image data."""
    assert data[:8] == PNG_SIGNATURE
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour = header[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * channels * depth // 8)  # filter byte per row
    return width, height


def test_graph_is_a_png_of_the_expected_size() -> None:
    summary = session(players=14, rounds=6)
    points = [
        PlayerRoundPoint(p.ident, f"$x$_{p.name}", i % 3 == 0, r.id, 5 + i, 3, 1500 + 40 * i, 600)
        for r in summary.rounds
        for i, p in enumerate(summary.players)
    ]
    png = session_graph_png(summary.rounds, points, title="Last session · EU #1")
    assert len(png) > 0
    assert decode_png(png) == (1100, 750)


def test_graph_without_data_still_renders() -> None:
    png = session_graph_png([], [], title="")
    assert decode_png(png) == (1100, 750)
