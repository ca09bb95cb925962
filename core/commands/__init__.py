"""The `/lore` commands: typed definitions in a registry, their handlers, and their results.

Adapters parse their platform's command (Slack's text, Discord's typed options) into a
:class:`Request` for one of :data:`REGISTRY`'s commands, hand it to
:class:`core.admin.AdminService` inside an :class:`AdminCommand`, and render the
:class:`CommandResult`'s rich text in their own markup.
"""

from __future__ import annotations

from core.commands.arguments import (
    ChannelArg,
    ChannelReader,
    Invalid,
    Invocation,
    Request,
    Unknown,
    UserArg,
    UserReader,
    Value,
    bind,
    parse_words,
    plain_channel,
    plain_user,
    split_words,
    words_of,
)
from core.commands.call import AdminCommand, Call, CommandResult, Tools
from core.commands.catalogue import REGISTRY
from core.commands.definition import Command, Kind, Param
from core.commands.documents import promotion
from core.commands.registry import Registry


def parse_text(
    text: str, *, channel: ChannelReader = plain_channel, user: UserReader = plain_user
) -> Request:
    """`/lore` text (the words after the command) as a request for :data:`REGISTRY`."""
    return parse_words(REGISTRY, text, channel=channel, user=user)


__all__ = [
    "REGISTRY",
    "AdminCommand",
    "Call",
    "ChannelArg",
    "ChannelReader",
    "Command",
    "CommandResult",
    "Invalid",
    "Invocation",
    "Kind",
    "Param",
    "Registry",
    "Request",
    "Tools",
    "Unknown",
    "UserArg",
    "UserReader",
    "Value",
    "bind",
    "parse_text",
    "plain_channel",
    "plain_user",
    "promotion",
    "split_words",
    "words_of",
]
