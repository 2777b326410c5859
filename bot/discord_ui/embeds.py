"""Discord embeds: the limits-aware packing shared by every view, and the round post.

Pure builders: data in, `list[discord.Embed]` out, no I/O. A long table is split
into several fields and, when an embed would pass Discord's limits, into a
further embed ("(cont.)"): a player row is never cut or dropped.

Discord's 6,000-character cap also applies to the SUM of the embeds of one
message: send the result of `group_for_messages`, not the whole list at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import discord

from bot.discord_ui import tables, text
from bot.discord_ui.models import (
    ALLIES,
    AXIS,
    SPECTATOR,
    PlayerStatLine,
    RoundInfo,
    RoundPostData,
    match_groups,
    stopwatch_result,
)

MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_TOTAL = 6000
MAX_EMBEDS_PER_MESSAGE = 10
# Room kept free in every embed for the footer's "· part x/y" suffix.
_FOOTER_RESERVE = 40

SIDE_COLOURS = {AXIS: 0xC0392B, ALLIES: 0x2E86C1}
NEUTRAL_COLOUR = 0x7F8C8D


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str
    inline: bool = False


def units(s: str) -> int:
    """Length as Discord counts it for limits (UTF-16 code units, so an emoji in a
    name counts twice); never less than len(s), so staying under it is safe."""
    return len(s.encode("utf-16-le")) // 2


def embed_size(embed: discord.Embed) -> int:
    """What counts towards the 6,000 total: like len(embed), in UTF-16 units."""
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    parts += [embed.author.name or ""]
    parts += [(f.name or "") + (f.value or "") for f in embed.fields]
    return sum(units(p) for p in parts)


def md(name: str, width: int | None = 32) -> str:
    """A player (or server) name fit for prose: cleaned, clipped, markdown and
    mentions neutralised. (Inside code blocks use tables.clean_name only.)"""
    clean = tables.clean_name(name, width)
    escaped = discord.utils.escape_markdown(clean).replace("<", "\\<")
    return discord.utils.escape_mentions(escaped)


def code_fields(title: str, lines: Sequence[str], limit: int = MAX_FIELD_VALUE) -> list[Field]:
    """A monospace table (header line first) as one or more fields, each a code
    block within `limit` characters; the header is repeated in every part."""
    head, body = lines[0], list(lines[1:]) or [""]
    fence_cost = len("```\n") + len("\n```")
    chunks: list[list[str]] = [[]]
    size = fence_cost + units(head)
    for line in body:
        if chunks[-1] and size + 1 + units(line) > limit:
            chunks.append([])
            size = fence_cost + units(head)
        chunks[-1].append(line)
        size += 1 + units(line)
    fields = []
    for i, chunk in enumerate(chunks):
        name = title if i == 0 else f"{title} (cont.)"
        value = "```\n" + "\n".join([head, *chunk]) + "\n```"
        fields.append(Field(_clip(name, MAX_FIELD_NAME), value))
    return fields


def text_fields(title: str, lines: Sequence[str], limit: int = MAX_FIELD_VALUE) -> list[Field]:
    """Prose lines as fields of at most `limit` characters, split between lines."""
    fields: list[Field] = []
    current: list[str] = []
    for line in (_clip(raw, limit) for raw in lines):
        if current and units("\n".join([*current, line])) > limit:
            fields.append(Field(title if not fields else f"{title} (cont.)", "\n".join(current)))
            current = []
        current.append(line)
    if current:
        fields.append(Field(title if not fields else f"{title} (cont.)", "\n".join(current)))
    return [Field(_clip(f.name, MAX_FIELD_NAME), f.value) for f in fields]


def _clip(s: str, limit: int) -> str:
    """At most `limit` UTF-16 units, with "…" when something was cut."""
    if units(s) <= limit:
        return s
    while units(s) > limit - 1:
        s = s[: max(0, min(len(s) - 1, limit - 1))]
    return s + "…"


def pack_embeds(
    title: str,
    description: str,
    fields: Sequence[Field],
    *,
    colour: int = NEUTRAL_COLOUR,
    footer: str = "",
    timestamp: datetime | None = None,
) -> list[discord.Embed]:
    """Fields packed in order into as many embeds as the limits need. The first
    embed carries the description; every embed gets the footer (plus "part x/y"
    when there are several)."""
    title = _clip(title, MAX_TITLE)
    embeds = [discord.Embed(title=title, description=_clip(description, MAX_DESCRIPTION))]
    budget = MAX_TOTAL - units(footer) - _FOOTER_RESERVE
    for f in fields:
        embed = embeds[-1]
        cost = units(f.name) + units(f.value)
        if len(embed.fields) >= MAX_FIELDS or embed_size(embed) + cost > budget:
            embed = discord.Embed(title=_clip(f"{title} (cont.)", MAX_TITLE))
            embeds.append(embed)
        embed.add_field(name=f.name, value=f.value, inline=f.inline)
    for i, embed in enumerate(embeds, 1):
        embed.colour = discord.Colour(colour)
        part = f"part {i}/{len(embeds)}" if len(embeds) > 1 else ""
        label = " · ".join(t for t in (footer, part) if t)
        if label:
            embed.set_footer(text=_clip(label, MAX_FOOTER))
        if timestamp is not None:
            embed.timestamp = timestamp
    return embeds


def group_for_messages(embeds: Sequence[discord.Embed]) -> list[list[discord.Embed]]:
    """Consecutive embeds grouped into messages: at most 10 embeds and 6,000
    characters (summed over the embeds) per message."""
    messages: list[list[discord.Embed]] = []
    size = 0
    for embed in embeds:
        if (
            not messages
            or len(messages[-1]) >= MAX_EMBEDS_PER_MESSAGE
            or size + embed_size(embed) > MAX_TOTAL
        ):
            messages.append([])
            size = 0
        messages[-1].append(embed)
        size += embed_size(embed)
    return messages


# --- the round post ---------------------------------------------------------------


def round_title(r: RoundInfo) -> str:
    return f"{r.map_name} · Round {r.round_number}"


def round_post_embeds(data: RoundPostData, tz: ZoneInfo | None = None) -> list[discord.Embed]:
    """The post for one round: result, per-team tables, MVP, and after a paired
    Round 2 the stopwatch result with both rounds' totals per player group."""
    r = data.round
    fields = _team_fields(r, data.players)
    if r.round_number == 2 and data.r1 is not None:
        fields += _match_fields(data)
    if data.awards:
        award_lines = [f"{a.title}: {md(a.player, 24)} ({md(a.value, 40)})" for a in data.awards]
        fields += text_fields("Awards", award_lines)
    colour = SIDE_COLOURS.get(r.winner, NEUTRAL_COLOUR)
    footer = f"{tables.clean_name(r.server_name, 60)} · round #{r.id}"
    return pack_embeds(
        round_title(r),
        _round_description(data, tz),
        fields,
        colour=colour,
        footer=footer,
        timestamp=r.played_at,
    )


