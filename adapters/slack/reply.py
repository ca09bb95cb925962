"""SlackReply: core's Reply port on Slack, one message edited in place.

The first call posts the message in the thread; ``stream`` and ``progress`` edit it at most
once per ``interval`` seconds (chat.update is rate limited); the ending (``finish``, ``done``,
``fail``) puts the final version in place. The conversation pipeline calls it one call at a
time. A 429 on any call waits its Retry-After (the client's retry handler does that).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from core.types import Answer, Progress, UploadOutcome


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

    @property
    def message_ts(self) -> str | None:
        """The ts of the message this reply edits (None before anything was posted)."""
        return self._ts

    async def thinking(self, namespaces: Sequence[str]) -> None:
        await self._show(render.placeholder(namespaces), force=True)

    async def stream(self, text_so_far: str) -> None:
        if text_so_far.strip():
            await self._show(render.streaming(text_so_far))

    async def progress(self, progress: Progress) -> None:
        await self._show(render.progress_text(self._filename, progress))

    async def finish(self, answer: Answer) -> None:
        """Replace the placeholder with the rendered answer (extra messages if it is long)."""
        messages = render.answer_messages(answer)
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
        shown = render.notice(text)
        await self._put(shown.text, shown.blocks)

    async def discard(self) -> None:
        if self._ts is not None:
            await self._client.chat_delete(channel=self._channel, ts=self._ts)
            self._ts = None

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
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=text, **kwargs
        )
        return str(response["ts"])

    async def _update(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        assert self._ts is not None
        await self._client.chat_update(
            channel=self._channel, ts=self._ts, text=text, blocks=blocks or []
        )
        self.edits += 1
