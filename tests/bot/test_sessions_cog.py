"""`!last_session` and its views through discord.py's command machinery (dpytest), on a real
database filled by the importer from the committed corpus."""

from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands

from bot.app import StatsBot
from bot.cogs.sessions import PageView, SessionsCog
from bot.discord_ui import tables
from bot.discord_ui.graphs import session_graph_png
from tests.bot.conftest import FIXTURES, import_fixtures

EXPECTED = json.loads((FIXTURES / "multi" / "expected.json").read_text())
NA1_R1 = "stats/na1-2025-03-07-231939-radar-round-1.txt"
NA1_R2 = "stats/na1-2025-03-07-233151-radar-round-2.txt"
EU1_R1 = "stats/eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
EU1_R2 = "stats/eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
ROW = re.compile(r"^\s*(\d+)\s+(.+?)\s+(\d+)/(\d+)\s")


def expected_kills(r1: str, r2: str) -> dict[str, int]:
    """Session kills per human, keyed as the embed table shows the name (12 columns):
    R1 as read from its file plus the true Round-2-only values."""
    kills: dict[str, int] = {}
    names: dict[str, str] = {}
    for p in [*EXPECTED["files"][r1]["players"], *EXPECTED["files"][r2]["r2_only"]]:
        if p["is_bot"]:
            continue
        names[p["guid"]] = tables.clean_name(p["name"], 12)
        kills[p["guid"]] = kills.get(p["guid"], 0) + p["kills"]
    shown = {names[guid]: k for guid, k in kills.items()}
    assert len(shown) == len(kills), "clipped names must stay distinct for this test"
    return shown


def table_rows(embed: discord.Embed) -> dict[str, tuple[int, int]]:
    """Name -> (kills, deaths) from the "Players (by DPM)" code block(s) of one page."""
    rows: dict[str, tuple[int, int]] = {}
    for f in embed.fields:
        if not f.name.startswith("Players"):
            continue
        for line in f.value.strip("`\n").splitlines()[1:]:
            m = ROW.match(line)
            assert m, line
            rows[m.group(2)] = (int(m.group(3)), int(m.group(4)))
    return rows


@dataclass
class FakeResponse:
    edits: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def edit_message(self, **kwargs: Any) -> None:
        self.edits.append(kwargs)

    async def send_message(self, content: str, **kwargs: Any) -> None:
        self.sent.append((content, kwargs))


@dataclass
class FakeInteraction:
    """What a button callback uses of discord.Interaction: who pressed, and the response."""

    user: discord.abc.User
    response: FakeResponse = field(default_factory=FakeResponse)


async def press(view: PageView, button: discord.ui.Button, user: discord.abc.User) -> FakeResponse:
    """What discord.py does on a click: the view's interaction_check, then the callback."""
    interaction = FakeInteraction(user)
    if await view.interaction_check(interaction):  # type: ignore[arg-type]
        await button.callback(interaction)  # type: ignore[arg-type]
    return interaction.response


async def sessions_bot(make_bot, pool: asyncpg.Pool, *names: str, members: int = 3) -> StatsBot:
    bot = await make_bot(extensions=("bot.cogs.sessions",), members=members)
    await import_fixtures(pool, *names)
    return bot


def member(i: int) -> discord.Member:
    return dpytest.get_config().members[i]


async def test_summary_kills_equal_the_corpus_and_pages_have_buttons(make_bot, pool) -> None:
    bot = await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session")
    msg = dpytest.get_message()
    page1 = msg.embeds[0]
    assert page1.title == "Last session · NA Mixed"
    assert page1.footer.text == "page 1/2"
    assert "radar" in page1.description
    assert any(f.name == "Top performers" for f in page1.fields)
    view = bot.get_cog("Sessions").pagers[msg.id]
    assert len(view.pages) == 2
    shown = table_rows(page1) | table_rows(view.pages[1])
    assert len(shown) == 11  # every player of the session, bots included, on the two pages
    for name, kills in expected_kills(NA1_R1, NA1_R2).items():
        assert shown[name][0] == kills, name


