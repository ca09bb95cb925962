"""Pure translation of Slack payloads into the platform-neutral values core understands.

Nothing here talks to Slack: every function takes a payload (a dict shaped like Slack's documented
examples) and returns a frozen value, so the rules are easy to test and read.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.slack import commands
from core.admin import AdminCommand
from core.commands import promotion
from core.types import IncomingFile, IncomingMessage, Platform

Payload = Mapping[str, Any]

# Message subtypes that are a person talking; everything else (edits, joins, bot posts) is ignored.
HUMAN_SUBTYPES = (None, "file_share", "thread_broadcast")
FEEDBACK_ACTIONS = {"lore_feedback_up": 1, "lore_feedback_down": -1}
_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file as Slack describes it; ``stub`` means only the id is known (call files.info)."""

    file_id: str
    name: str
    size: int
    mimetype: str | None = None
    download_url: str | None = None
    permalink: str | None = None

    @property
    def stub(self) -> bool:
        return self.download_url is None

    def incoming(self) -> IncomingFile:
        """What core sees: the permalink is the citation link, never the private download URL."""
        return IncomingFile(
            file_id=self.file_id,
            filename=self.name,
            size=self.size,
            mime_type=self.mimetype,
            url=self.permalink,
        )


@dataclass(frozen=True, slots=True)
class FeedbackClick:
    """A 👍/👎 click on an answer."""

    workspace_id: str
    user_id: str
    channel_id: str | None
    message_ts: str | None
    message_id: uuid.UUID
    value: int


def mentions(text: str, user_id: str | None) -> bool:
    """True when ``text`` mentions ``user_id`` (``<@U123>`` or ``<@U123|name>``)."""
    return bool(user_id) and any(m == user_id for m in _USER_MENTION.findall(text or ""))


def strip_mentions(text: str, user_id: str | None) -> str:
    """Remove the bot's own mention; other people's mentions stay."""
    if not user_id:
        return (text or "").strip()
    cleaned = _USER_MENTION.sub(lambda m: "" if m.group(1) == user_id else m.group(0), text or "")
    return " ".join(cleaned.split())


def thread_of(event: Payload) -> str:
    """The thread an answer belongs in: the parent's ts, or the message itself at top level."""
    return str(event.get("thread_ts") or event["ts"])


def is_thread_reply(event: Payload) -> bool:
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts")


def is_plain_post(event: Payload) -> bool:
    """A person's own top-level text in a channel (no subtype: not an edit, a file share or a
    broadcast reply): core may answer it unasked where autoanswer is on."""
    return event.get("subtype") is None and not event.get("thread_ts") and not is_direct(event)


def is_direct(event: Payload) -> bool:
    return event.get("channel_type") == "im"


# A message event's channel_type says the place's privacy; app_mention events carry none.
_PRIVATE_TYPES = {"channel": False, "group": True, "im": True, "mpim": True}


def place_private(event: Payload) -> bool | None:
    """What the event says of its channel's privacy (None: it does not say)."""
    return _PRIVATE_TYPES.get(str(event.get("channel_type") or ""))


def channel_is_private(channel: Payload) -> bool | None:
    """``conversations.info``'s answer: DMs, group DMs and private channels are private; None
    when the object does not say (a channel id's first letter proves nothing)."""
    if any(channel.get(flag) for flag in ("is_private", "is_im", "is_mpim", "is_group")):
        return True
    return False if channel.get("is_private") is False else None


def is_ignored(event: Payload, *, bot_user_id: str | None, bot_id: str | None) -> bool:
    """Our own posts, other bots and non-human message subtypes are never answered."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message":
        return True
    if bot_user_id and event.get("user") == bot_user_id:
        return True
    if bot_id and event.get("bot_id") == bot_id:
        return True
    return event.get("subtype") not in HUMAN_SUBTYPES or not event.get("user")


def event_key(team_id: str, event: Payload) -> str:
    """One key per posted message: a retry, a repeated event id and the ``message`` copy of an
    ``app_mention`` all share it, so core answers once."""
    return f"{team_id}:{event.get('channel')}:{event.get('ts')}"


def received_at(event: Payload) -> datetime:
    try:
        return datetime.fromtimestamp(float(event.get("event_ts") or event["ts"]), tz=UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def files_of(event: Payload) -> tuple[SlackFile, ...]:
    """The files of a ``file_share`` (or a mention with files); stubs have no URLs."""
    return tuple(slack_file(f) for f in event.get("files") or () if f.get("id"))


def slack_file(raw: Payload) -> SlackFile:
    stub = raw.get("file_access") == "check_file_info"
    download = None if stub else (raw.get("url_private_download") or raw.get("url_private"))
    return SlackFile(
        file_id=str(raw["id"]),
        name=str(raw.get("name") or raw.get("title") or raw["id"]),
        size=int(raw.get("size") or 0),
        mimetype=raw.get("mimetype"),
        download_url=download,
        permalink=raw.get("permalink"),
    )


def message_from_event(
    event: Payload,
    *,
    team_id: str,
    bot_user_id: str | None,
    files: tuple[SlackFile, ...] = (),
    author_is_admin: bool = False,
    team_name: str | None = None,
) -> IncomingMessage:
    """An ``app_mention`` or ``message`` event as core's IncomingMessage."""
    return IncomingMessage(
        platform=Platform.SLACK,
        workspace_id=team_id,
        channel_id=str(event["channel"]),
        thread_id=thread_of(event),
        author_id=str(event["user"]),
        text=strip_mentions(str(event.get("text") or ""), bot_user_id),
        event_id=event_key(team_id, event),
        received_at=received_at(event),
        channel_name=event.get("channel_name"),
        workspace_name=team_name,
        message_id=str(event["ts"]),
        files=tuple(f.incoming() for f in files),
        is_direct=is_direct(event),
        place_private=place_private(event),
        author_is_admin=author_is_admin,
    )


