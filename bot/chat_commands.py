"""`lorekeeper ask`, `chat` and `demo`: the terminal face of the same core."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.console.chat import (
    ConsoleChat,
    ConsoleReply,
    channel_for,
    console_message,
    styling,
)
from adapters.console.render import answer_json, render_answer
from bot.knowledge_commands import ingest_into
from bot.runtime import (
    bind_console_channel,
    bind_console_to_all,
    console_workspace,
    container,
    knowledge_owner,
    read_lines,
    warm_up_model,
)
from bot.stores import data_location
from core.conversation import ConversationPipeline
from core.types import Answer

if TYPE_CHECKING:
    from bot.container import Container


def conversations(c: Container) -> ConversationPipeline:
    """The terminal's conversation pipeline over the container's services."""
    return ConversationPipeline(answers=c.answers, uploads=c.uploads)


async def bind_chat(c: Container, channel: str, namespaces: list[str] | None) -> None:
    """The named namespaces; without any, every namespace of the console workspace. With
    exactly one, `/upload` indexes into it; otherwise into the chat's own files."""
    if not namespaces:
        await bind_console_to_all(c, channel)
        return
    bound = await bind_console_channel(c, channel, namespaces)
    if len(bound) == 1:
        ws = await console_workspace(c)
        ch = await c.identity.channel(ws.id, channel, name=channel)
        await c.knowledge.set_upload_namespace(ch.id, bound[0].id)


async def ask_command(args: argparse.Namespace) -> int:
    if not (args.question or "").strip() and not args.questions:  # blank is no question
        print("lorekeeper ask: give a question or --questions FILE", file=sys.stderr)
        return 2
    channel = channel_for(args.namespace)
    async with container(args.env_file, load_model=True) as c:
        await bind_chat(c, channel, args.namespace)
        questions = read_lines(args.questions, "--questions") if args.questions else [args.question]
        if not await _documents(c, args.namespace):
            print(f"lorekeeper ask: {_nothing_to_search(c)}", file=sys.stderr)
        pipeline = conversations(c)
        failed = 0
        for i, question in enumerate(questions):
            quiet = args.json or args.questions
            out = io.StringIO() if quiet else sys.stdout
            reply = ConsoleReply(out, stream=not quiet, show_answer=False, errors=sys.stderr)
            # a thread of its own: a run's questions never share one, nor do two runs
            message = console_message(question, channel=channel, thread=f"ask-{uuid.uuid4().hex}")
            answer = await pipeline.ask(message, reply)
            if reply.gone:
                raise BrokenPipeError  # the reader left: end as a pipe's writer does
            if answer is None:
                failed += 1
            else:
                _print_answer(args, i, question, answer, streamed=reply.streamed)
        return 1 if failed else 0


def _print_answer(
    args: argparse.Namespace, i: int, question: str, answer: Answer, *, streamed: bool
) -> None:
    if args.json:
        shown = answer_json(answer)
        print(json.dumps({"question": question, **shown} if args.questions else shown))
    elif args.questions:  # a block per question, headed by it
        print(("\n" if i else "") + f"Q: {question}")
        print(render_answer(answer, **styling(sys.stdout)))
    else:
        if streamed:
            print("\n")
        print(render_answer(answer, **styling(sys.stdout)))


async def _documents(c: Container, namespaces: list[str] | None) -> int:
    """Documents in the named namespaces (without names: in all of them)."""
    rows = await c.knowledge.list_namespaces((await knowledge_owner(c)).id)
    return sum(count for ns, count in rows if not namespaces or ns.name in namespaces)


def _nothing_to_search(c: Container) -> str:
    return (
        f"no documents to answer from in {data_location(c.settings)}; add some with:"
        " lorekeeper ingest PATH --namespace NAME"
    )


async def chat_command(args: argparse.Namespace) -> int:
    """The terminal chat. It ends with 0 however the user leaves it: Ctrl-D, /quit, /exit, or
    Ctrl-C with no answer in progress (a Ctrl-C before it is up ends with 130)."""
    async with container(args.env_file) as c:
        loading = await _chat(c, args.namespace)
    return _left(0, loading=loading)


async def _chat(c: Container, namespaces: list[str] | None) -> bool:
    """Chat until the user leaves; whether the embedding model was still loading then."""
    channel = channel_for(namespaces)
    chat = ConsoleChat(conversations(c), channel=channel)
    with _ctrl_c(chat.interrupt):
        await bind_chat(c, channel, namespaces)
        # the model loads while the user types the first question, not after it
        warm_up = asyncio.create_task(warm_up_model(c), name="warm-up")
        try:
            if not await _documents(c, namespaces):
                print(f"({_nothing_to_search(c)}, or /upload FILE here)")
            await chat.run()
        finally:
            loading = not warm_up.done()
            warm_up.cancel()
    return loading


def _left(code: int, *, loading: bool) -> int:
    """``code``, once the chat and everything it opened are closed. Left while the model was
    still loading, the process ends here: the load runs in a thread nothing can stop, which
    the interpreter would wait for (seconds) before the shell came back; and a thread left
    running native code while the interpreter shuts down can abort it. Only the CLI's own
    process ends so (in the main thread), never a caller running it in a thread."""
    if loading and threading.current_thread() is threading.main_thread():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


@contextlib.contextmanager
def _ctrl_c(handler: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C calls ``handler`` instead of stopping the program, where a signal can be caught
    (in the main thread); the handler before it comes back afterwards."""
    loop = asyncio.get_running_loop()
    before = signal.getsignal(signal.SIGINT)
    installed = True
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
            signal.signal(signal.SIGINT, before)


async def demo_command(args: argparse.Namespace) -> int:
    """Ingest the project's docs into the 'docs' namespace, then open the chat on it."""
    docs = Path(args.docs)
    if not docs.is_dir():
        print(
            f"lorekeeper demo: no {docs}/ folder here; run it from the project root",
            file=sys.stderr,
        )
        return 2
    # one container for both: the model and the stores load once
    async with container(args.env_file) as c:
        code = await ingest_into(c, [str(docs)], "docs", "local")
        if code != 0 or args.no_chat:
            return code
        print("\nTry: how do I add Lorekeeper to Slack?\n")
        loading = await _chat(c, ["docs"])
    return _left(0, loading=loading)
