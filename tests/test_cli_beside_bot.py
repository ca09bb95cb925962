"""The command line beside a running bot on the embedded store: real `lorekeeper` processes on
one data folder, SQLite and milvus-lite, the bot on a fake Slack.

A terminal chat opened first serves the store; `lorekeeper run --slack` starts beside it; the
one-shot commands work beside both; the chat leaves and the bot takes the store over, then
answers in Slack from the document the CLI ingested; after SIGTERM no milvus-lite is left."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.replica_harness import folder_env, free_port, until
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import SlackDriver, visible_text
from tests.store_processes import address_pid, openers, servers, until_gone

ROOT = Path(__file__).resolve().parents[1]


async def _start(
    env: dict[str, str], *argv: str, stdin: int | None = None, log: Path | None = None
):
    """`lorekeeper ARGV`; its output piped, or into ``log`` (a long-running process's log
    must not fill a pipe nobody reads)."""
    out = log.open("wb") if log is not None else asyncio.subprocess.PIPE
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, *argv,
            cwd=ROOT, env=env, stdin=stdin,
            stdout=out, stderr=asyncio.subprocess.STDOUT if log is not None else out,
        )  # fmt: skip
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


async def _cli(env: dict[str, str], *argv: str) -> str:
    """One command to its end; its output (it must succeed)."""
    proc = await _start(env, *argv)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, (argv, out.decode()[-2000:], err.decode()[-3000:])
    assert b"Traceback" not in err, err.decode()[-3000:]
    return out.decode()


async def _banner(chat: asyncio.subprocess.Process) -> None:
    """Until the terminal chat greets (it has opened the stores by then)."""
    seen = b""
    while b"Lorekeeper terminal chat" not in seen:
        line = await chat.stdout.readline()  # type: ignore[union-attr]
        assert line, seen.decode()
        seen += line


async def _ready(http: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with http.get(f"{base}/readyz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _answered(slack: FakeSlack, ts: str):
    done = [
        m
        for m in slack.thread("C1", ts)
        if any(b.get("type") == "actions" for b in m.get("blocks") or [])
    ]
    return done[-1] if done else None


def _one_opener(db: Path) -> None:
    """Never two processes on the file itself: at most its one server has it open."""
    assert len(openers(db)) <= 1 and openers(db) <= servers(db)


async def test_the_cli_works_beside_the_running_bot(tmp_path: Path) -> None:
    db = tmp_path / "milvus.db"
    (tmp_path / "handbook.md").write_bytes(HANDBOOK)
    http_port, slack_port = free_port(), free_port()
    async with (
        FakeGroq(responder=relevant_quoting_responder) as groq,
        FakeSlack() as slack,
        aiohttp.ClientSession() as http,
    ):
        env = folder_env(
            tmp_path,
            slack,
            groq,
            SLACK_PORT=str(slack_port),
            HTTP_PORT=str(http_port),
            LOG_JSON="false",
            PYTHONUNBUFFERED="1",
        )
        chat = await _start(env, "chat", stdin=asyncio.subprocess.PIPE)
        bot = None
        try:
            await asyncio.wait_for(_banner(chat), timeout=180)
            assert address_pid(db) == chat.pid  # the first process serves the store

            bot = await _start(env, "run", "--slack", log=tmp_path / "bot.log")
            await until(lambda: _ready(http, f"http://127.0.0.1:{http_port}"), what="/readyz")
            _one_opener(db)

            out = await _cli(env, "ingest", str(tmp_path / "handbook.md"), "-n", "general")
            assert "1 files, " in out and ", 0 failed" in out, out
            assert "25 days" in await _cli(env, "search", "paid vacation days", "-n", "general")
            assert "25 days" in await _cli(env, "ask", "How many days of paid vacation?")
            assert "general\t1 documents" in await _cli(env, "namespaces")
            await _cli(env, "usage")
            await _cli(env, "jobs", "run", "reconcile")
            _one_opener(db)
            assert address_pid(db) == chat.pid

            # the chat leaves: the bot, connected to its store, takes it over
            [chat_server] = servers(db)
            chat.stdin.close()  # type: ignore[union-attr]
            assert await asyncio.wait_for(chat.wait(), timeout=60) == 0
            await until_gone({chat_server})
            driver = SlackDriver(
                None,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                slack,
                groq,
                url=f"http://127.0.0.1:{slack_port}/slack/events",
                http=http,
            )
            question = driver.message_event(
                f"<@{BOT_USER}> How many days of paid vacation?",
                user="U1",
                channel="C1",
                kind="app_mention",
            )
            assert await driver.send_event(question) == 200
            answer = await until(lambda: _answered(slack, question["ts"]), what="the answer")
            assert "25 days" in visible_text(answer)
            assert address_pid(db) == bot.pid
            assert "25 days" in await _cli(env, "search", "paid vacation days", "-n", "general")
            _one_opener(db)

            [bot_server] = servers(db)
            bot.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(bot.wait(), timeout=60)
            assert code == 0, (tmp_path / "bot.log").read_text()[-3000:]
            await until_gone({bot_server})
            assert servers(db) == set() and address_pid(db) is None
        finally:
            for proc in (chat, bot):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
