"""The Slack app: slack-bolt listeners that translate, call one core service, and render.

Every listener returns at once (Bolt acknowledges events before it runs them; commands and
button clicks call ``ack()`` first) and hands the work to a tracked background task, so Slack
gets its 200 within milliseconds and shutdown can wait for answers in flight.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import actions, events, render
from adapters.slack.assistant import ASSISTANT_EVENTS, Panel, SlackAssistant
from adapters.slack.events import Payload, SlackFile
from adapters.slack.files import FileFetcher, send_privately
from adapters.slack.names import SlackNames
from adapters.slack.owners import OwnerActions
from adapters.slack.reply import NativeStream, SlackReply, StreamRefusals
from adapters.slack.verification import hide_rejected_bodies
from core.admin import AdminService
from core.answer import AnswerService
from core.conversation import DRAIN_SECONDS, ConversationPipeline, ReplyChannel
from core.types import IncomingFile, IncomingMessage, Platform

log = logging.getLogger(__name__)

COMMAND = "/lore"
EVENTS_PATH = "/slack/events"
# deploy/slack/manifest.yml subscribes these
EVENTS = ("app_mention", "message", "file_deleted", *ASSISTANT_EVENTS)


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """Plain values the app needs (the composition root reads them from settings)."""

    bot_token: str
    signing_secret: str | None = None
    api_url: str = "https://slack.com/api/"
    admin_ids: frozenset[str] = field(default_factory=frozenset)
    max_upload_bytes: int = 20 * 1024 * 1024
    edit_interval: float = 1.0
    placeholder_after: float = 0.3  # seconds before a generic placeholder, if core is slower
    # Answers and uploads running in core at once; the rest wait (their placeholder is up).
    # Bounding it keeps the event loop free to acknowledge a burst of events quickly.
    concurrency: int = 32
    rate_limit_retries: int = 3
    # Answers stream through chat.startStream/appendStream/stopStream (edits where Slack
    # refuses); appends at most once per stream_interval seconds (see adapters/slack/reply.py).
    native_streaming: bool = True
    stream_interval: float = 1.0


class SlackBot:
    """The bolt AsyncApp plus the tasks it started. ``start()`` before use, ``close()`` after."""

    def __init__(
        self,
        *,
        conversations: ConversationPipeline,
        answers: AnswerService,
        admin: AdminService,
        config: SlackConfig,
    ) -> None:
        self._conversations = conversations
        self._answers = answers
        self._uploads = conversations.uploads
        self._admin = admin
        self._config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._team_name: str | None = None
        self.client = AsyncWebClient(
            token=config.bot_token,
            base_url=config.api_url,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=config.rate_limit_retries)
            ],
        )
        self.names = SlackNames(self.client)
        self._stream_refusals = StreamRefusals()  # workspaces that cannot stream answers
        hide_rejected_bodies()
        self.app = AsyncApp(
            client=self.client,
            signing_secret=config.signing_secret or "",
            request_verification_enabled=bool(config.signing_secret),
            # Listeners only spawn tasks, so running them before the response costs nothing and
            # makes every task visible (tracked) by the time Slack has its 200.
            process_before_response=True,
        )
        self._register()

    def _register(self) -> None:
        handlers = {
            "app_mention": self._on_mention,
            "message": self._on_message,
            "file_deleted": self._on_file_deleted,
        }
        assert set(handlers) | set(ASSISTANT_EVENTS) == set(EVENTS)
        # before the listeners below: messages in assistant threads go to the panel
        panel = SlackAssistant(
            self.client, answers=self._answers, spawn=self._spawn, handle=self._handle
        )
        self.app.assistant(panel.assistant())
        for name, handler in handlers.items():
            self.app.event(name)(handler)
        self.app.command(COMMAND)(self._on_command)
        self.app.action(re.compile(r"^lore_feedback_(up|down)$"))(self._on_feedback)
        self.app.action(re.compile(rf"^{render.SHARE_ACTION}_\d+$"))(self._on_share)
        shortcuts = actions.MessageActions(self, spawn=self._spawn)
        shortcuts.register(self.app)  # the two message shortcuts and the save dialog
        self._owners = OwnerActions(self, shortcuts, spawn=self._spawn)
        self.app.action(render.ASK_OWNER_ACTION)(self._owners.on_ask)
        self.app.action(render.OWNER_SAVE_ACTION)(self._owners.on_save)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        self.client.session = self._http  # one connection pool for every Web API call
        try:  # the team's name, for `lorekeeper workspaces` and `namespaces`
            self._team_name = (await self.client.auth_test()).get("team")
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("auth.test failed at start: %s", type(exc).__name__)

    async def close(self, *, grace: float = DRAIN_SECONDS) -> None:
        """Wait up to ``grace`` seconds for work in flight, cancel the rest, release sessions."""
        pending = set(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def idle(self) -> None:
        """Return when no background work is left (tests and benchmarks wait on this)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def busy(self) -> int:
        return len(self._tasks)

    @property
    def conversations(self) -> ConversationPipeline:
        return self._conversations

    @property
    def team_name(self) -> str | None:
        return self._team_name

    def web_app(self, path: str = EVENTS_PATH) -> web.Application:
        """The aiohttp application serving the Events API, commands and interactivity."""
        return self.app.web_app(path=path)

    def _spawn(self, job: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(_logged(job, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- listeners (fast: decide, spawn, return) -----------------------------------------------

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if events.is_ignored(event, bot_user_id=context.bot_user_id, bot_id=context.bot_id):
            return
        if event.get("files"):
            return  # the message/file_share copy of this post carries the files and the text
        self._spawn(self._handle(event, body, context.bot_user_id, addressed=True), "slack-answer")

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        bot_user = context.bot_user_id
        root = actions.deleted_root(event)
        if root is not None:  # a saved thread's root went: so does the document
            job = self._forget_message(root, events.team_of(body))
            self._spawn(job, "slack-message-deleted")
            return
        if events.is_ignored(event, bot_user_id=bot_user, bot_id=context.bot_id):
            return
        mentioned = events.mentions(str(event.get("text") or ""), bot_user)
        direct = events.is_direct(event)
        if mentioned and not direct and not event.get("files"):
            return  # answered from its app_mention copy
        if mentioned or direct or events.is_thread_reply(event) or events.is_plain_post(event):
            job = self._handle(event, body, bot_user, addressed=mentioned or direct)
            self._spawn(job, "slack-message")

    async def _on_file_deleted(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        file_id = event.get("file_id") or (event.get("file") or {}).get("id")
        if file_id:
            job = self._delete_file(str(file_id), events.team_of(body))
            self._spawn(job, "slack-file-deleted")

    async def _on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        text = str(body.get("text") or "").strip().lower()
        if text.startswith("ask"):
            await ack("Working on it…")
        else:
            await ack()
        self._spawn(self._command(body, respond), "slack-command")

    async def _on_feedback(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._feedback(body), "slack-feedback")

    async def _on_share(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._share(body), "slack-share")

    # -- background work ------------------------------------------------------------------------

    async def _handle(
        self,
        event: Payload,
        body: Payload,
        bot_user: str | None,
        *,
        addressed: bool,
        panel: Panel | None = None,
    ) -> None:
        files = events.files_of(event)
        message = events.message_from_event(
            event,
            team_id=events.team_of(body),
            bot_user_id=bot_user,
            files=files,
            team_name=self._team_name,
        )
        thread: ReplyChannel = _SlackThread(self, message)
        if panel is not None:  # in the assistant panel, beside the channel being viewed
            message, thread = panel.scope(message), panel.around(thread)
        source = _SlackFiles(self, files) if files else None
        await self._conversations.handle(
            message, thread, addressed=addressed, files=source, offer_save=self._owners.offer
        )

    def file_source(self, files: tuple[SlackFile, ...]) -> _SlackFiles:
        """A message's files as core's FileSource."""
        return _SlackFiles(self, files)

    def fetcher(self) -> FileFetcher:
        assert self._http is not None, "SlackBot.start() was not called"
        return FileFetcher(
            self.client,
            self._http,
            token=self._config.bot_token,
            max_bytes=self._config.max_upload_bytes,
            api_url=self._config.api_url,
        )

    def reply(
        self,
        channel: str,
        thread_ts: str,
        *,
        filename: str = "the file",
        asker: tuple[str, str] | None = None,
    ) -> SlackReply:
        """A reply in the thread; an answer to ``asker`` (team id, user id) streams natively."""
        native = None
        if asker is not None and self._config.native_streaming:
            team_id, user_id = asker
            native = NativeStream(
                team_id, user_id, self._stream_refusals, interval=self._config.stream_interval
            )
        return SlackReply(
            self.client,
            channel=channel,
            thread_ts=thread_ts,
            interval=self._config.edit_interval,
            filename=filename,
            native=native,
        )

    async def _delete_file(self, file_id: str, team: str) -> None:
        await self._conversations.forget(
            Platform.SLACK.value, file_ids=[file_id], workspace=team or None
        )

    async def _forget_message(self, key: str, team: str) -> None:
        await self._conversations.forget(
            Platform.SLACK.value, message_ids=[key], workspace=team or None
        )

    async def named(self, message: IncomingMessage) -> IncomingMessage:
        """The message with its author's and channel's names (for usage reports)."""
        author, channel = await self.names.names(message.author_id, message.channel_id)
        return replace(
            message,
            author_name=message.author_name or author,
            channel_name=message.channel_name or channel,
        )

    async def is_admin(self, user_id: str) -> bool:
        """A workspace admin or owner (or in SLACK_ADMIN_IDS); False when Slack can't say."""
        if user_id in self._config.admin_ids:
            return True
        try:
            response = await self.client.users_info(user=user_id)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("users.info for %s failed: %s", user_id, type(exc).__name__)
            return False
        user = response.get("user") or {}
        self.names.learn_user(user_id, user)
        return events.is_slack_admin(user)

    async def _command(self, body: Payload, respond: Any) -> None:
        is_admin = await self.is_admin(str(body.get("user_id") or ""))
        cmd = events.command_from_payload(body, is_admin=is_admin)
        # the name events give (not the payload's legacy handle): one name per person
        cmd = replace(cmd, user_name=await self.names.user(cmd.user_id) or cmd.user_name)
        result = await self._admin.execute(cmd)  # every failure comes back as words
        shown = render.command_response(result)
        if result.chart_png is not None:
            shown = render.with_note(shown, await self._send_chart(body, result.chart_png))
        kind = "ephemeral" if result.ephemeral else "in_channel"
        await self._respond(body, respond, shown, kind)

    async def _send_chart(self, body: Payload, png: bytes) -> str:
        """The usage chart goes to the admin's DM (Slack has no ephemeral files); says where."""
        try:
            await send_privately(
                self.client,
                str(body.get("user_id") or ""),
                png,
                filename=render.CHART_FILENAME,
                title="Lorekeeper usage",
                comment=render.chart_comment(str(body.get("text") or "")),
            )
        except SlackApiError as exc:
            log.warning("sending the usage chart failed: %s", exc.response.get("error"))
            return render.CHART_FAILED
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sending the usage chart failed: %s", type(exc).__name__)
            return render.CHART_FAILED
        return render.CHART_SENT

    async def _respond(
        self, body: Payload, respond: Any, message: render.SlackMessage, kind: str
    ) -> None:
        """Through the response_url when Slack gave one, else as an ephemeral message."""
        if body.get("response_url"):
            await respond(text=message.text, blocks=message.blocks, response_type=kind)
            return
        await self.client.chat_postEphemeral(
            channel=str(body.get("channel_id")),
            user=str(body.get("user_id")),
            text=message.text,
            blocks=message.blocks,
        )

    async def _feedback(self, body: Payload) -> None:
        click = events.feedback_from_action(body)
        if click is None:
            return
        vote = await self._conversations.vote(
            platform=Platform.SLACK.value,
            workspace_id=click.workspace_id,
            user_id=click.user_id,
            message_id=click.message_id,
            value=click.value,
        )
        if vote.refusal is not None:
            await self._tell_clicker(click, vote.refusal)
            return
        shown = body.get("message") or {}
        if click.channel_id and click.message_ts and shown.get("blocks"):
            await self.client.chat_update(
                channel=click.channel_id,
                ts=click.message_ts,
                text=str(shown.get("text") or ""),
                blocks=render.with_feedback_counts(shown["blocks"], vote.up, vote.down),
            )
        if vote.ask_owner:
            await self._owners.offer_after_vote(body, click.message_id)

    async def _share(self, body: Payload) -> None:
        """A "Share with" click: `/lore docs promote` as the person who clicked; they alone
        see the outcome, and a shared file's buttons give way to a note."""
        click = events.share_from_action(body)
        if click is None:
            return
        admin = await self.is_admin(click.user_id)
        result = await self._admin.execute(events.share_command(click, is_admin=admin))
        shown = render.command_response(result)
        await self.client.chat_postEphemeral(
            channel=click.channel_id, user=click.user_id, text=shown.text, blocks=shown.blocks
        )
        message = body.get("message") or {}
        if result.ok and click.message_ts and message.get("blocks"):
            await self.client.chat_update(
                channel=click.channel_id,
                ts=click.message_ts,
                text=str(message.get("text") or ""),
                blocks=render.shared(message["blocks"], click.namespace),
            )

    async def _tell_clicker(
        self, click: events.FeedbackClick | events.ShareClick, text: str
    ) -> None:
        if not click.channel_id:
            return
        try:
            await self.client.chat_postEphemeral(
                channel=click.channel_id, user=click.user_id, text=render.plain(text)
            )
        except Exception:
            log.exception("could not tell %s about their vote", click.user_id)


class _SlackThread:
    """The replies to one Slack message: in its thread, with names learnt from Slack."""

    def __init__(self, bot: SlackBot, message: IncomingMessage) -> None:
        self._bot = bot
        self._message = message

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        message = await self._bot.named(message)
        if message.files:  # only its uploader or an admin replaces a file: core needs to know
            message = replace(message, author_is_admin=await self._bot.is_admin(message.author_id))
        self._message = message
        return message

    def reply(self, file: IncomingFile | None = None) -> SlackReply:
        message = self._message
        if file is not None:
            return self._bot.reply(message.channel_id, message.thread_id, filename=file.filename)
        asker = (message.workspace_id, message.author_id)
        return self._bot.reply(message.channel_id, message.thread_id, asker=asker)


class _SlackFiles:
    """A message's files: stubs resolved with files.info, downloads only from Slack's hosts."""

    def __init__(self, bot: SlackBot, files: tuple[SlackFile, ...]) -> None:
        self._fetcher = bot.fetcher()
        self._files = {f.file_id: f for f in files}

    async def resolve(self, file: IncomingFile) -> IncomingFile:
        resolved = await self._fetcher.resolve(self._files[file.file_id])
        self._files[file.file_id] = resolved
        return resolved.incoming()

    async def download(self, file: IncomingFile) -> bytes:
        return await self._fetcher.download(self._files[file.file_id])


async def _logged(job: Coroutine[Any, Any, None], name: str) -> None:
    """The outermost handler of a listener's work: what core did not turn into words for the
    user (a Slack API failure while replying) is logged with its traceback."""
    try:
        await job
    except Exception:
        log.exception("%s failed", name)
