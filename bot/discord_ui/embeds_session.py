"""`!last_session` embeds: the paginated summary and the `maps` / `weapons` views.

Each page is ONE embed with a "page x/y" footer; the button view that flips
pages is the cog's job. Times are shown in the server's time zone (`tz`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from zoneinfo import ZoneInfo

import discord

from bot.discord_ui import tables, text
from bot.discord_ui.embeds import (
    MAX_DESCRIPTION,
    Field,
    code_fields,
    md,
    pack_embeds,
    text_fields,
)
from bot.discord_ui.models import (
    PlayerRoundPoint,
    SessionInfo,
    SessionSummary,
    WeaponLine,
    combine_points,
    top_performers,
)

T = TypeVar("T")
DEFAULT_PER_PAGE = 10
# A page must stay one embed: 20 narrow rows (~60 chars) leave plenty of room.
MAX_PER_PAGE = 20
MAPS_IN_HEADER = 1500  # characters of the map list shown on page 1


def paginate(items: Sequence[T], per_page: int = DEFAULT_PER_PAGE) -> list[tuple[T, ...]]:
    """Items cut into pages of `per_page` (at least 1); always at least one page,
    empty when there are no items, so a view always has something to show."""
    size = max(1, per_page)
    pages = [tuple(items[i : i + size]) for i in range(0, len(items), size)]
    return pages or [()]


def _header(summary: SessionSummary, tz: ZoneInfo, with_maps: bool) -> str:
    info = summary.info
    matches = summary.matches
    lines = [
        f"**{md(info.server_name, 60)}** · {text.session_period(info, tz)}",
        f"{len(summary.rounds)} rounds · {len(matches)} maps · {len(summary.players)} players",
    ]
    if with_maps and matches:
        maps, used = [], 0
        for i, m in enumerate(matches, 1):
            line = discord.utils.escape_markdown(text.match_line(i, m))
            if used + len(line) > MAPS_IN_HEADER:
                maps.append(f"… and {len(matches) - i + 1} more (see the maps view)")
                break
            maps.append(line)
            used += len(line) + 1
        lines += ["", *maps]
    return "\n".join(lines)[:MAX_DESCRIPTION]


def _top_field(summary: SessionSummary) -> Field | None:
    tops = top_performers(summary.players)
    if not tops:
        return None
    return Field(
        "Top performers", "\n".join(f"{t.title}: **{md(t.player.name)}** ({t.value})" for t in tops)
    )


def session_summary_embeds(
    summary: SessionSummary, tz: ZoneInfo, per_page: int = DEFAULT_PER_PAGE
) -> list[discord.Embed]:
    """One embed per page of players (DPM order, `per_page` capped at 20 so a
    page always fits one embed); page 1 also lists the maps and top performers."""
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    pages = paginate(summary.players, per_page)
    title = f"Last session · {tables.clean_name(summary.info.server_name, 120)}"
    embeds = []
    for number, page in enumerate(pages, 1):
        fields: list[Field] = []
        if number == 1 and (top := _top_field(summary)) is not None:
            fields.append(top)
        if page:
            start = (number - 1) * per_page + 1
            table = tables.session_table(page, start_rank=start).lines()
            fields += code_fields("Players (by DPM)", table)
        else:
            fields.append(Field("Players", "no player stats in this session"))
        embeds += pack_embeds(title, _header(summary, tz, number == 1), fields)
    return number_pages(embeds)


def number_pages(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Footers 'page x/y' over the final list (a page that had to split into two
    embeds simply becomes two pages)."""
    for i, embed in enumerate(embeds, 1):
        embed.set_footer(text=f"page {i}/{len(embeds)}")
    return embeds


def session_maps_embeds(
    summary: SessionSummary, points: Sequence[PlayerRoundPoint], tz: ZoneInfo
) -> list[discord.Embed]:
    """Per map: rounds, durations, result, top player (MVP rule over the map's
    non-orphan rounds)."""
    by_round: dict[int, list[PlayerRoundPoint]] = {}
    for p in points:
        by_round.setdefault(p.round_id, []).append(p)
    fields = []
    for i, m in enumerate(summary.matches, 1):
        lines = [text.match_rounds_line(m), discord.utils.escape_markdown(text.match_summary(m))]
        top = tables.pick_mvp(combine_points([p for r in m.rounds for p in by_round.get(r.id, [])]))
        if top is not None:
            lines.append(
                f"Top: **{md(top.name)}** · {tables.fmt_num(top.dpm)} DPM · {top.kills} kills"
            )
        fields += text_fields(f"{i}. {m.map_name}", lines)
    title = f"Maps · {tables.clean_name(summary.info.server_name, 120)}"
    description = text.session_period(summary.info, tz)
    return number_pages(pack_embeds(title, description, fields or [Field("Maps", "no rounds")]))


def session_weapons_embeds(
    info: SessionInfo, weapons: Sequence[WeaponLine], tz: ZoneInfo, per_page: int = DEFAULT_PER_PAGE
) -> list[discord.Embed]:
    """Page 1: the session's top weapons; then per player (most kills first) a
    table of their weapons: kills, accuracy (aimed weapons only), headshot hits."""
    players: dict[str, list[WeaponLine]] = {}
    for w in weapons:
        players.setdefault(w.ident, []).append(w)
    ordered = sorted(players.values(), key=lambda ws: (-sum(w.kills for w in ws), ws[0].name))
    pages = paginate(ordered, min(max(1, per_page), MAX_PER_PAGE))
    title = f"Weapons · {tables.clean_name(info.server_name, 120)}"
    embeds = []
    for number, page in enumerate(pages, 1):
        fields = [_top_weapons_field(weapons)] if number == 1 and weapons else []
        for ws in page:
            fields += code_fields(md(ws[0].name, 64), tables.weapon_table(ws).lines())
        if not fields:
            fields.append(Field("Weapons", "no weapon stats in this session"))
        embeds += pack_embeds(title, text.session_period(info, tz), fields)
    return number_pages(embeds)


def _top_weapons_field(weapons: Sequence[WeaponLine]) -> Field:
    table = tables.top_weapons_table(weapons, limit=10)
    return code_fields("Top weapons (session)", table.lines())[0]
