"""Event translation: discord.py models and interaction options to core's values.

The inputs are small stand-ins with the attributes discord.py models have; the translation
reads nothing else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace as Model
from typing import Any

import discord

from adapters.discord.events import (
    admin_command,
    admin_grant,
    attachments_left,
    channel_privacy,
    command_parts,
    command_request,
    incoming_message,
    is_admin,
    mentions_user,
    place_of,
    starter_survives,
    strip_mentions,
    thread_name,
)
from core.commands import ChannelArg, Invalid, Invocation, Unknown, parse_text, promotion
from core.commands.rich import plain_text
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
        request=parse_text("docs list"),
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
    share = promotion(doc, "hr")
    assert isinstance(share, Invocation) and share.command.path == ("docs", "promote")
    assert dict(share.args) == {"id": doc, "namespace": "hr"}


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


def test_an_edit_says_which_attachments_its_message_still_carries() -> None:
    user = {"id": "5", "username": "ada"}
    assert attachments_left({"id": "9", "author": user, "attachments": [{"id": 11}]}) == ("11",)
    assert attachments_left({"id": "9", "author": user, "attachments": []}) == ()
    assert attachments_left({"id": "9", "author": user, "content": "typo fixed"}) is None
    bots = {"id": "9", "author": {"id": "42", "bot": True}, "attachments": []}
    assert attachments_left(bots) is None  # the bot's own edits (streaming) are not files


def test_a_thread_leaves_its_starter_message_only_in_a_text_channel() -> None:
    assert starter_survives(TEXT)
    assert starter_survives(Model(type=discord.ChannelType.news))
    assert not starter_survives(Model(type=discord.ChannelType.forum))
    assert not starter_survives(None)  # the parent is gone too


def test_thread_name() -> None:
    assert thread_name("  how   many days? ") == "how many days?"
    assert thread_name("", fallback="handbook.md") == "handbook.md"
    assert len(thread_name("x " * 200)) <= 90


def _lore(*path: str, options: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An interaction's ``data`` for `/lore <path>` with the leaf ``options``."""
    leaf: list[dict[str, Any]] = options
    for i, name in reversed(list(enumerate(path))):
        kind = 1 if i == len(path) - 1 else 2
        leaf = [{"name": name, "type": kind, "options": leaf}]
    return {"name": "lore", "options": leaf, **extra}


def test_typed_options_become_core_arguments_without_text() -> None:
    data = _lore(
        "namespace",
        "create",
        options=[
            {"name": "description", "type": 3, "value": "People 'handbook'"},
            {"name": "name", "type": 3, "value": "HR"},
        ],
    )
    request = command_request(data)
    assert isinstance(request, Invocation) and request.command.path == ("namespace", "create")
    assert dict(request.args) == {"name": "hr", "description": "People 'handbook'"}


def test_a_channel_option_is_its_id_and_name() -> None:
    data = _lore(
        "namespace",
        "bind",
        options=[
            {"name": "name", "type": 3, "value": "hr"},
            {"name": "channel", "type": 7, "value": "123"},
        ],
        resolved={"channels": {"123": {"id": "123", "name": "people", "type": 0}}},
    )
    assert command_parts(data)[1]["channel"] == ChannelArg("123", "people")
    request = command_request(data)
    assert isinstance(request, Invocation)
    assert request.args["channel"] == ChannelArg("123", "people")


def test_integers_flags_and_choices_keep_their_types() -> None:
    limit = command_request(
        _lore(
            "quota",
            "set",
            options=[
                {"name": "scope", "type": 3, "value": "user"},
                {"name": "limit", "type": 4, "value": 5000},
            ],
        )
    )
    assert isinstance(limit, Invocation) and dict(limit.args) == {"scope": "user", "limit": 5000}
    usage = command_request(
        _lore(
            "usage",
            options=[
                {"name": "by", "type": 3, "value": "model"},
                {"name": "ids", "type": 5, "value": True},
            ],
        )
    )
    assert isinstance(usage, Invocation) and dict(usage.args) == {"by": "model", "ids": True}
    ask = command_request(
        _lore("ask", options=[{"name": "question", "type": 3, "value": "what's up?"}])
    )
    assert isinstance(ask, Invocation) and ask.args["question"] == "what's up?"


def test_bad_or_unknown_commands_are_said_so() -> None:
    stale = command_request(
        _lore(
            "quota",
            "set",
            options=[
                {"name": "scope", "type": 3, "value": "everyone"},
                {"name": "limit", "type": 4, "value": 5},
            ],
        )
    )
    assert isinstance(stale, Invalid) and "Usage:" in plain_text(stale.message)
    document = command_request(
        _lore(
            "docs",
            "promote",
            options=[
                {"name": "id", "type": 3, "value": "abc"},
                {"name": "namespace", "type": 3, "value": "hr"},
            ],
        )
    )
    assert isinstance(document, Invalid) and "/lore docs list" in plain_text(document.message)
    unknown = command_request(
        _lore("frobnicate", options=[{"name": "text", "type": 3, "value": "now"}])
    )
    assert unknown == Unknown("frobnicate now")
    assert isinstance(command_request(_lore("help", options=[])), Invocation)


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
