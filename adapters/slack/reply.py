"""SlackReply: core's Reply port on Slack.

The first call posts a message in the thread; ``stream`` and ``progress`` edit it at most once
per ``interval`` seconds (chat.update is rate limited); the ending (``finish``, ``done``,
``fail``) puts the final version in place. The conversation pipeline calls it one call at a
time. A 429 on any call waits its Retry-After (the client's retry handler does that).

With a :class:`NativeStream`, the answer's text streams instead through Slack's
chat.startStream / appendStream / stopStream (slack_sdk's ``AsyncChatStream``):

- The first words start the stream (a reply in the thread, to the asker); the "Searching…"
  placeholder is then deleted. Later text is appended as deltas, at most once per
  ``NativeStream.interval`` seconds, and only while the answer has made no more Slack calls
  than the edit path would have made by then (one edit per ``interval`` from when it would
  first have shown words), counting one call in hand for a final replacement: starting the
  stream and deleting the placeholder cost a call more than the first edit, so the first
  append waits a few seconds, and a long answer never costs more calls than edits would.
  Only text that can no longer change is sent (up to the last blank, outside an unfinished
  Markdown link), since appended text cannot be taken back.
- ``finish`` stops the stream with the Sources and the buttons as its blocks when the answer's
  text is what was streamed plus more. Otherwise (citation markers, which the stream never
  shows, a notice, a long answer) it stops the stream and replaces the message with the same
  blocks the edit path shows, so the final message is always the rendered answer.
- A refusal of chat.startStream keeps the placeholder and carries on with edits; a refusal
  that says the workspace (or channel) cannot stream is remembered in :class:`StreamRefusals`
  so later answers there go straight to edits. A failure after the stream started turns the
  streamed message into the edited one: no text is lost either way.
"""

from __future__ import annotations

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
from core.types import Answer, Progress, UploadOutcome

log = logging.getLogger(__name__)

# Slack's limit for one markdown_text; past it the answer waits for its final message.
STREAM_LIMIT = 12_000
# Errors that say nothing about whether this workspace can stream: this answer falls back to
# edits, the next one tries again.
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
    """Where Slack refused to start a stream: workspaces, and channels within them."""

    def __init__(self) -> None:
        self._teams: set[str] = set()
        self._channels: set[tuple[str, str]] = set()

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


@dataclass(frozen=True, slots=True)
class NativeStream:
    """Who a streamed answer is for (Slack requires both outside DMs) and how to pace it."""

    team_id: str
    user_id: str
    refusals: StreamRefusals = field(default_factory=StreamRefusals)
    interval: float = 1.0  # seconds between chat.appendStream calls


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
        self._ts: str | None = None
        self._last_edit = float("-inf")
        self.edits = 0
        self._native = native
        self._stream: AsyncChatStream | None = None
        self._streamed = ""  # the markdown Slack has been sent so far
        self._last_append = float("-inf")
        self.appends = 0
        self.calls = 0  # Slack API calls this reply made
        # what the edit path would have spent when the stream started, and from when it would
        # have shown words (an edit per interval after that)
        self._edit_calls = 0
        self._edits_from = 0.0

    @property
    def message_ts(self) -> str | None:
        """The ts of the message this reply shows (None before anything was posted)."""
        return self._stream.ts if self._stream is not None else self._ts

    async def thinking(self, namespaces: Sequence[str]) -> None:
        await self._show(render.placeholder(namespaces), force=True)

    async def stream(self, text_so_far: str) -> None:
        if not text_so_far.strip():
            return
        if self._streams() and await self._stream_natively(text_so_far):
            return
        await self._show(render.streaming(text_so_far))

    async def progress(self, progress: Progress) -> None:
        await self._show(render.progress_text(self._filename, progress))

    async def finish(self, answer: Answer) -> None:
        """Replace the placeholder with the rendered answer (extra messages if it is long)."""
        messages = render.answer_messages(answer)
        if self._stream is not None and await self._stop_with(answer, len(messages)):
            return
        first, rest = messages[0], messages[1:]
        await self._put(first.text, first.blocks)
        for message in rest:
            await self._post(message.text, message.blocks)

    async def done(self, outcome: UploadOutcome) -> None:
        """An upload's outcome, with its share buttons when the file stayed here."""
        shown = render.upload_outcome(outcome)
        await self._put(shown.text, shown.blocks)

    async def fail(self, text: str) -> None:
        """The final line, replacing whatever was shown. ``text`` is plain words from core
        that may name files: it is shown escaped."""
        await self._end_stream()
        shown = render.notice(text)
        await self._put(shown.text, shown.blocks)

    async def discard(self) -> None:
        await self._end_stream()
        if self._ts is not None:
            self.calls += 1
            await self._client.chat_delete(channel=self._channel, ts=self._ts)
            self._ts = None

    # -- native streaming ----------------------------------------------------------------------

    def _streams(self) -> bool:
        native = self._native
        return native is not None and not native.refusals.refused(native.team_id, self._channel)

    async def _stream_natively(self, text_so_far: str) -> bool:
        """Send what is new (paced); False when this answer goes on with edits instead."""
        assert self._native is not None
        ready = settled(render.stream_markdown(text_so_far))
        if len(ready) > STREAM_LIMIT or not ready.startswith(self._streamed):
            return True  # the final message will show it
        if self._stream is None:
            return await self._start(ready)
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

    async def _start(self, ready: str) -> bool:
        assert self._native is not None
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
        self._edits_from = max(now, self._last_edit + self._interval)
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
        if self._ts is not None:  # the placeholder gives way to the streamed answer
            placeholder, self._ts = self._ts, None
            try:
                self.calls += 1
                await self._client.chat_delete(channel=self._channel, ts=placeholder)
            except _FAILURES as exc:
                log.warning("deleting the placeholder failed: %s", _error(exc))
        return True

    async def _stop_with(self, answer: Answer, messages: int) -> bool:
        """Stop the stream with the answer's footer when the streamed text leads to the
        answer's text; False (stream stopped, message handed to the edit path) otherwise."""
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
        """Paced by time, and within the calls the edit path would have made by ``now``
        (keeping one for a final chat.update; both paths end with one call)."""
        assert self._native is not None
        if now - self._last_append < self._native.interval:
            return False
        edits = (
            int((now - self._edits_from) // self._interval) + 1 if now >= self._edits_from else 0
        )
        return self.calls + 1 + 1 <= self._edit_calls + edits

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
