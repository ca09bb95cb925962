"""DiscordReply: core's Reply port on a Discord channel or thread.

One message per reply: posted at the first call, edited with the streamed text or the upload's
stages at most once per ``interval`` (edits never block the model's stream), and finally
replaced by the rendered answer, the upload's outcome or a failure notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import discord

from adapters.discord.render import (
    Outgoing,
    placeholder,
    plain,
    preview,
    progress_line,
    render_answer,
    share_view,
)
from core.types import Answer, Progress, UploadOutcome

log = logging.getLogger(__name__)


class LiveMessage:
    """One bot message: posted once, then edited at most once per interval, latest text wins."""

    def __init__(
        self, channel: Any, *, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._channel = channel
        self._interval = interval
        self._clock = clock
        self.message: discord.Message | None = None
        self._pending: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._editing = False
        self._last = 0.0

    async def post(self, content: str) -> None:
        self.message = await self._channel.send(content)
        self._last = self._clock()

    def update(self, content: str) -> None:
        """Show ``content`` soon (throttled, in the background)."""
        self._pending = content
        if self.message is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        delay = self._interval - (self._clock() - self._last)
        if delay > 0:
            await asyncio.sleep(delay)
        content, self._pending = self._pending, None
        if content is None or self.message is None:
            return
        self._editing = True
        try:
            await self.message.edit(content=content)
        except discord.HTTPException as exc:
            log.warning("streaming edit failed (%s); the final edit will follow", exc.status)
        finally:
            self._editing = False
            self._last = self._clock()

    async def settle(self) -> None:
        """Stop pending updates: a sleeping one is dropped, one in flight is awaited."""
        task, self._task = self._task, None
        self._pending = None
        if task is None or task.done():
            return
        if not self._editing:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def replace(self, out: Outgoing) -> discord.Message:
        """Make this message show ``out`` (edit it, or send it when none was posted)."""
        await self.settle()
        view = out.buttons()
        if self.message is None:
            kwargs: dict[str, Any] = {"embeds": out.embeds}
            if view is not None:
                kwargs["view"] = view
            self.message = await self._channel.send(out.content, **kwargs)
        else:
            self.message = await self.message.edit(
                content=out.content, embeds=out.embeds, view=view
            )
        return self.message


class DiscordReply:
    """Implements core's Reply for one question or one uploaded file in a channel/thread."""

    def __init__(self, channel: Any, *, label: str = "", interval: float = 1.0) -> None:
        self._channel = channel
        self._label = label
        self._live = LiveMessage(channel, interval=interval)

    async def thinking(self, namespaces: Sequence[str]) -> None:
        await self._show(placeholder(namespaces))

    async def stream(self, text_so_far: str) -> None:
        await self._show(preview(text_so_far))

    async def progress(self, progress: Progress) -> None:
        await self._show(progress_line(self._label, progress))

    async def finish(self, answer: Answer) -> None:
        """Replace the placeholder with the answer; extra pieces follow as new messages."""
        pieces = render_answer(answer)
        await self._live.replace(pieces[0])
        for piece in pieces[1:]:
            await LiveMessage(self._channel, interval=0).replace(piece)

    async def done(self, outcome: UploadOutcome) -> None:
        """The outcome in words (it names the file, so it is shown with its Markdown escaped
        and its links unmasked), with share buttons when the file stayed here."""
        buttons = share_view(outcome.document_id, outcome.share_with) if outcome.ok else None
        await self._live.replace(Outgoing(plain(outcome.message), view=buttons))

    async def fail(self, text: str) -> None:
        """End with a plain message: edit whatever was showing, or post a new one."""
        await self._live.replace(Outgoing(plain(text)))

    async def discard(self) -> None:
        await self._live.settle()
        if self._live.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self._live.message.delete()
            self._live.message = None

    async def _show(self, text: str) -> None:
        if self._live.message is None:
            await self._live.post(text)
        else:
            self._live.update(text)

    @property
    def started(self) -> bool:
        return self._live.message is not None
