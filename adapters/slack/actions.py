"""Slack's message shortcuts: "Ask Lorekeeper" and "Save thread to Lorekeeper".

Both arrive as ``message_action`` interaction payloads (``callback_id``, the chosen
``message``, its ``channel``, the invoking ``user``, ``team``, ``response_url``). Asking goes
through the conversation pipeline like a mention, as the person who asked, answered in the
message's thread, or, where the bot is not a member, in a thread of its DM with them. Saving
first asks where, in a modal (``adapters/slack/dialog.py``) offering what core allows the
saver; its submission reads the thread with conversations.replies and hands its people's
posts to ``UploadService.save_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack import dialog, events, render
from adapters.slack.events import Payload
from adapters.slack.reply import SlackReply
from core.threads import MAX_POSTS, ThreadPost
from core.types import IncomingFile, IncomingMessage, Platform
from core.wording import SAVE_THREAD_FAILED

if TYPE_CHECKING:
    from adapters.slack.app import SlackBot

log = logging.getLogger(__name__)

ASK = "lore_ask_message"
SAVE = "lore_save_thread"
SHORTCUTS = (ASK, SAVE)  # deploy/slack/manifest.yml declares these
PAGES = 10  # conversations.replies pages read at most (MAX_POSTS posts)
NOT_READABLE = (
    "I can't read that thread: add me to the channel (or ask an admin to), then try again."
)
ASKED_HERE = "You asked about a message in <#{channel}>; I'm not in that channel, so I answer here."
_SLACK_ERRORS = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def chosen_root(body: Payload) -> str:
    """The thread a shortcut's message belongs to: its parent's ts, or its own."""
    return events.thread_of(body.get("message") or {})


def question_from_shortcut(
    body: Payload, *, bot_user_id: str | None, team_name: str | None = None
) -> IncomingMessage:
    """An "Ask Lorekeeper" payload as core's message: the chosen message's text and files,
    asked by the person who invoked the shortcut, answered in the message's thread. Its event
    key differs from the message's own, so a message the bot has answered can be asked about."""
    chosen = body.get("message") or {}
    team = events.team_of(body)
    channel = str((body.get("channel") or {}).get("id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    files = events.files_of(chosen)
    return IncomingMessage(
        platform=Platform.SLACK,
        workspace_id=team,
        channel_id=channel,
        thread_id=events.thread_of(chosen),
        author_id=user,
        text=events.strip_mentions(str(chosen.get("text") or ""), bot_user_id),
        event_id=f"ask:{team}:{channel}:{chosen.get('ts')}:{user}",
        received_at=_action_time(body),
        workspace_name=team_name,
        message_id=str(chosen.get("ts") or ""),
        files=tuple(f.incoming() for f in files),
        is_direct=channel.startswith("D"),
    )


def deleted_root(event: Payload) -> str | None:
    """The saved-thread key (``channel:ts``) of a deleted message: ``message_deleted``, or a
    root with replies that Slack turns into a tombstone (``message_changed``)."""
    channel = event.get("channel")
    if event.get("subtype") == "message_deleted" and event.get("deleted_ts"):
        return f"{channel}:{event['deleted_ts']}"
    changed = event.get("message") or {}
    if event.get("subtype") == "message_changed" and changed.get("subtype") == "tombstone":
        return f"{channel}:{changed.get('ts')}"
    return None


def _action_time(body: Payload) -> datetime:
    try:
        return datetime.fromtimestamp(float(body["action_ts"]), tz=UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def _posted_at(message: Payload) -> datetime:
    try:
        return datetime.fromtimestamp(float(message["ts"]), tz=UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


class MessageActions:
    """The two shortcuts' listeners (ack at once, spawn) and the work they start."""

    def __init__(self, bot: SlackBot, *, spawn: Spawn) -> None:
        self._bot = bot
        self._spawn = spawn

    def register(self, app: AsyncApp) -> None:
        """Listen for both shortcuts and for the save dialog's submission."""
        app.message_shortcut(ASK)(self.on_ask)
        app.message_shortcut(SAVE)(self.on_save)
        app.view(dialog.CALLBACK)(self.on_pick)

    async def on_ask(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        self._spawn(self.ask(body, context.bot_user_id), "slack-ask-message")

    async def on_save(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        self._spawn(self.offer(body, respond), "slack-save-dialog")

    async def on_pick(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        """A submitted save dialog: closed at once, the thread saved where it names (if the
        submitter may), the outcome told through the shortcut's response_url."""
        found = dialog.picked(body)
        if found is None:
            await ack(response_action="errors", errors={dialog.BLOCK: dialog.NOT_PICKED})
            return
        await ack()
        origin, into = found
        chosen = {"ts": origin.thread, "thread_ts": origin.thread}
        as_shortcut = dict(body, channel={"id": origin.channel}, message=chosen)
        respond = AsyncRespond(response_url=origin.response_url)
        job = self.save(
            as_shortcut, respond, bot_user=context.bot_user_id, bot_id=context.bot_id, into=into
        )
        self._spawn(job, "slack-save-thread")

    # -- "Ask Lorekeeper" -----------------------------------------------------------------------

    async def ask(self, body: Payload, bot_user: str | None) -> None:
        bot = self._bot
        message = question_from_shortcut(body, bot_user_id=bot_user, team_name=bot.team_name)
        chosen = events.files_of(body.get("message") or {})
        source = bot.file_source(chosen) if chosen else None
        await bot.conversations.handle(
            message, _AskThread(bot, message), addressed=True, files=source
        )

    # -- "Save thread to Lorekeeper" ------------------------------------------------------------

    async def offer(self, body: Payload, respond: Any) -> None:
        """Open the dialog asking where to save the chosen message's thread, offering what
        core allows the saver; or tell them why they may save it nowhere."""
        request = await self._request(body)
        try:
            uploads = self._bot.conversations.uploads
            choices = await uploads.save_choices(request, limit=dialog.MAX_OPTIONS)
        except Exception:
            log.exception("offering to save thread %s failed", request.thread_id)
            await respond(text=SAVE_THREAD_FAILED, response_type="ephemeral")
            return
        if choices.suggest:
            await respond(
                text=render.plain(await self._suggest(request)), response_type="ephemeral"
            )
            return
        if choices.refusal is not None:
            await respond(text=render.plain(choices.refusal), response_type="ephemeral")
            return
        origin = dialog.Origin(
            request.channel_id, request.thread_id, str(body.get("response_url") or "")
        )
        try:
            await self._bot.client.views_open(
                trigger_id=str(body.get("trigger_id") or ""),
                view=dialog.save_dialog(choices, origin),
            )
        except _SLACK_ERRORS as exc:
            log.warning("views.open failed: %s", type(exc).__name__)
            await respond(text=dialog.NOT_OPENED, response_type="ephemeral")

    async def _suggest(self, request: IncomingMessage) -> str:
        """A member may not save: ask the owner in the thread to; what the member reads."""
        call = await self._bot.conversations.suggest_save(request)
        if call.refusal is None:
            shown = render.save_suggestion(call.owner, call.asker, call.namespace, call.thread)
            try:
                await self._bot.client.chat_postMessage(
                    channel=call.channel,
                    thread_ts=call.thread,
                    text=shown.text,
                    blocks=shown.blocks,
                )
            except _SLACK_ERRORS as exc:
                log.warning("suggesting a save failed: %s", type(exc).__name__)
                await self._bot.conversations.suggestion_failed(request)
                return SAVE_THREAD_FAILED
        return call.said

    async def _request(self, body: Payload) -> IncomingMessage:
        """The saver's request: the chosen message's thread, asked by whoever acted (with
        their admin status)."""
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        team = events.team_of(body)
        root = chosen_root(body)
        return IncomingMessage(
            platform=Platform.SLACK,
            workspace_id=team,
            channel_id=channel,
            thread_id=root,
            author_id=user,
            text="",
            event_id=f"save:{team}:{channel}:{root}:{user}",
            received_at=_action_time(body),
            workspace_name=self._bot.team_name,
            message_id=root,
            is_direct=channel.startswith("D"),
            author_is_admin=await self._bot.is_admin(user),
        )

    async def save(
        self,
        body: Payload,
        respond: Any,
        *,
        bot_user: str | None,
        bot_id: str | None,
        into: str | None = None,
    ) -> None:
        """Save the thread of ``body``'s message into ``into`` (a dialog's choice; None: where
        the place's files go), as whoever acted; tell them the outcome."""
        bot = self._bot
        channel = str((body.get("channel") or {}).get("id") or "")
        root = chosen_root(body)
        try:
            raw = await self._replies(channel, root)
        except SlackApiError as exc:
            log.warning("conversations.replies failed: %s", exc.response.get("error"))
            await respond(text=NOT_READABLE, response_type="ephemeral")
            return
        people = [m for m in raw if not events.is_ignored(m, bot_user_id=bot_user, bot_id=bot_id)]
        posts = [
            ThreadPost(
                author=await bot.names.user(str(m["user"])) or str(m["user"]),
                posted_at=_posted_at(m),
                text=events.strip_mentions(str(m.get("text") or ""), bot_user),
            )
            for m in people
        ]
        request = await bot.named(await self._request(body))
        try:
            outcome = await bot.conversations.uploads.save_thread(
                request,
                posts,
                permalink=await self._permalink(body, channel, root),
                root_id=f"{channel}:{root}",
                into=into,
            )
            said = outcome.message
        except Exception:
            log.exception("saving thread %s:%s failed", channel, root)
            said = SAVE_THREAD_FAILED
        await respond(text=render.plain(said), response_type="ephemeral")

    async def _replies(self, channel: str, root: str) -> list[dict[str, Any]]:
        """The thread's messages, root first (bounded to :data:`MAX_POSTS`)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(PAGES):
            page = await self._bot.client.conversations_replies(
                channel=channel, ts=root, limit=200, cursor=cursor
            )
            found += list(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or len(found) >= MAX_POSTS:
                break
        return found[:MAX_POSTS]

    async def _permalink(self, body: Payload, channel: str, root: str) -> str:
        try:
            found = await self._bot.client.chat_getPermalink(channel=channel, message_ts=root)
            return str(found["permalink"])
        except (*_SLACK_ERRORS, KeyError) as exc:
            log.warning("chat.getPermalink failed: %s", type(exc).__name__)
        domain = str((body.get("team") or {}).get("domain") or "app")
        return f"https://{domain}.slack.com/archives/{channel}/p{root.replace('.', '')}"


class _AskThread:
    """Where an "Ask Lorekeeper" answer goes: the chosen message's thread, or, when the bot
    is not in that channel, a thread in its DM with the asker (opened by a line saying so)."""

    def __init__(self, bot: SlackBot, message: IncomingMessage) -> None:
        self._bot = bot
        self._message = message
        self._channel = message.channel_id
        self._thread = message.thread_id

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        bot = self._bot
        message = await bot.named(message)
        if message.files:
            message = replace(message, author_is_admin=await bot.is_admin(message.author_id))
        self._message = message
        if not await self._is_member(message.channel_id):
            opened = await bot.client.conversations_open(users=message.author_id)
            dm = str(opened["channel"]["id"])
            intro = await bot.client.chat_postMessage(
                channel=dm, text=ASKED_HERE.format(channel=message.channel_id)
            )
            self._channel, self._thread = dm, str(intro["ts"])
        return message

    async def _is_member(self, channel: str) -> bool:
        """Whether the bot may post in ``channel`` (when Slack cannot say: yes)."""
        try:
            found = await self._bot.client.conversations_info(channel=channel)
        except SlackApiError as exc:
            return exc.response.get("error") not in ("channel_not_found", "not_in_channel")
        except (SlackClientError, aiohttp.ClientError, TimeoutError):
            return True
        return (found.get("channel") or {}).get("is_member") is not False

    def reply(self, file: IncomingFile | None = None) -> SlackReply:
        if file is not None:
            return self._bot.reply(self._channel, self._thread, filename=file.filename)
        asker = (self._message.workspace_id, self._message.author_id)
        return self._bot.reply(self._channel, self._thread, asker=asker)
