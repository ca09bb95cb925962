"""Pure translation from discord.py models and interaction payloads to core's values.

Nothing here talks to Discord or to core: each function reads a few attributes of a
discord.py model (or fields of an interaction's ``data``) and returns a frozen core value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord

from core.admin import AdminCommand
from core.commands import (
    REGISTRY,
    ChannelArg,
    Registry,
    Request,
    Unknown,
    UserArg,
    bind,
    words_of,
)
from core.types import IncomingFile, IncomingMessage, Platform

_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_ID = re.compile(r"[0-9]{1,20}")
_THREADS = {
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
}
_ALWAYS_PRIVATE = {
    discord.ChannelType.private,
    discord.ChannelType.group,
    discord.ChannelType.private_thread,
}
# Option types of application commands (Discord API): sub-command, sub-command group, channel.
_SUBCOMMAND, _GROUP, _USER, _CHANNEL = 1, 2, 6, 7


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message or command happened, in core's terms.

    ``channel_id`` is the parent channel for a thread, so channel namespace bindings apply;
    ``thread_id`` is None in a plain guild channel (the adapter starts a thread there).
    ``is_private`` is what the cached channel says (None when it cannot tell).
    """

    workspace_id: str
    channel_id: str
    thread_id: str | None
    is_direct: bool = False
    workspace_name: str | None = None
    channel_name: str | None = None
    is_private: bool | None = None


def place_of(channel: Any, *, guild: Any, user_id: int) -> Place:
    """The workspace/channel/thread of a discord.py channel (guild id, or ``dm-<user>``)."""
    kind = getattr(channel, "type", None)
    if guild is None or kind in (discord.ChannelType.private, discord.ChannelType.group):
        return Place(
            f"dm-{user_id}", str(channel.id), str(channel.id), is_direct=True, is_private=True
        )
    private = channel_privacy(channel, guild=guild)
    if kind in _THREADS:
        parent = getattr(channel, "parent", None)
        return Place(
            str(guild.id),
            str(channel.parent_id),
            str(channel.id),
            workspace_name=guild.name,
            channel_name=getattr(parent, "name", None),
            is_private=private,
        )
    name = getattr(channel, "name", None)
    return Place(
        str(guild.id),
        str(channel.id),
        None,
        workspace_name=guild.name,
        channel_name=name,
        is_private=private,
    )


def channel_privacy(channel: Any, *, guild: Any) -> bool | None:
    """Whether a channel is private: @everyone may not view it (a thread follows its parent;
    private threads and DMs are private). None when the cached models cannot tell."""
    kind = getattr(channel, "type", None)
    if kind in _ALWAYS_PRIVATE:
        return True
    if kind in _THREADS:
        channel = getattr(channel, "parent", None)
    everyone = getattr(guild, "default_role", None)
    # A PartialMessageable answers permissions_for with "none", which would read as private.
    if everyone is None or not isinstance(channel, discord.abc.GuildChannel):
        return None
    try:
        return not channel.permissions_for(everyone).view_channel
    except (discord.ClientException, AttributeError):
        return None


def mentions_user(message: Any, user_id: int) -> bool:
    return any(u.id == user_id for u in message.mentions)


def strip_mentions(content: str, user_id: int) -> str:
    """The text of a message without the bot's own mention (other mentions stay)."""
    text = re.sub(rf"<@!?{user_id}>", " ", content)
    return " ".join(text.split())


def incoming_file(attachment: Any) -> IncomingFile:
    return IncomingFile(
        file_id=str(attachment.id),
        filename=attachment.filename,
        size=int(attachment.size),
        mime_type=attachment.content_type,
        url=attachment.url,
    )


def incoming_message(
    message: Any,
    place: Place,
    *,
    thread_id: str,
    bot_id: int,
    author_is_admin: bool = False,
    dm_workspaces: tuple[str, ...] = (),
) -> IncomingMessage:
    """A discord.py Message in ``place`` as core's IncomingMessage (event id = message id).

    ``dm_workspaces``: for a DM, the servers the author shares with the bot.
    """
    return IncomingMessage(
        platform=Platform.DISCORD,
        workspace_id=place.workspace_id,
        channel_id=place.channel_id,
        thread_id=thread_id,
        author_id=str(message.author.id),
        text=strip_mentions(message.content, bot_id),
        event_id=str(message.id),
        received_at=message.created_at,
        author_name=message.author.display_name,
        channel_name=place.channel_name,
        workspace_name=place.workspace_name,
        message_id=str(message.id),
        files=tuple(incoming_file(a) for a in message.attachments),
        is_direct=place.is_direct,
        place_private=place.is_private,
        author_is_admin=author_is_admin,
        dm_workspaces=dm_workspaces if place.is_direct else (),
    )