def team_of(body: Payload) -> str:
    """The workspace id of an event envelope, a command or an interaction."""
    team = body.get("team_id") or body.get("team") or ""
    if isinstance(team, Mapping):
        team = team.get("id") or ""
    if not team and isinstance(body.get("user"), Mapping):
        team = body["user"].get("team_id") or ""
    return str(team)


# What a slash command's channel_name says of its channel.
_COMMAND_PLACES = {"directmessage": True, "privategroup": True}


def command_from_payload(body: Payload, *, is_admin: bool) -> AdminCommand:
    """A ``/lore`` slash command (form fields) as core's AdminCommand."""
    channel = str(body.get("channel_id") or "")
    name = str(body.get("channel_name") or "")
    return AdminCommand(
        platform=Platform.SLACK,
        workspace_id=team_of(body),
        channel_id=str(body.get("channel_id") or ""),
        user_id=str(body.get("user_id") or ""),
        request=commands.parse(str(body.get("text") or "")),
        is_platform_admin=is_admin,
        user_name=body.get("user_name"),
        channel_name=None if name in _COMMAND_PLACES else body.get("channel_name"),
        event_id=body.get("trigger_id"),
        is_direct=channel.startswith("D") or name == "directmessage",
        place_private=_COMMAND_PLACES.get(name),
    )


@dataclass(frozen=True, slots=True)
class ShareClick:
    """A "Share with NAMESPACE" click under an uploaded file's outcome."""

    workspace_id: str
    user_id: str
    channel_id: str
    message_ts: str | None
    document_id: uuid.UUID
    namespace: str


def share_from_action(body: Payload) -> ShareClick | None:
    """A ``block_actions`` payload for a share button; None when it is not a valid one."""
    action = next(iter(body.get("actions") or ()), None) or {}
    document, _, namespace = str(action.get("value") or "").partition(":")
    try:
        document_id = uuid.UUID(document)
    except ValueError:
        return None
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    if not channel or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", namespace):
        return None
    return ShareClick(
        workspace_id=team_of(body),
        user_id=str((body.get("user") or {}).get("id") or ""),
        channel_id=str(channel),
        message_ts=(body.get("message") or {}).get("ts") or container.get("message_ts"),
        document_id=document_id,
        namespace=namespace,
    )


def share_command(click: ShareClick, *, is_admin: bool) -> AdminCommand:
    """The `/lore docs promote` a share click stands for, as the person who clicked."""
    return AdminCommand(
        platform=Platform.SLACK,
        workspace_id=click.workspace_id,
        channel_id=click.channel_id,
        user_id=click.user_id,
        request=promotion(click.document_id, click.namespace),
        is_platform_admin=is_admin,
        is_direct=click.channel_id.startswith("D"),
    )


def feedback_from_action(body: Payload) -> FeedbackClick | None:
    """A ``block_actions`` payload for a feedback button; None when it is not one of ours."""
    for action in body.get("actions") or ():
        value = FEEDBACK_ACTIONS.get(str(action.get("action_id")))
        if value is None:
            continue
        try:
            message_id = uuid.UUID(str(action.get("value")))
        except ValueError:
            return None
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        ts = (body.get("message") or {}).get("ts") or container.get("message_ts")
        return FeedbackClick(
            workspace_id=team_of(body),
            user_id=str((body.get("user") or {}).get("id") or ""),
            channel_id=channel,
            message_ts=ts,
            message_id=message_id,
            value=value,
        )
    return None


def is_slack_admin(user: Payload) -> bool:
    """``users.info`` says the person is a workspace admin or owner."""
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