def _round_description(data: RoundPostData, tz: ZoneInfo | None) -> str:
    r = data.round
    server = md(r.server_name, 60)
    if r.host_name and tables.clean_name(r.host_name) != tables.clean_name(r.server_name):
        server += f" ({md(r.host_name, 60)})"
    lines = [f"**{server}** · {text.local_time(r.played_at, tz)}"]
    if r.is_orphan:
        lines.append(f"⚠️ {text.ORPHAN_NOTE}")
    lines += text.round_outcome_lines(r)
    lines.append(text.duration_line(r))
    mvp = tables.pick_mvp(data.players)
    if mvp is not None:
        lines.append(f"🏅 MVP: **{md(mvp.name)}** · {text.mvp_stats(mvp)}")
    return "\n".join(lines)


def _team_fields(r: RoundInfo, players: Sequence[PlayerStatLine]) -> list[Field]:
    """Attackers first, then defenders, then anyone who ended as spectator (or on
    an unknown team)."""
    order = sorted(players, key=tables.dpm_order_key)
    fields: list[Field] = []
    for side in text.team_sides(r):
        team = [p for p in order if p.team == side]
        title = text.team_title(r, side, team)
        if team:
            fields += code_fields(title, tables.round_table(team).lines())
        elif side != SPECTATOR:
            fields.append(Field(title, "no players"))
    others = [p for p in order if p.team not in (AXIS, ALLIES, SPECTATOR)]
    if others:
        fields += code_fields(f"Other ({len(others)})", tables.round_table(others).lines())
    return fields


def _match_fields(data: RoundPostData) -> list[Field]:
    r1, r2 = data.r1, data.round
    assert r1 is not None
    result = stopwatch_result(r1, r2)
    if result is None:
        return [Field("Map result", "No map result: sides unknown.")]
    summary = f"{text.stopwatch_summary(result)}\n{text.stopwatch_times(result)}"
    fields = [Field("🏆 Map result (stopwatch)", summary)]
    groups = match_groups(r1, data.r1_players, data.players)
    for key, group in zip(("first", "second"), groups, strict=True):
        if group:
            title = f"{text.group_label(result, key)} · both rounds"
            fields += code_fields(title, tables.match_table(group).lines())
    return fields
