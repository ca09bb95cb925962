"""Event translation: discord.py models and interaction options to core's values.

The inputs are small stand-ins with the attributes discord.py models have; the translation
reads nothing else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace as Model

import discord

from adapters.discord.events import (
    admin_command,
    admin_grant,
    channel_privacy,
    command_parts,
    command_text,
    incoming_message,
    is_admin,
    mentions_user,
    place_of,
    promote_text,
    strip_mentions,
    thread_name,
)
from core.types import IncomingFile, Platform

BOT = 42
GUILD = Model(id=7, name="Acme")
TEXT = Model(id=100, type=discord.ChannelType.text, name="general")
THREAD = Model(id=200, type=discord.ChannelType.public_thread, parent_id=100, parent=TEXT, name="q")
DM = Model(id=300, type=discord.ChannelType.private)


def message(content: str, *, mentions=(), attachments=()) -> Model:
    return Model(
        id=999,
        content=content,
        author=Model(id=5, display_name="Ada", bot=False),
        mentions=list(mentions),
        attachments=list(attachments),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_places() -> None:
    channel = place_of(TEXT, guild=GUILD, user_id=5)
    assert (channel.workspace_id, channel.channel_id, channel.thread_id) == ("7", "100", None)
    thread = place_of(THREAD, guild=GUILD, user_id=5)
    assert (thread.channel_id, thread.thread_id, thread.channel_name) == ("100", "200", "general")
    dm = place_of(DM, guild=None, user_id=5)
    assert (dm.workspace_id, dm.channel_id, dm.thread_id, dm.is_direct) == (
        "dm-5",
        "300",
        "300",
        True,
    )


def test_privacy_the_models_say_or_none() -> None:
    # Stand-ins carry no permissions: only the channel types tell, the rest is unknown.
    assert channel_privacy(TEXT, guild=GUILD) is None
    assert channel_privacy(THREAD, guild=GUILD) is None
    private_thread = Model(id=201, type=discord.ChannelType.private_thread, parent_id=100)
    assert channel_privacy(private_thread, guild=GUILD) is True
    assert place_of(DM, guild=None, user_id=5).is_private is True
    assert place_of(TEXT, guild=GUILD, user_id=5).is_private is None


def test_what_core_needs_for_trust_crosses_only_where_it_means_something() -> None:
    file = Model(id=1, filename="a.md", size=10, content_type=None, url="http://f/a.md")
    msg = message("", attachments=[file])
    in_dm = incoming_message(
        msg,
        place_of(DM, guild=None, user_id=5),
        thread_id="300",
        bot_id=BOT,
        dm_workspaces=("7",),
    )
    assert (in_dm.is_direct, in_dm.place_private, in_dm.dm_workspaces) == (True, True, ("7",))
    channel = place_of(TEXT, guild=GUILD, user_id=5)
    in_channel = incoming_message(
        msg, channel, thread_id="1", bot_id=BOT, author_is_admin=True, dm_workspaces=("7",)
    )
    assert in_channel.author_is_admin and in_channel.dm_workspaces == ()
    command = admin_command(
        place=place_of(DM, guild=None, user_id=5),
        user=msg.author,
        text="docs list",
        admin=False,
        event_id="9",
        received_at=msg.created_at,
        dm_workspaces=("7", "8"),
    )
    assert (command.is_direct, command.place_private, command.dm_workspaces) == (
        True,
        True,
        ("7", "8"),
    )
    doc = uuid.UUID(int=1)
    assert promote_text(doc, "hr") == f"docs promote {doc} hr"


def test_mentions() -> None:
    msg = message(f"<@{BOT}> how many days? <@!{BOT}>", mentions=[Model(id=BOT)])
    assert mentions_user(msg, BOT) and not mentions_user(message("hi"), BOT)
    assert strip_mentions(msg.content, BOT) == "how many days?"
    assert strip_mentions("ask <@77> about it", BOT) == "ask <@77> about it"


def test_incoming_message_uses_message_id_as_event_id_and_parent_channel() -> None:
    file = Model(id=1, filename="a.md", size=10, content_type="text/markdown", url="http://f/a.md")
    msg = message(f"<@{BOT}> what?", mentions=[Model(id=BOT)], attachments=[file])
    place = place_of(THREAD, guild=GUILD, user_id=5)
    incoming = incoming_message(msg, place, thread_id="200", bot_id=BOT)
    assert incoming.platform is Platform.DISCORD
    assert (incoming.workspace_id, incoming.channel_id, incoming.thread_id) == ("7", "100", "200")
    assert (incoming.event_id, incoming.message_id, incoming.text) == ("999", "999", "what?")
    assert incoming.author_name == "Ada" and incoming.workspace_name == "Acme"
    assert incoming.files == (IncomingFile("1", "a.md", 10, "text/markdown", "http://f/a.md"),)


def test_thread_name() -> None:
    assert thread_name("  how   many days? ") == "how many days?"
    assert thread_name("", fallback="handbook.md") == "handbook.md"
    assert len(thread_name("x " * 200)) <= 90


def test_command_options_become_core_text() -> None:
    data = {
        "name": "lore",
        "options": [
            {
                "name": "namespace",
                "type": 2,
                "options": [
                    {
                        "name": "create",
                        "type": 1,
                        "options": [
                            {"name": "description", "type": 3, "value": "People handbook"},
                            {"name": "name", "type": 3, "value": "hr"},
                        ],
                    }
                ],
            }
        ],
    }
    path, options = command_parts(data)
    assert path == ("namespace", "create")
    assert command_text(path, options) == "namespace create hr 'People handbook'"


def test_command_text_for_each_shape() -> None:
    assert command_text(("usage",), {"by": "user", "period": "30d"}) == "usage 30d by user"
    assert command_text(("usage",), {"by": "model"}) == "usage by model"
    assert command_text(("ask",), {"question": "what's the policy?"}) == (
        "ask 'what'\"'\"'s the policy?'"
    )
    channel = command_parts(
        {
            "options": [
                {
                    "name": "namespace",
                    "type": 2,
                    "options": [
                        {
                            "name": "bind",
                            "type": 1,
                            "options": [
                                {"name": "name", "type": 3, "value": "hr"},
                                {"name": "channel", "type": 7, "value": "123"},
                            ],
                        }
                    ],
                }
            ]
        }
    )
    assert command_text(*channel) == "namespace bind hr '<#123>'"
    assert (
        command_text(("quota", "set"), {"scope": "user", "limit": "5000"}) == "quota set user 5000"
    )
    assert command_text(("docs", "promote"), {"namespace": "hr", "id": "abc"}) == (
        "docs promote abc hr"
    )
    assert command_text(("help",), {}) == "help"
    assert command_text(("frobnicate",), {"text": "now"}) == "frobnicate now"


def test_admin_is_manage_server_or_the_configured_role() -> None:
    roles = [(11, "Lore Admins"), (12, "everyone")]
    assert is_admin(manage_guild=True, roles=[], admin_role=None)
    assert not is_admin(manage_guild=False, roles=roles, admin_role=None)
    assert is_admin(manage_guild=False, roles=roles, admin_role="lore admins")
    assert is_admin(manage_guild=False, roles=roles, admin_role="11")
    assert not is_admin(manage_guild=False, roles=roles, admin_role="Moderators")
    # A number is a role id: a role merely named like it does not count.
    impostor = [(13, "11"), (14, "Lore Admins")]
    assert not is_admin(manage_guild=False, roles=impostor, admin_role="11")
    assert admin_grant(manage_guild=False, roles=roles, admin_role=" 11 ") == "role_id"
    assert admin_grant(manage_guild=False, roles=impostor, admin_role="lore admins") == "role_name"
    assert admin_grant(manage_guild=True, roles=[], admin_role="11") == "manage_guild"
