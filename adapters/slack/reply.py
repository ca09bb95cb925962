"""SlackReply: core's Reply port on Slack.

The first call posts a message in the thread; ``stream`` and ``progress`` edit it at most once
per ``interval`` seconds (chat.update is rate limited); the ending (``finish``, ``done``,
``fail``) puts the final version in place. A 429 on any call waits its Retry-After (the
client's retry handler does that).

With a :class:`NativeStream`, an answer goes the way Slack documents for AI apps: a loading
status under the thread (assistant.threads.setStatus, which Slack clears when the app replies)
while core searches, then the text through chat.startStream / appendStream / stopStream
(slack_sdk's ``AsyncChatStream``), spending no more Slack calls than the edit path would
(but for a refused call, and the case under *The ending*):

- *Held first words.* The first words wait up to ``NativeStream.hold`` seconds (under one) for
  the rest of the answer: an answer that ends by then is posted whole, one call as the edit
  path's last edit. Otherwise the stream starts with what has arrived (a timer sees to it
  when the model pauses).
- *Paced appends.* Later text is appended as deltas at most once per
  ``NativeStream.interval`` seconds, and only while the answer has made fewer calls than the
  edit path would have by then (one edit per ``interval`` from its first edit), keeping two in
  hand for the ending. Only text that can no longer change is sent (up to the last blank,
  outside an unfinished Markdown link), since appended text cannot be taken back.
- *The ending.* ``finish`` stops the stream with the rest of the text, the Sources and the
  buttons (one call) when the answer's text is what streamed plus more, as it normally is:
  core streams each finished sentence's citation markers as the answer will show them
  (``core.generation.citations.StreamPreview``). Otherwise (a marker core could not settle
  while streaming, a notice, a long answer) it stops the stream and replaces the message with
  the blocks the edit path shows, so the final message is always the rendered answer. That
  replacement is held in hand by the pacing, except when the answer ends before the edit
  path's second edit: then it is one call more than editing.
- *Refusals.* A refused status is replaced by the usual placeholder message (which then gives
  way to the stream); a refused chat.startStream carries on with edits. A refusal that says the
  workspace (or channel) cannot do it is remembered in :class:`StreamRefusals`, so later
  answers there skip the attempt. A failure after the stream started turns the streamed
  message into the edited one: no text is lost either way.

The conversation pipeline calls a reply one call at a time; the hold's timer takes the same
lock.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.assistant import searching
from core.types import Answer, Progress, UploadOutcome

log = logging.getLogger(__name__)

# Slack's limit for one markdown_text; past it the answer waits for its final message.
STREAM_LIMIT = 12_000
# Errors that say nothing about whether this workspace can stream: this answer falls back,
# the next one tries again.
TRANSIENT = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "fatal_error",
        "internal_error",
        "service_unavailable",
        "request_timeout",
        "messaging_processing_failed",
        "message_limit_exceeded",
    }
)
# Refusals about the kind of conversation, not the workspace: remembered per channel.
CHANNEL_REFUSALS = frozenset(
    {"channel_type_not_supported", "method_not_supported_for_channel_type"}
)
_FAILURES = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)
# An unfinished Markdown link at the end ("[label", "[label]", "[label](http"): held back
# until it is complete, because a complete one is shown differently (label (url)).
_OPEN_LINK = re.compile(r"\[[^\]\n]*(?:\]\(?[^)\s]*)?$")


class StreamRefusals:
    """Where Slack refused to start a stream (workspaces, and channels within them) and where
    it refused a loading status (workspaces)."""

    def __init__(self) -> None:
        self._teams: set[str] = set()
        self._channels: set[tuple[str, str]] = set()
        self._statusless: set[str] = set()

    def refused(self, team_id: str, channel: str) -> bool:
        return team_id in self._teams or (team_id, channel) in self._channels

    def remember(self, team_id: str, channel: str, error: str) -> None:
        if error in TRANSIENT:
            return
        if error in CHANNEL_REFUSALS:
            self._channels.add((team_id, channel))
        else:
            self._teams.add(team_id)
        log.info("Slack refused streaming in %s (%s): answers there are edited", team_id, error)

    def status_refused(self, team_id: str) -> bool:
        return team_id in self._statusless

    def remember_status(self, team_id: str, error: str) -> None:
        if error not in TRANSIENT:
            self._statusless.add(team_id)
            log.info("Slack refused a status in %s (%s): answers there post one", team_id, error)


@dataclass(frozen=True, slots=True)
class NativeStream:
    """Who a streamed answer is for (Slack requires both outside DMs) and how to pace it."""

    team_id: str
    user_id: str
    refusals: StreamRefusals = field(default_factory=StreamRefusals)
    interval: float = 1.0  # seconds between chat.appendStream calls
    hold: float = 0.8  # seconds the first words wait for the whole answer (keep it under 1)


def settled(markdown: str) -> str:
    """The part of streamed text that later tokens cannot change: up to the last blank (a word
    may still grow, ``@her`` into ``@here``), before an unfinished link, without trailing
    blanks."""
    cut = max(markdown.rfind(" "), markdown.rfind("\n"), markdown.rfind("\t"))
    text = markdown[: cut + 1] if cut >= 0 else ""
    link = _OPEN_LINK.search(text)
    if link is not None:
        text = text[: link.start()]
    return text.rstrip()


class SlackReply:
    """One answer (or one file's progress) in one thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        interval: float = 1.0,
        filename: str = "the file",
        clock: Callable[[], float] = time.monotonic,
        native: NativeStream | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._interval = interval
        self._filename = filename
        self._clock = clock
        self._lock = asyncio.Lock()
        self._ts: str | None = None
        self._last_edit = float("-inf")
        self.edits = 0
        self.calls = 0  # Slack API calls this reply made
        self._native = native  # None once this answer has gone over to edits
        self._asker = native  # for the loading status, whichever way the answer goes
        self._status_shown = False
        self._stream: AsyncChatStream | None = None
        self._streamed = ""  # the markdown Slack has been sent so far
        self._last_append = float("-inf")
        self.appends = 0
        self._first_text: float | None = None  # when the first words arrived
        self._held = ""  # the latest text while the first words are held
        self._timer: asyncio.Task[None] | None = None
        # what the edit path would have spent when the stream started, and from when it would
        # have shown words (an edit per interval after that)
        self._edit_calls = 0
        self._edits_from = 0.0

    @property
    def message_ts(self) -> str | None:
        """The ts of the message this reply shows (None before anything was posted)."""
        return self._stream.ts if self._stream is not None else self._ts

    async def thinking(self, namespaces: Sequence[str]) -> None:
        async with self._lock:
            if self._ts is None and self._streams() and await self._status(searching(namespaces)):
                return
            await self._show(render.placeholder(namespaces), force=True)

    async def stream(self, text_so_far: str) -> None:
        if not text_so_far.strip():
            return
        async with self._lock:
            await self._stream_text(text_so_far)

    async def progress(self, progress: Progress) -> None:
        async with self._lock:
            await self._show(render.progress_text(self._filename, progress))

    async def finish(self, answer: Answer) -> None:
        """Replace the placeholder with the rendered answer (extra messages if it is long)."""
        async with self._lock:
            self._cancel_timer()
            messages = render.answer_messages(answer)
            if self._stream is not None and await self._stop_with(answer, len(messages)):
                return
            first, rest = messages[0], messages[1:]
            await self._put(first.text, first.blocks)
            for message in rest:
                await self._post(message.text, message.blocks)

    async def done(self, outcome: UploadOutcome) -> None:
        """An upload's outcome, with its share buttons when the file stayed here."""
        async with self._lock:
            shown = render.upload_outcome(outcome)
            await self._put(shown.text, shown.blocks)

    async def fail(self, text: str) -> None:
        """The final line, replacing whatever was shown. ``text`` is plain words from core
        that may name files: it is shown escaped."""
        async with self._lock:
            self._cancel_timer()
            await self._end_stream()
            shown = render.notice(text)
            await self._put(shown.text, shown.blocks)

    async def discard(self) -> None:
        async with self._lock:
            self._cancel_timer()
            await self._end_stream()
            if self._ts is not None:
                self.calls += 1
                await self._client.chat_delete(channel=self._channel, ts=self._ts)
                self._ts = None
            elif self._status_shown:
                await self._status("")  # an empty status clears it

    # -- native streaming ----------------------------------------------------------------------

    def _streams(self) -> bool:
        native = self._native
        return native is not None and not native.refusals.refused(native.team_id, self._channel)

    async def _status(self, text: str) -> bool:
        """Show (or with "" clear) the loading status under the thread; False when refused."""
        assert self._asker is not None
        team, refusals = self._asker.team_id, self._asker.refusals
        if refusals.status_refused(team):
            return False
        try:
            self.calls += 1
            await self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=text
            )
        except _FAILURES as exc:
            if isinstance(exc, SlackApiError):
                refusals.remember_status(team, _error(exc))
            log.info("assistant.threads.setStatus failed (%s): a placeholder instead", _error(exc))
            return False
        self._status_shown = bool(text)
        self._last_edit = self._clock()  # when the edit path would have posted its placeholder
        return True

    async def _stream_text(self, text_so_far: str) -> None:
        if self._streams() and await self._stream_natively(text_so_far):
            return
        await self._show(render.streaming(text_so_far))

    async def _stream_natively(self, text_so_far: str) -> bool:
        """Hold, start or append (paced); False when this answer goes on with edits instead."""
        assert self._native is not None
        ready = settled(render.stream_markdown(text_so_far))
        if len(ready) > STREAM_LIMIT or not ready.startswith(self._streamed):
            return True  # the final message will show it
        if self._stream is None:
            return await self._hold_or_start(text_so_far, ready)
        now = self._clock()
        if ready == self._streamed or not self._may_append(now):
            return True
        try:
            self.calls += 1
            await self._stream.append(markdown_text=ready[len(self._streamed) :])
        except _FAILURES as exc:
            await self._abandon_stream(exc)
            return False
        self._streamed, self._last_append = ready, now
        self.appends += 1
        return True

    async def _hold_or_start(self, text_so_far: str, ready: str) -> bool:
        """Keep the first words back until ``hold`` seconds after they came; then start."""
        assert self._native is not None
        now = self._clock()
        if self._first_text is None:
            self._first_text = now
        self._held = text_so_far
        due = self._first_text + self._native.hold
        if now < due:
            if self._timer is None:
                self._timer = asyncio.create_task(self._start_when_due(due - now), name="hold")
            return True
        return await self._start(ready)

    async def _start_when_due(self, delay: float) -> None:
        """The hold's timer: the first words show even when the model pauses after them."""
        await asyncio.sleep(delay)
        async with self._lock:
            self._timer = None
            try:
                await self._stream_text(self._held)
            except _FAILURES as exc:  # the ending shows the answer; nothing waits on this task
                log.warning("showing the first words failed: %s", _error(exc))

    def _cancel_timer(self) -> None:
        """Called under the lock, so the timer is asleep or waiting for the lock."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    async def _start(self, ready: str) -> bool:
        assert self._native is not None and self._first_text is not None
        if not ready:
            return True
        # buffer_size=1: every append is sent (the pacing is ours, by time)
        stream = await self._client.chat_stream(
            channel=self._channel,
            thread_ts=self._thread_ts,
            recipient_team_id=self._native.team_id,
            recipient_user_id=self._native.user_id,
            buffer_size=1,
        )
        now = self._clock()
        self._edit_calls = self.calls
        self._edits_from = max(self._first_text, self._last_edit + self._interval)
        try:
            self.calls += 1
            await stream.append(markdown_text=ready)  # chat.startStream
        except _FAILURES as exc:
            error = _error(exc)
            if isinstance(exc, SlackApiError):
                self._native.refusals.remember(self._native.team_id, self._channel, error)
            log.info("chat.startStream failed (%s): this answer is edited instead", error)
            self._native = None
            return False
        self._stream, self._streamed, self._last_append = stream, ready, now
        self._status_shown = False  # the streamed reply cleared it
        if self._ts is not None:  # a placeholder (where the status was refused) gives way
            placeholder, self._ts = self._ts, None
            try:
                self.calls += 1
                await self._client.chat_delete(channel=self._channel, ts=placeholder)
            except _FAILURES as exc:
                log.warning("deleting the placeholder failed: %s", _error(exc))
        return True

    async def _stop_with(self, answer: Answer, messages: int) -> bool:
        """Stop the stream with the rest of the text and the answer's footer when the streamed
        text leads to the answer's text; False (stream stopped, message handed to the edit
        path) otherwise."""
        assert self._stream is not None
        final = render.stream_markdown(answer.text).strip()
        fits = (
            messages == 1
            and not answer.notice
            and len(final) <= STREAM_LIMIT
            and final.startswith(self._streamed)
        )
        if not fits:
            await self._end_stream()
            return False
        rest = final[len(self._streamed) :]
        footer = render.answer_footer(answer)
        try:
            self.calls += 1
            await self._stream.stop(markdown_text=rest or None, blocks=footer or None)
        except _FAILURES as exc:
            await self._abandon_stream(exc, stop=False)
            return False
        self._stream = None
        return True

    def _may_append(self, now: float) -> bool:
        """Paced by time, and within the calls the edit path would have made by ``now``,
        keeping two in hand for the ending (chat.stopStream, and a chat.update when the
        answer's text changed) where the edit path's is one chat.update."""
        assert self._native is not None
        if now - self._last_append < self._native.interval:
            return False
        edits = (
            int((now - self._edits_from) // self._interval) + 1 if now >= self._edits_from else 0
        )
        return self.calls + 1 + 2 <= self._edit_calls + edits + 1

    async def _end_stream(self, *, stop: bool = True) -> None:
        """Stop the stream (if one runs) and make its message the one later calls edit."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._ts = stream.ts
        self._last_edit = float("-inf")
        if not stop:
            return
        try:
            self.calls += 1
            await stream.stop()
        except _FAILURES as exc:
            log.warning("chat.stopStream failed: %s", _error(exc))

    async def _abandon_stream(self, exc: BaseException, *, stop: bool = True) -> None:
        log.info("streaming failed (%s): this answer is edited instead", _error(exc))
        self._native = None
        await self._end_stream(stop=stop)

    # -- edits ---------------------------------------------------------------------------------

    async def _show(self, text: str, *, force: bool = False) -> None:
        if self._ts is None:
            self._ts = await self._post(text, None)
            self._last_edit = self._clock()
            return
        now = self._clock()
        if not force and now - self._last_edit < self._interval:
            return  # throttled: the next edit (or the final one) shows newer text
        self._last_edit = now
        await self._update(text, None)

    async def _put(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        if self._ts is None:
            self._ts = await self._post(text, blocks)
        else:
            await self._update(text, blocks)

    async def _post(self, text: str, blocks: list[dict[str, Any]] | None) -> str:
        kwargs: dict[str, Any] = {"blocks": blocks} if blocks else {}
        self.calls += 1
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=text, **kwargs
        )
        self._status_shown = False  # Slack clears the status when the app replies
        return str(response["ts"])

    async def _update(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        assert self._ts is not None
        self.calls += 1
        await self._client.chat_update(
            channel=self._channel, ts=self._ts, text=text, blocks=blocks or []
        )
        self.edits += 1


def _error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "error")
    return type(exc).__name__
