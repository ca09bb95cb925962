"""SlackReply: core's Reply protocol on Slack, one message edited in place.

``thinking`` posts the placeholder in the thread; ``stream`` and ``progress`` edit it at most once
per ``interval`` seconds (chat.update is rate limited); ``finish``/``done`` put the final version
in place. A 429 on any call waits its Retry-After (the client's retry handler does that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from core.types import Answer, Progress
from core.uploads import UploadOutcome

log = logging.getLogger(__name__)


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
        self._first = asyncio.Lock()  # exactly one message is posted, whoever comes first
        self._closed = False
        self._settled = asyncio.Event()  # something was posted, or nothing should be
        self.edits = 0

    @property
    def message_ts(self) -> str | None:
        """The ts of the message this reply edits (None before anything was posted)."""
        return self._ts

    async def thinking(self, namespaces: Sequence[str]) -> None:
        await self._show(render.placeholder(namespaces), force=True)

    async def placeholder_after(self, delay: float) -> None:
        """Post a generic placeholder unless core's ``thinking`` came first within ``delay``.

        Core calls ``thinking`` once the session is resolved; under load that can take longer
        than the second Slack users expect, so this guarantees something visible early.
        """
        try:
            await asyncio.wait_for(self._settled.wait(), delay)
            return
        except TimeoutError:
            pass
        async with self._first:
            if self._ts is None and not self._closed:
                self._ts = await self._post(render.placeholder(()), None)
                self._last_edit = self._clock()

    def settle(self) -> None:
        """No early placeholder any more (call when the work is over)."""
        self._settled.set()

    async def discard(self) -> None:
        """Nothing to show after all (a duplicate delivery): remove an early placeholder."""
        async with self._first:
            self._closed = True
            self._settled.set()
            if self._ts is not None:
                await self._client.chat_delete(channel=self._channel, ts=self._ts)
                self._ts = None

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

    async def done(self, text: str) -> None:
        """The final line (an upload's outcome or an error), replacing whatever was shown.

        ``text`` is plain words from core that may name files: it is shown escaped."""
        shown = render.notice(text)
        await self._put(shown.text, shown.blocks)

    async def finish_upload(self, outcome: UploadOutcome) -> None:
        """An upload's outcome, with its share buttons when the file stayed here."""
        shown = render.upload_outcome(outcome)
        await self._put(shown.text, shown.blocks)

    async def fail(self, text: str = render.ERROR_ANSWER) -> None:
        """Say something went wrong; never raises (it runs in the last-resort handler)."""
        try:
            await self.done(text)
        except Exception:
            log.exception("could not post the error message to %s", self._channel)

    async def _show(self, text: str, *, force: bool = False) -> None:
        async with self._first:
            if self._ts is None:
                self._settled.set()
                self._ts = await self._post(text, None)
                self._last_edit = self._clock()
                return
        now = self._clock()
        if not force and now - self._last_edit < self._interval:
            return  # throttled: the next edit (or the final one) shows newer text
        self._last_edit = now
        await self._update(text, None)

    async def _put(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        async with self._first:
            self._closed = True
            self._settled.set()
            if self._ts is None:
                self._ts = await self._post(text, blocks)
                return
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
