"""Replicas for real: `lorekeeper run --slack` processes sharing one database and one Milvus
server (a milvus-lite server process on 127.0.0.1, standing in for Milvus standalone), each
with its own Events API port, health port and JSON log, against one fake Slack and one fake
Groq. Used by tests/test_replicas.py and bench/replicas.py."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from core.retrieval.lite_server import LiteServer
from tests.fakes.groq_server import FakeGroq
from tests.fakes.slack_server import FakeSlack
from tests.slack.driver import SIGNING_SECRET, SlackDriver, visible_text

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(
    check: Callable[[], Awaitable[T]], *, seconds: float = 180.0, what: str = "the bots"
) -> T:
    """``check()`` once it is truthy; fails after ``seconds`` (a hang, not a timing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def under_way(slack: FakeSlack, channel: str, ts: str) -> bool:
    """Whether an answer to the message ``ts`` is under way in Slack: a loading status under
    its thread (native streams) or the "Searching" placeholder (edits)."""
    if slack.statuses[(channel, ts)]:
        return True
    return any("Searching" in visible_text(m) for m in slack.thread(channel, ts))


@contextmanager
def milvus_server(folder: Path) -> Iterator[str]:
    """A milvus-lite server on 127.0.0.1 (its file in ``folder``); yields its URI."""
    server = LiteServer(folder / "milvus.db")
    uri = server.attach()
    assert uri is not None
    try:
        yield uri
    finally:
        server.stop()


@dataclass
class Replica:
    name: str
    proc: asyncio.subprocess.Process
    http_port: int
    log: Path
    driver: SlackDriver

    def records(self) -> list[dict[str, Any]]:
        """Its JSON log records so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line still being written
        return out

    def said(self, message: str, **context: str) -> list[dict[str, Any]]:
        """Its log records whose message starts with ``message`` and has this context."""
        return [
            r
            for r in self.records()
            if r.get("message", "").startswith(message)
            and all(r.get(k) == v for k, v in context.items())
        ]

    async def ready(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(f"http://127.0.0.1:{self.http_port}/readyz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def replica_env(
    database_url: str, milvus_uri: str, slack: FakeSlack, groq: FakeGroq, **extra: str
) -> dict[str, str]:
    """The environment of a `lorekeeper run --slack` process against the fakes (settings from
    the environment only: it is started with ``--env-file /dev/null``)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MILVUS_URI": milvus_uri,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "GROQ_API_KEY": "gsk_test_key_for_replicas",
        "GROQ_BASE_URL": groq.base_url,
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        **extra,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def folder_env(folder: Path, slack: FakeSlack, groq: FakeGroq, **extra: str) -> dict[str, str]:
    """``replica_env`` on the embedded default in ``folder`` (SQLite, a milvus-lite file)."""
    return replica_env(
        f"sqlite+aiosqlite:///{folder}/lk.db",
        str(folder / "milvus.db"),
        slack,
        groq,
        LOREKEEPER_DATA_DIR=str(folder),
        **extra,
    )


async def start_replica(
    name: str, env: dict[str, str], folder: Path, *, slack: FakeSlack, http: aiohttp.ClientSession
) -> Replica:
    slack_port, http_port = free_port(), free_port()
    data = folder / name
    data.mkdir(parents=True, exist_ok=True)
    log = data / "bot.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, "run", "--slack",
            cwd=ROOT,
            env=env | {
                "SLACK_PORT": str(slack_port),
                "HTTP_PORT": str(http_port),
                "LOREKEEPER_DATA_DIR": str(data),
            },
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    driver = SlackDriver(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        slack,
        None,  # type: ignore[arg-type]
        url=f"http://127.0.0.1:{slack_port}/slack/events",
        http=http,
    )
    return Replica(name, proc, http_port, log, driver)


@asynccontextmanager
async def replicas(
    count: int, env: dict[str, str], folder: Path, *, slack: FakeSlack, http: aiohttp.ClientSession
) -> AsyncIterator[list[Replica]]:
    """``count`` replicas started side by side, once every one is ready; killed at the end
    (those still running)."""
    started = [
        await start_replica(f"replica-{i}", env, folder, slack=slack, http=http)
        for i in range(count)
    ]
    try:
        for replica in started:

            async def ready(replica: Replica = replica) -> bool:
                if replica.proc.returncode is not None:
                    raise AssertionError(replica.log.read_text()[-3000:])
                return await replica.ready(http)

            await until(ready, what=f"{replica.name} to be ready")
        yield started
    finally:
        for replica in started:
            await replica.stop()
