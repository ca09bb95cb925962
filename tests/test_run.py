"""`lorekeeper run --slack` as a real process: health, readiness, metrics, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from pathlib import Path

import aiohttp

from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.replica_harness import folder_env, free_port, under_way, until
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import SlackDriver, visible_text

ROOT = Path(__file__).resolve().parents[1]


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with http.get(url) as resp:
            return resp.status, await resp.text()
    except aiohttp.ClientError:
        return 0, ""


async def test_run_serves_health_metrics_and_drains_on_sigterm(tmp_path: Path) -> None:
    slack_port, http_port = free_port(), free_port()
    async with (
        FakeGroq(responder=relevant_quoting_responder) as groq,
        FakeSlack() as slack,
        aiohttp.ClientSession() as http,
    ):
        env = folder_env(
            tmp_path, slack, groq, SLACK_PORT=str(slack_port), HTTP_PORT=str(http_port)
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--env-file",
            os.devnull,  # settings from the environment only
            "run",
            "--slack",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{http_port}"
        driver = SlackDriver(
            None,
            None,
            slack,
            groq,
            url=f"http://127.0.0.1:{slack_port}/slack/events",  # type: ignore[arg-type]
            http=http,
        )
        try:
            await until(lambda: _ready(http, base), what="/readyz")
            status, body = await _get(http, f"{base}/healthz")
            assert status == 200 and json.loads(body)["status"] == "alive"
            status, body = await _get(http, f"{base}/readyz")
            checks = json.loads(body)["checks"]
            assert status == 200 and checks == {
                "accepting": True,
                "database": True,
                "milvus": True,
                "slack": True,
            }

            # index a file, then ask: one answered question
            shared = driver.message_event(
                "", user="U1", channel="C1", files=[slack.add_file("handbook.md", HANDBOOK)]
            )
            shared["text"] = f"<@{BOT_USER}>"
            assert await driver.send_event(shared) == 200
            await until(lambda: _said(slack, shared["ts"], "Indexed handbook.md"), what="indexing")
            first = driver.message_event(
                f"<@{BOT_USER}> How many days of paid vacation?",
                user="U1",
                channel="C1",
                kind="app_mention",
            )
            assert await driver.send_event(first) == 200
            answer = await until(lambda: _answered(slack, first["ts"]), what="the answer")
            assert "25 days" in visible_text(answer)
            _, metrics = await _get(http, f"{base}/metrics")
            assert 'lorekeeper_questions_total{mode="llm"} 1.0' in metrics
            assert "lorekeeper_answer_seconds_count 1.0" in metrics
            assert 'lorekeeper_ingestions_total{outcome="ok"} 1.0' in metrics
            assert 'lorekeeper_llm_tokens_total{kind="prompt"}' in metrics

            # a slow answer in flight when SIGTERM arrives is still delivered
            groq.latency = 3.0
            second = driver.message_event(
                f"<@{BOT_USER}> How are travel expenses reimbursed?",
                user="U2",
                channel="C1",
                kind="app_mention",
            )
            assert await driver.send_event(second) == 200
            # under way: a loading status under the thread (native streams) or a placeholder
            await until(lambda: under_way(slack, "C1", second["ts"]), what="the answer under way")
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=60)
            stderr = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            assert code == 0, stderr[-3000:]
            final = await _answered(slack, second["ts"])
            assert final and "14 days" in visible_text(final)
            assert "gsk_test_key_for_run" not in stderr and slack.bot_token not in stderr
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _ready(http: aiohttp.ClientSession, base: str) -> bool:
    status, _ = await _get(http, f"{base}/readyz")
    return status == 200


async def _said(slack: FakeSlack, ts: str, text: str) -> bool:
    return any(text in visible_text(m) for m in slack.thread("C1", ts))


async def _answered(slack: FakeSlack, ts: str):
    done = [
        m
        for m in slack.thread("C1", ts)
        if any(b.get("type") == "actions" for b in m.get("blocks") or [])
    ]
    return done[-1] if done else None


async def test_the_model_loads_after_start_and_leaves_the_collectors_generations() -> None:
    """`serve` loads the embedding model in the background and freezes again, so the first
    question does not wait for the model and full collections never scan its objects."""
    import gc
    from types import SimpleNamespace

    from bot.runtime import warm_up_model
    from core.retrieval.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    assert not embedder.loaded  # lazy: nothing loaded by building it
    try:
        await warm_up_model(SimpleNamespace(embedder=embedder))  # type: ignore[arg-type]
        model = embedder._engine  # what loading made
        assert model is not None
        assert gc.is_tracked(model)
        assert not any(o is model for o in gc.get_objects())  # in the permanent generation
    finally:
        gc.unfreeze()


async def test_chat_loads_the_model_while_the_user_types(
    database_url, tmp_path, monkeypatch, capsys
) -> None:
    """`lorekeeper chat` starts loading the embedding model before the first question is read,
    so the first answer does not wait for it."""
    import functools
    import gc

    from bot import process
    from bot.chat_commands import chat_command
    from bot.cli import build_parser
    from bot.container import build
    from core.retrieval.embedder import SentenceTransformerEmbedder

    for name in ("DATABASE_URL", "MILVUS_URI", "LOREKEEPER_DATA_DIR", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "lk.env"
    env_file.write_text(
        f"DATABASE_URL={database_url}\nMILVUS_URI={tmp_path / 'milvus.db'}\n"
        f"LOREKEEPER_DATA_DIR={tmp_path}\n"
    )
    embedder = SentenceTransformerEmbedder()  # a fresh one: nothing loaded yet
    monkeypatch.setattr("bot.runtime.build", functools.partial(build, embedder=embedder))
    loaded_before_input: list[bool] = []

    class SlowTypist:
        """The stdin of a user still typing: gives the model up to 300 s (a first load may
        build its compiled form on a busy machine), then closes."""

        def readline(self) -> str:
            warmed.wait(300)  # the warm-up's last step, after the model's first encode
            loaded_before_input.append(embedder.loaded)
            return ""

    warmed = threading.Event()
    freeze = process.freeze_heap

    def freeze_and_tell() -> None:
        freeze()
        warmed.set()

    monkeypatch.setattr(process, "freeze_heap", freeze_and_tell)

    monkeypatch.setattr(sys, "stdin", SlowTypist())

    def exit_while_loading(code: int) -> None:
        # the CLI ends its own process when left with the model still loading; here that
        # process is pytest's, so say what happened instead
        raise AssertionError(f"the chat was left with the model still loading (exit {code})")

    monkeypatch.setattr(os, "_exit", exit_while_loading)
    args = build_parser().parse_args(["--env-file", str(env_file), "chat"])
    try:
        assert await chat_command(args) == 0
    finally:
        gc.unfreeze()
    assert loaded_before_input == [True]
    assert "Lorekeeper terminal chat." in capsys.readouterr().out