def attachments_left(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The ids of the attachments a MESSAGE_UPDATE says its message carries now; None when it
    says nothing of them (Discord leaves ``attachments`` out when they did not change) or the
    message is a bot's (no bot's files are indexed)."""
    listed = data.get("attachments")
    author = data.get("author")
    if not isinstance(listed, list) or (isinstance(author, Mapping) and author.get("bot")):
        return None
    return tuple(str(a["id"]) for a in listed if isinstance(a, Mapping) and "id" in a)


def starter_survives(parent: Any) -> bool:
    """Whether a deleted thread leaves the message it was started from (which has the
    thread's id): in a text or announcement channel that message stays in the channel; a
    forum or media post's first message is inside the post and goes with it. A parent not
    known (itself deleted) leaves nothing."""
    return getattr(parent, "type", None) in (discord.ChannelType.text, discord.ChannelType.news)


def thread_name(text: str, *, fallback: str = "Lorekeeper") -> str:
    """A thread title from the question (Discord allows 1-100 characters)."""
    words = " ".join(text.split())
    if not words:
        return fallback
    return words if len(words) <= 90 else words[:89].rstrip() + "…"


# --- application commands -------------------------------------------------------------


def command_parts(data: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Walk an interaction's nested options: the subcommand path and the leaf values (as
    Discord typed them: strings, integers, booleans; a channel as a :class:`ChannelArg`)."""
    path: list[str] = []
    options: Sequence[Mapping[str, Any]] = data.get("options") or []
    while True:
        nested = next((o for o in options if o.get("type") in (_SUBCOMMAND, _GROUP)), None)
        if nested is None:
            break
        path.append(str(nested["name"]))
        options = nested.get("options") or []
    resolved = data.get("resolved") or {}
    values = {
        str(o["name"]): _option_value(o, resolved) for o in options if o.get("value") is not None
    }
    return tuple(path), values


def _option_value(option: Mapping[str, Any], resolved: Mapping[str, Any]) -> Any:
    if option.get("type") == _USER:
        user_id = str(option["value"])
        user = (resolved.get("users") or {}).get(user_id) or {}
        name = user.get("global_name") or user.get("username")
        return UserArg(user_id, str(name) if name else None)
    if option.get("type") != _CHANNEL:
        return option["value"]
    channels = resolved.get("channels") or {}
    channel_id = str(option["value"])
    name = (channels.get(channel_id) or {}).get("name")
    return ChannelArg(channel_id, str(name) if name else None)


def command_request(data: Mapping[str, Any], registry: Registry = REGISTRY) -> Request:
    """An interaction's `/lore` command as core's request: the options are already typed, so
    they go straight into the command's arguments (a path the registry lacks is unknown)."""
    path, values = command_parts(data)
    command = registry.get(path)
    if command is None:
        return Unknown(words_of(path, values))
    return bind(command, values)


def admin_grant(
    *, manage_guild: bool, roles: Iterable[tuple[int, str]], admin_role: str | None
) -> str | None:
    """Why a member is an admin: ``"manage_guild"``, ``"role_id"``, ``"role_name"`` or None.

    A numeric ``admin_role`` is a role id and matches only that role. Any other value matches
    roles by name, which is weaker: anyone who may create roles can make one with that name.
    """
    if manage_guild:
        return "manage_guild"
    wanted = (admin_role or "").strip()
    if not wanted:
        return None
    if _ROLE_ID.fullmatch(wanted):
        return "role_id" if any(str(role_id) == wanted for role_id, _ in roles) else None
    name = wanted.casefold()
    return "role_name" if any(role.casefold() == name for _, role in roles) else None


def is_admin(
    *, manage_guild: bool, roles: Iterable[tuple[int, str]], admin_role: str | None
) -> bool:
    """Manage Server in this channel, or the configured role (see :func:`admin_grant`)."""
    return admin_grant(manage_guild=manage_guild, roles=roles, admin_role=admin_role) is not None


def admin_command(
    *,
    place: Place,
    user: Any,
    request: Request,
    admin: bool,
    event_id: str,
    received_at: datetime,
    dm_workspaces: tuple[str, ...] = (),
) -> AdminCommand:
    """A `/lore` command (or a button standing for one) by ``user`` in ``place``."""
    return AdminCommand(
        platform=Platform.DISCORD,
        workspace_id=place.workspace_id,
        channel_id=place.channel_id,
        user_id=str(user.id),
        request=request,
        is_platform_admin=admin,
        user_name=getattr(user, "display_name", None),
        channel_name=place.channel_name,
        event_id=event_id,
        received_at=received_at,
        is_direct=place.is_direct,
        place_private=place.is_private,
        dm_workspaces=dm_workspaces if place.is_direct else (),
    )