async def test_page_buttons_only_for_the_caller_and_disabled_on_timeout(make_bot, pool) -> None:
    bot = await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session", member=member(0))
    msg = dpytest.get_message()
    view: PageView = bot.get_cog("Sessions").pagers[msg.id]
    assert view.prev_page.disabled and not view.next_page.disabled

    response = await press(view, view.next_page, member(0))
    assert response.edits[0]["embed"].footer.text == "page 2/2"
    assert view.page == 1 and view.next_page.disabled and view.last_page.disabled

    refused = await press(view, view.first_page, member(1))
    assert refused.edits == []
    assert refused.sent[0][1] == {"ephemeral": True}
    assert "run it yourself" in refused.sent[0][0]
    assert view.page == 1

    back = await press(view, view.first_page, member(0))
    assert back.edits[0]["embed"].footer.text == "page 1/2" and view.page == 0
    last = await press(view, view.last_page, member(0))
    assert last.edits[0]["embed"].footer.text == "page 2/2"

    await view.on_timeout()
    assert all(item.disabled for item in view.children)


async def test_a_server_id_picks_that_servers_session(make_bot, pool) -> None:
    await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session EU1", member=member(0))
    embed = dpytest.get_message().embeds[0]
    assert embed.title == "Last session · EU Comp #1"
    assert embed.footer.text == "page 1/2"  # 12 players
    assert "1. etl\\_frostbite — " in embed.description


async def test_single_page_sessions_have_no_buttons(make_bot, pool) -> None:
    bot = await sessions_bot(make_bot, pool, Path(NA1_R1).name, members=2)
    await dpytest.message("!last_session na1")
    msg = dpytest.get_message()
    assert msg.embeds[0].footer.text == "page 1/1"
    assert bot.get_cog("Sessions").pagers == {}
    assert table_rows(msg.embeds[0])  # the players are there


async def test_unknown_server_is_one_friendly_line(make_bot, pool) -> None:
    await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session nope")
    assert (
        dpytest.verify()
        .message()
        .content("I don't know a server `nope`. Known servers: `eu1`, `eu2`, `na1`.")
    )


async def test_empty_database_is_a_friendly_message(make_bot) -> None:
    await make_bot(extensions=("bot.cogs.sessions",), members=3)
    await dpytest.message("!last_session", member=member(0))
    reply = dpytest.get_message().content
    assert reply.startswith("No sessions yet")
    await dpytest.message("!last_session weapons eu2", member=member(1))
    assert dpytest.get_message().content.startswith("No sessions yet on `eu2`")


async def test_cooldown_covers_the_group_and_its_views(make_bot, pool) -> None:
    await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session", member=member(0))
    dpytest.get_message()
    with pytest.raises(commands.CommandOnCooldown):
        await dpytest.message("!last_session maps", member=member(0))
    assert dpytest.get_message().content.startswith("Slow down: try again in")
    # Another user has a bucket of their own.
    await dpytest.message("!last_session maps", member=member(1))
    assert dpytest.get_message().embeds[0].title == "Maps · NA Mixed"


async def test_maps_and_weapons_views(make_bot, pool) -> None:
    await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session maps eu1", member=member(0))
    maps = dpytest.get_message().embeds[0]
    assert maps.title == "Maps · EU Comp #1"
    assert [f.name for f in maps.fields][:1] == ["1. etl_frostbite"]
    assert "Top:" in maps.fields[0].value

    await dpytest.message("!last_session weapons", member=member(1))
    weapons = dpytest.get_message().embeds[0]
    assert weapons.title == "Weapons · NA Mixed"
    assert weapons.fields[0].name == "Top weapons (session)"


async def test_graphs_attach_one_png_rendered_off_the_event_loop(
    make_bot, pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # dpytest writes sent attachments to the working directory
    threads: list[threading.Thread] = []

    def spy(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.current_thread())
        return session_graph_png(*args, **kwargs)

    bot = await sessions_bot(make_bot, pool)
    # load_extension executes a fresh copy of the module: patch the one the cog runs in.
    loaded = sys.modules[type(bot.get_cog("Sessions")).__module__]
    monkeypatch.setattr(loaded, "session_graph_png", spy)
    await dpytest.message("!last_session graphs eu2", member=member(0))
    msg = dpytest.get_message()  # (dpytest drops the text of messages with files)
    assert len(msg.attachments) == 1
    assert msg.attachments[0].filename.endswith(".png")
    assert (await msg.attachments[0].read()).startswith(b"\x89PNG\r\n\x1a\n")
    assert threads and threads[0] is not threading.main_thread()


async def test_unloading_stops_live_page_views(make_bot, pool) -> None:
    bot = await sessions_bot(make_bot, pool)
    await dpytest.message("!last_session")
    cog: SessionsCog = bot.get_cog("Sessions")
    view = cog.pagers[dpytest.get_message().id]
    await bot.unload_extension("bot.cogs.sessions")
    assert view.is_finished()
