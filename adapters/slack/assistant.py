"""Lorekeeper in Slack's assistant panel (the AI app split view), through bolt's AsyncAssistant.

- ``assistant_thread_started``: a greeting in the new thread, and up to four suggested prompts
  from what the user may read there (core's ``starters``: the prompts an admin set on a
  namespace, else requests about its newest documents).
- ``assistant_thread_context_changed``: the channel the user now views is kept in the
  metadata of the greeting, where Slack's guide (and bolt's default store) keeps a thread's
  context: every replica reads it back from Slack, nothing is held in memory.
- A user's message in the thread (``message.im``): the same road into core as a mention
  (``SlackBot._handle``), with the viewed channel on the IncomingMessage, so that channel's
  knowledge answers under the rules of ``core.places``; assistant.threads.setStatus says what
  is going on ("is searching general…", "is writing…") and the first question titles the
  thread. A message in an ordinary DM thread goes the ordinary way.

The context is trusted as far as Slack vouches for it: it comes in signed events, and only the
bot user's own greeting carries it (a person can post metadata too, so theirs is never read).
A channel of another workspace, or a DM, answers as the DM does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import events, render
from adapters.slack.events import Payload
from core.answer import AnswerService
from core.conversation import ReplyChannel
from core.errors import LorekeeperError
from core.types import (
    Answer,
    IncomingFile,
    IncomingMessage,
    Platform,
    Progress,
    Reply,
    UploadOutcome,
)

log = logging.getLogger(__name__)

ASSISTANT_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")
CONTEXT_EVENT = "assistant_thread_context"  # the metadata event_type Slack's guide and bolt use
ROOT_SUBTYPE = "assistant_app_thread"  # the root message of an assistant thread
GREETING = (
    "Hi! I answer from your team's documents, with sources. Ask me anything, or pick a "
    "suggestion. I read what the channel you are viewing reads."
)
PROMPTS_TITLE = "Try asking"
MAX_PROMPTS = 4  # Slack shows up to four
PROMPT_TITLE_WIDTH = 40
PROMPT_WIDTH = 200
TITLE_WIDTH = 80
WRITING = "is writing…"
_FAILURES = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)
_REPLIES_LIMIT = 6  # the root, the greeting, the first question and a little slack

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
Handle = Callable[..., Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class PanelThread:
    """An assistant thread as the bot found it: the channel its user views (None: none that
    answers) and whether the message being answered is its first question."""

    channel: str
    thread_ts: str
    viewing: str | None
    first_question: bool


def viewed_channel(context: Mapping[str, Any] | None, *, team_id: str) -> str | None:
    """The channel of a thread context whose knowledge may answer: a channel of this
    workspace. None for none, a DM (``D…``: it reads as the assistant's DM does), or a channel
    of another workspace."""
    context = context or {}
    channel = str(context.get("channel_id") or "")
    team = context.get("team_id")
    if not channel or channel.startswith("D") or (team and team != team_id):
        return None
    return channel


def starter_message(event: Payload, *, team_id: str, viewing: str | None) -> IncomingMessage:
    """An ``assistant_thread_started`` event as the place its first question will come from."""
    thread = event["assistant_thread"]
    channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
    return IncomingMessage(
        platform=Platform.SLACK,
        workspace_id=team_id,
        channel_id=channel,
        thread_id=thread_ts,
        author_id=str(thread["user_id"]),
        text="",
        event_id=f"{team_id}:{channel}:{thread_ts}:started",
        received_at=events.received_at(event),
        is_direct=True,
        place_private=True,
        viewing_channel_id=viewing,
    )


def inert(text: str) -> str:
    """Outside text (a document title, a question) for a plain-text field: no markup, no
    mention of a room, one line."""
    return render.quiet(" ".join(text.replace("<", "‹").replace(">", "›").split()))


def prompts(starters: Sequence[str]) -> list[dict[str, str]]:
    """Suggested prompts as assistant.threads.setSuggestedPrompts takes them."""
    return [
        {
            "title": render.shorten(inert(s), PROMPT_TITLE_WIDTH),
            "message": render.shorten(inert(s), PROMPT_WIDTH),
        }
        for s in starters[:MAX_PROMPTS]
    ]


def searching(namespaces: Sequence[str]) -> str:
    """The status line while core searches (Slack shows it after the app's name)."""
    where = f" {inert(', '.join(namespaces))}" if namespaces else ""
    return f"is searching{where}…"


def _ts(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _greeting(messages: Sequence[Payload], bot_user: str | None) -> Payload | None:
    """The bot user's greeting: its first reply in the thread, if it carries a context."""
    for message in messages:
        if not bot_user or message.get("user") != bot_user or message.get("subtype"):
            continue
        if message.get("ts") == message.get("thread_ts"):
            continue  # a thread the bot started itself
        metadata = message.get("metadata") or {}
        return message if metadata.get("event_type") == CONTEXT_EVENT else None
    return None


def _person(message: Payload) -> bool:
    return (
        bool(message.get("user"))
        and not message.get("bot_id")
        and message.get("subtype") in events.HUMAN_SUBTYPES
    )


class PanelThreads:
    """Assistant threads' context, kept in the metadata of the bot's greeting."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def _replies(self, channel: str, thread_ts: str) -> list[Payload]:
        response = await self._client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=_REPLIES_LIMIT
        )
        return list(response.get("messages") or [])

    async def find(
        self, event: Payload, *, team_id: str, bot_user: str | None
    ) -> PanelThread | None:
        """The assistant thread a message was posted in; None for an ordinary DM thread."""
        channel, thread_ts = str(event["channel"]), str(event["thread_ts"])
        messages = await self._replies(channel, thread_ts)
        greeting = _greeting(messages, bot_user)
        started = greeting is not None or any(m.get("subtype") == ROOT_SUBTYPE for m in messages)
        if not started:
            return None
        context = ((greeting or {}).get("metadata") or {}).get("event_payload")
        asked_at = _ts(event.get("ts"))
        earlier = any(
            _person(m) and m.get("ts") != thread_ts and _ts(m.get("ts")) < asked_at
            for m in messages
        )
        return PanelThread(
            channel,
            thread_ts,
            viewed_channel(context, team_id=team_id),
            first_question=not earlier,
        )

    async def greeted(self, channel: str, thread_ts: str, *, bot_user: str | None) -> bool:
        return _greeting(await self._replies(channel, thread_ts), bot_user) is not None

    async def save(
        self, channel: str, thread_ts: str, context: Mapping[str, Any], *, bot_user: str | None
    ) -> None:
        """Keep ``context`` on the thread's greeting (nothing to keep it on: logged)."""
        greeting = _greeting(await self._replies(channel, thread_ts), bot_user)
        if greeting is None:
            log.info("assistant thread %s has no greeting to keep its context on", thread_ts)
            return
        await self._client.chat_update(
            channel=channel,
            ts=str(greeting["ts"]),
            text=str(greeting.get("text") or ""),
            blocks=greeting.get("blocks") or None,
            metadata=_metadata(context),
        )


def _metadata(context: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in context.items() if k in ("channel_id", "team_id", "enterprise_id")}
    return {"event_type": CONTEXT_EVENT, "event_payload": kept}


class PanelReply:
    """Core's Reply in an assistant thread: the status line says what core is doing; the
    answer itself is the wrapped reply's (posted, streamed and finished as anywhere else). A
    status Slack refuses falls back to the wrapped reply's placeholder."""

    def __init__(self, reply: Reply, status: Callable[[str], Awaitable[bool]]) -> None:
        self._reply = reply
        self._status = status
        self._writing = False
        self._shown = False  # something is in the thread (or a status that must be cleared)

    async def thinking(self, namespaces: Sequence[str]) -> None:
        if not await self._status(searching(namespaces)):
            await self._reply.thinking(namespaces)
        self._shown = True

    async def stream(self, text_so_far: str) -> None:
        if text_so_far.strip() and not self._writing:
            self._writing = True
            await self._status(WRITING)
        await self._reply.stream(text_so_far)

    async def progress(self, progress: Progress) -> None:
        await self._reply.progress(progress)

    async def finish(self, answer: Answer) -> None:
        await self._reply.finish(answer)  # a reply in the thread clears the status

    async def done(self, outcome: UploadOutcome) -> None:
        await self._reply.done(outcome)

    async def fail(self, text: str) -> None:
        await self._reply.fail(text)

    async def discard(self) -> None:
        if self._shown:
            await self._status("")  # an empty status clears it
        await self._reply.discard()


class PanelChannel:
    """The replies to one message in an assistant thread (a ReplyChannel around the usual
    one): the first question titles the thread, answers show a status while they work."""

    def __init__(self, inner: ReplyChannel, panel: Panel) -> None:
        self._inner = inner
        self._panel = panel

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        message = await self._inner.prepare(message)
        if self._panel.thread.first_question and message.text:
            await self._panel.title(message.text)
        return message

    def reply(self, file: IncomingFile | None = None) -> Reply:
        reply = self._inner.reply(file)
        return reply if file is not None else PanelReply(reply, self._panel.status)


class Panel:
    """One message's assistant thread, as ``SlackBot._handle`` uses it."""

    def __init__(self, client: AsyncWebClient, thread: PanelThread) -> None:
        self._client = client
        self.thread = thread

    def scope(self, message: IncomingMessage) -> IncomingMessage:
        """The message, read beside the channel its author is viewing."""
        return replace(message, viewing_channel_id=self.thread.viewing)

    def around(self, channel: ReplyChannel) -> ReplyChannel:
        return PanelChannel(channel, self)

    async def status(self, text: str) -> bool:
        """Set (or with "" clear) the thread's status; False when Slack refused."""
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self.thread.channel, thread_ts=self.thread.thread_ts, status=text
            )
        except _FAILURES as exc:
            log.info("assistant.threads.setStatus failed: %s", _error(exc))
            return False
        return True

    async def title(self, question: str) -> None:
        try:
            await self._client.assistant_threads_setTitle(
                channel_id=self.thread.channel,
                thread_ts=self.thread.thread_ts,
                title=render.shorten(inert(question), TITLE_WIDTH),
            )
        except _FAILURES as exc:
            log.info("assistant.threads.setTitle failed: %s", _error(exc))


class SlackAssistant:
    """The assistant panel's listeners. Like every listener they decide, spawn and return;
    questions go to ``handle`` (``SlackBot._handle``), the one road into core."""

    def __init__(
        self, client: AsyncWebClient, *, answers: AnswerService, spawn: Spawn, handle: Handle
    ) -> None:
        self._client = client
        self._answers = answers
        self._spawn = spawn
        self._handle = handle
        self._threads = PanelThreads(client)

    def assistant(self) -> AsyncAssistant:
        """The bolt middleware to register with ``app.assistant(...)``."""
        assistant = AsyncAssistant(logger=log)
        assistant.thread_started(self._on_started)
        assistant.thread_context_changed(self._on_context_changed)
        assistant.user_message(self._on_message)
        return assistant

    async def _on_started(
        self, event: dict[str, Any], body: dict[str, Any], context: Any, request: Any
    ) -> None:
        # Slack retries an event it did not see acknowledged: greet once
        retried = bool(request.headers.get("x-slack-retry-num"))
        job = self._greet(
            event, events.team_of(body), bot_user=context.bot_user_id, retried=retried
        )
        self._spawn(job, "slack-assistant-started")

    async def _on_context_changed(
        self, event: dict[str, Any], body: dict[str, Any], context: Any
    ) -> None:
        thread = event.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            job = self._threads.save(
                str(thread["channel_id"]),
                str(thread["thread_ts"]),
                thread.get("context") or {},
                bot_user=context.bot_user_id,
            )
            self._spawn(job, "slack-assistant-context")

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        bot_user = context.bot_user_id
        if events.is_ignored(event, bot_user_id=bot_user, bot_id=context.bot_id):
            return
        self._spawn(self._answer(event, body, bot_user), "slack-assistant-message")

    async def _greet(
        self, event: Payload, team_id: str, *, bot_user: str | None, retried: bool
    ) -> None:
        thread = event["assistant_thread"]
        channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
        if retried and await self._threads.greeted(channel, thread_ts, bot_user=bot_user):
            return
        context = thread.get("context") or {}
        await self._client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=GREETING,
            blocks=[render.section(GREETING)],
            metadata=_metadata(context),
        )
        viewing = viewed_channel(context, team_id=team_id)
        message = starter_message(event, team_id=team_id, viewing=viewing)
        try:
            starters = await self._answers.starters(message, limit=MAX_PROMPTS)
        except LorekeeperError as exc:  # a workspace outside the organisation
            log.info("no suggested prompts: %s", exc.reason)
            return
        if starters:
            await self._client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=thread_ts,
                prompts=prompts(starters),
                title=PROMPTS_TITLE,
            )

    async def _answer(self, event: Payload, body: Payload, bot_user: str | None) -> None:
        team_id = events.team_of(body)
        try:
            thread = await self._threads.find(event, team_id=team_id, bot_user=bot_user)
        except _FAILURES as exc:  # answered as a DM: what every DM may read
            log.warning(
                "reading assistant thread %s failed: %s", event.get("thread_ts"), _error(exc)
            )
            thread = None
        panel = Panel(self._client, thread) if thread is not None else None
        await self._handle(event, body, bot_user, addressed=True, panel=panel)


def _error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "error")
    return type(exc).__name__
