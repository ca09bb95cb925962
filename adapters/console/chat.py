"""The terminal chat: the same core as Slack and Discord, driven from stdin."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from adapters.console.render import inert, render_answer
from core.conversation import ConversationPipeline
from core.errors import LorekeeperError
from core.types import Answer, IncomingFile, IncomingMessage, Platform, Progress, UploadOutcome

WORKSPACE = "local"
USER = "console-user"
HELP = """Type a question and press Enter. Commands:
  /upload PATH   index a file for this chat (into --namespace when there is one)
  /new           start a new thread
  /help          this text
  /quit          leave (Ctrl-D works too)
Ctrl-C stops an answer in progress; with none in progress, it leaves."""
STOPPED = "(stopped: Ctrl-C again, Ctrl-D or /quit leaves)"


def _typed_path(text: str) -> str:
    """A path as typed or dropped into a terminal: quoted ('My Notes.md') or with escaped
    spaces (My\\ Notes.md) comes out as the plain path."""
    try:
        parts = shlex.split(text)
    except ValueError:  # an unbalanced quote: take the text as it is
        return text
    return parts[0] if len(parts) == 1 else text


def channel_for(namespaces: Sequence[str] | None) -> str:
    """Each namespace selection is its own console channel, bound to those namespaces."""
    return "ns:" + ",".join(sorted(namespaces)) if namespaces else "console"


def console_message(
    text: str,
    *,
    channel: str,
    thread: str,
    files: tuple[IncomingFile, ...] = (),
    author: str = USER,
    is_direct: bool = False,
) -> IncomingMessage:
    """A line typed at the terminal (``author`` and ``is_direct``: as another person would
    send it, or in a DM, where a test plays several people)."""
    return IncomingMessage(
        platform=Platform.CONSOLE,
        workspace_id=WORKSPACE,
        channel_id=channel,
        thread_id=thread,
        author_id=author,
        text=text,
        event_id=uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        author_name="you",
        channel_name=channel,
        workspace_name="local",
        files=files,
        is_direct=is_direct,
    )


def styling(out: TextIO) -> dict[str, Any]:
    """How to render for ``out``: styled Markdown at the terminal's width (at most 100
    columns) when it is a terminal; plain text for a pipe or a file."""
    isatty = getattr(out, "isatty", None)
    if not (callable(isatty) and isatty()):
        return {"styled": False}
    return {"styled": True, "width": min(100, shutil.get_terminal_size().columns)}


class ConsoleReply:
    """Prints progress and the streamed answer as it grows, then the answer with its sources
    (``show_answer=False``: keep it in :attr:`answer` for the caller to print) or the reason it
    failed (to ``errors``, default ``out``). When the reader of ``out`` is gone (a closed pipe)
    it goes quiet and says so in :attr:`gone`: the caller decides how to end."""

    def __init__(
        self,
        out: TextIO,
        *,
        stream: bool = True,
        show_answer: bool = True,
        errors: TextIO | None = None,
    ) -> None:
        self._out = out
        self._errors = errors or out
        self._shown = 0
        self._stream = stream
        self._show_answer = show_answer
        self.answer: Answer | None = None
        self.gone = False

    def _write(self, text: str, *, to: TextIO | None = None) -> None:
        if self.gone:
            return
        where = to or self._out
        try:
            where.write(text)
            where.flush()
        except BrokenPipeError:
            self.gone = True

    async def thinking(self, namespaces: Sequence[str]) -> None:
        self._write(f"(searching {', '.join(namespaces) or 'the knowledge base'}…)\n")

    async def stream(self, text_so_far: str) -> None:
        if self._stream:
            self._write(inert(text_so_far[self._shown :]))
        self._shown = len(text_so_far)

    async def progress(self, progress: Progress) -> None:
        self._write(f"  {progress.stage:<10} {progress.fraction:>4.0%} {inert(progress.detail)}\n")

    async def finish(self, answer: Answer) -> None:
        self.answer = answer
        if not self._show_answer:
            return
        if self.streamed:
            self._write("\n\n")
        self._write(render_answer(answer, **styling(self._out)) + "\n\n")

    async def done(self, outcome: UploadOutcome) -> None:
        self._write(inert(outcome.message) + "\n")

    async def fail(self, text: str) -> None:
        self._write(inert(text) + "\n", to=self._errors)

    async def discard(self) -> None:
        return None

    @property
    def streamed(self) -> bool:
        return self._shown > 0


class ConsoleThread:
    """The replies to one line of the chat: printed where the chat prints."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        return message

    def reply(self, file: IncomingFile | None = None) -> ConsoleReply:
        return ConsoleReply(self._out)


