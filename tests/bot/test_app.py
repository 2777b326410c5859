"""The bot object itself: intents, admin rule, extension list."""

from __future__ import annotations

import dataclasses

import discord.ext.test as dpytest

from bot.app import EXTENSIONS, bot_intents


def test_intents_include_message_content_members_and_voice() -> None:
    intents = bot_intents()
    assert intents.message_content and intents.members and intents.voice_states
    assert intents.guilds and intents.guild_messages


async def test_admin_rule(make_bot) -> None:
    bot = await make_bot(extensions=())
    config = dpytest.get_config()
    member = config.members[0]
    assert not bot.is_admin(member)
    bot.settings = dataclasses.replace(bot.settings, admin_user_ids=(member.id,))
    assert bot.is_admin(member)


def test_every_extension_module_has_setup() -> None:
    import importlib

    for name in EXTENSIONS:
        assert callable(importlib.import_module(name).setup), name
