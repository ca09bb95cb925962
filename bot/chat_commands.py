"""`lorekeeper ask`, `chat` and `demo`: the terminal face of the same core."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import uuid
from pathlib import Path

from adapters.console.chat import ConsoleChat, ConsoleReply, channel_for, console_message
from adapters.console.render import answer_json, render_answer
from bot.container import Container
from bot.knowledge_commands import ingest_into
from bot.runtime import (
    bind_console_channel,
    bind_console_to_all,
    console_workspace,
    container,
    read_lines,
    warm_up_model,
)


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
    async with container(args.env_file) as c:
        await bind_chat(c, channel, args.namespace)
        questions = read_lines(args.questions, "--questions") if args.questions else [args.question]
        for i, question in enumerate(questions):
            quiet = args.json or args.questions
            reply = ConsoleReply(io.StringIO() if quiet else sys.stdout, stream=not quiet)
            # a thread of its own: a run's questions never share one, nor do two runs
            message = console_message(question, channel=channel, thread=f"ask-{uuid.uuid4().hex}")
            answer = await c.answers.answer(message, reply)
            if args.json:
                print(
                    json.dumps(
                        {"question": question, **answer_json(answer)}
                        if args.questions
                        else answer_json(answer)
                    )
                )
            elif args.questions:  # a block per question, headed by it
                print(("\n" if i else "") + f"Q: {question}")
                print(render_answer(answer))
            else:
                if reply.streamed:
                    print("\n")
                print(render_answer(answer))
        return 0


async def chat_command(args: argparse.Namespace) -> int:
    async with container(args.env_file) as c:
        return await _chat(c, args.namespace)


async def _chat(c: Container, namespaces: list[str] | None) -> int:
    channel = channel_for(namespaces)
    # the model loads while the user types the first question, not after it
    warm_up = asyncio.create_task(warm_up_model(c), name="warm-up")
    try:
        await bind_chat(c, channel, namespaces)
        await ConsoleChat(c.answers, c.uploads, channel=channel).run()
    finally:
        warm_up.cancel()
    return 0


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
        return await _chat(c, ["docs"])
