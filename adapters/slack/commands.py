"""`/lore` text on Slack: the grammar generated from core's command registry, with Slack's way
of writing a channel.

With ``should_escape`` on (deploy/slack/manifest.yml), Slack sends a channel picked in the
command as ``<#C123|name>`` (``<#C123>`` when it has no name to give); typed by hand it may
arrive as plain ``#name``, which is taken as the channel's id, as it always was.
"""

from __future__ import annotations

import re

from core.commands import ChannelArg, Request, UserArg, parse_text

_CHANNEL = re.compile(r"^<#([A-Z0-9]{2,30})(?:\|([^>]{0,80}))?>$|^#([A-Za-z0-9_-]{1,80})$")
_USER = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|([^>]{0,80}))?>$")


def slack_channel(word: str) -> ChannelArg | None:
    """``<#C123|general>``, ``<#C123>`` or ``#general`` as a channel argument."""
    match = _CHANNEL.match(word)
    if match is None:
        return None
    if match.group(1):
        return ChannelArg(match.group(1), match.group(2) or None)
    return ChannelArg(match.group(3))


def slack_user(word: str) -> UserArg | None:
    """``<@U123|name>`` or ``<@U123>`` (a person picked in the command) as a user argument."""
    match = _USER.match(word)
    return UserArg(match.group(1), match.group(2) or None) if match else None


def parse(text: str) -> Request:
    """The words after `/lore` as a request for one of core's commands."""
    return parse_text(text, channel=slack_channel, user=slack_user)