class LocalFiles:
    """Files named by path on this machine (``file_id`` is the resolved path)."""

    async def resolve(self, file: IncomingFile) -> IncomingFile:
        return file

    async def download(self, file: IncomingFile) -> bytes:
        path = Path(file.file_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise LorekeeperError(
                f"Can't read {path.name}: {exc.strerror}", reason=f"read failed: {exc.strerror}"
            ) from exc


class ConsoleChat:
    def __init__(
        self,
        conversations: ConversationPipeline,
        *,
        channel: str,
        out: TextIO | None = None,
    ) -> None:
        self._conversations = conversations
        self._channel = channel
        # sys.stdout as it is now, not as it was at import (a default argument would be)
        self._out = out or sys.stdout
        self._thread = uuid.uuid4().hex[:12]
        self._answering: asyncio.Task[bool] | None = None
        self._reading: asyncio.Future[str] | None = None
        self._leaving = False

    def interrupt(self) -> None:
        """Ctrl-C: stop the answer in progress; with none in progress, leave."""
        if self._answering is not None and not self._answering.done():
            self._answering.cancel()
            return
        self._leaving = True
        if self._reading is not None:
            self._reading.cancel()

    async def handle(self, line: str) -> bool:
        """Handle one input line; False means quit."""
        line = line.strip()
        if not line:
            return True
        command, _, rest = line.partition(" ") if line.startswith("/") else ("", "", line)
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self._out.write(HELP + "\n")
        elif command == "/new":
            self._thread = uuid.uuid4().hex[:12]
            self._out.write("(new thread)\n")
        elif command == "/upload":
            await self._upload(_typed_path(rest.strip()))
        elif command:
            self._out.write(f"Unknown command {command}.\n{HELP}\n")
        else:
            await self._ask(line)
        self._out.flush()
        return True

    async def _ask(self, text: str) -> None:
        message = console_message(text, channel=self._channel, thread=self._thread)
        await self._conversations.handle(message, ConsoleThread(self._out), addressed=True)

    async def _upload(self, raw: str) -> None:
        path = Path(raw).expanduser()
        if not raw:
            self._out.write("Give a file: /upload PATH\n")
            return
        if path.is_dir():
            self._out.write(f"{raw} is a folder; /upload takes one file (or: lorekeeper ingest)\n")
            return
        if not path.is_file():
            self._out.write(f"No such file: {raw}\n")
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            self._out.write(f"Can't read {path.name}: {exc.strerror}\n")
            return
        file = IncomingFile(
            file_id=str(path.resolve()),
            filename=path.name,
            size=size,
            url=path.resolve().as_uri(),
        )
        message = console_message("", channel=self._channel, thread=self._thread, files=(file,))
        await self._conversations.handle(
            message, ConsoleThread(self._out), addressed=True, files=LocalFiles()
        )

    async def run(self, stdin: TextIO | None = None) -> None:
        """Read lines until end of input, /quit or ``interrupt()`` with no answer in progress
        (``sys.stdin`` as it is when called, by default: a default argument would keep the one
        of import time)."""
        stdin = stdin or sys.stdin
        self._out.write("Lorekeeper terminal chat. /help for commands.\n")
        while not self._leaving:
            self._out.write("> ")
            self._out.flush()
            self._reading = read_line(stdin)
            try:
                await asyncio.wait({self._reading})
            finally:
                self._reading.cancel()  # a no-op once read; else the line is dropped
            if self._reading.cancelled() or not self._reading.result():
                self._out.write("\n")
                return
            if not await self._answer(self._reading.result()):
                return

    async def _answer(self, line: str) -> bool:
        """Handle one line as a task of its own, which ``interrupt()`` may cancel."""
        task = asyncio.ensure_future(self.handle(line))
        self._answering = task
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()  # a no-op once done; else the chat itself is being stopped
            self._answering = None
        if task.cancelled():
            self._out.write(f"\n{STOPPED}\n")
            return True
        return task.result()


def read_line(stdin: TextIO) -> asyncio.Future[str]:
    """``stdin.readline()`` on a daemon thread. A thread blocked reading a terminal can't be
    stopped, and leaving must not wait for it: asyncio's own worker threads are waited for when
    the loop closes, a daemon thread is not."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def read() -> None:
        line, error = None, None
        try:
            line = stdin.readline()
        except Exception as exc:  # handed to the reader, as asyncio.to_thread would
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it
            loop.call_soon_threadsafe(deliver, line, error)

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    return future
