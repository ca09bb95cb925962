"""Slack acknowledgement latency under a burst, and the time from an event to its placeholder.

    .venv/bin/python bench/slack_ack.py [--events 200] [--llm-latency 1.0]
        [--append docs/benchmarks.md]

The whole bot runs as in production (real bolt app over HTTP with request signing, real core on
SQLite + milvus-lite + the real embedder) against the fake Slack and a fake Groq that takes
``--llm-latency`` seconds per answer. ``--events`` signed ``app_mention`` events (each its own
thread) are POSTed at once; each request's acknowledgement time is measured by the client, and
the placeholder time is when the fake Slack received that thread's first ``chat.postMessage``.
Baseline in the same run: the same signed requests, at once, to a bare aiohttp handler that
returns 200 (the floor for an HTTP acknowledgement on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from core.retrieval.embedder import SentenceTransformerEmbedder
from tests.databases import SqliteDatabases
from tests.fakes.slack_server import BOT_USER
from tests.scenarios.suite import HANDBOOK
from tests.slack.conftest import running_bot
from tests.slack.driver import SlackDriver

TARGET_MS = 100.0
QUESTION = "How are travel expenses reimbursed?"


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


async def burst(
    http: aiohttp.ClientSession, url: str, bodies: list[str], driver: SlackDriver
) -> tuple[list[float], list[float]]:
    """POST every body at once; returns (ack latencies in ms, send times)."""
    sent: list[float] = [0.0] * len(bodies)

    async def one(i: int) -> float:
        headers = driver.signed_headers(bodies[i], "application/json")
        sent[i] = time.monotonic()
        async with http.post(url, data=bodies[i].encode(), headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return (time.monotonic() - sent[i]) * 1000

    acks = await asyncio.gather(*(one(i) for i in range(len(bodies))))
    return list(acks), sent


async def baseline(
    http: aiohttp.ClientSession, bodies: list[str], driver: SlackDriver
) -> list[float]:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", ok)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        acks, _ = await burst(http, url, bodies, driver)
    finally:
        await runner.cleanup()
    return acks


async def main(events: int, llm_latency: float) -> dict[str, float]:
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dbs = SqliteDatabases(folder / "template")
        await asyncio.to_thread(dbs.setup)
        url = dbs.create(folder / "bench.db")
        async with running_bot(url, folder, embedder, latency=llm_latency) as bot:
            await bot.upload("handbook.md", HANDBOOK)  # also warms the embedder and milvus
            warm = await bot.mention(QUESTION)
            await bot.bot_messages(warm)
            said = f"<@{BOT_USER}> {QUESTION}"
            mentions = [
                bot.message_event(said, user=f"U{i}", channel="C1", kind="app_mention")
                for i in range(events)
            ]
            bodies = [json.dumps(bot.envelope(e)) for e in mentions]
            base_bodies = [json.dumps(bot.envelope(e)) for e in mentions]
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                base = await baseline(http, base_bodies, bot)
                started = time.monotonic()
                acks, sent = await burst(http, bot.url, bodies, bot)
                await bot.bot.idle()
                total = time.monotonic() - started
            posts = {}
            for call in bot.slack.methods("chat.postMessage"):
                posts.setdefault(call.params.get("thread_ts"), call.at)
            placeholder = [(posts[e["ts"]] - t) * 1000 for e, t in zip(mentions, sent, strict=True)]
            answered = sum(1 for e in mentions if len(bot.slack.thread("C1", e["ts"])) == 1)
    return {
        "events": events,
        "ack_p50": pct(acks, 50),
        "ack_p99": pct(acks, 99),
        "ack_max": max(acks),
        "within": sum(a <= TARGET_MS for a in acks),
        "base_p50": pct(base, 50),
        "base_p99": pct(base, 99),
        "ph_p50": pct(placeholder, 50),
        "ph_p99": pct(placeholder, 99),
        "ph_max": max(placeholder),
        "answered": answered,
        "total_s": total,
    }


def table(r: dict[str, float], llm_latency: float) -> str:
    n = int(r["events"])
    return "\n".join(
        [
            f"{n} signed `app_mention` events POSTed at once; fake LLM {llm_latency:.1f} s"
            " per answer; SQLite, milvus-lite, real embedder; 2-core dev machine.",
            "",
            "| measure | p50 (ms) | p99 (ms) | max (ms) | vs baseline (p50 / p99) |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| baseline: bare aiohttp 200 | {r['base_p50']:.1f} | {r['base_p99']:.1f} | | 1.00x |",
            f"| bot acknowledgement | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} |"
            f" {r['ack_max']:.1f} |"
            f" {r['ack_p50'] / r['base_p50']:.2f}x / {r['ack_p99'] / r['base_p99']:.2f}x |",
            f"| event -> placeholder posted | {r['ph_p50']:.0f} | {r['ph_p99']:.0f} |"
            f" {r['ph_max']:.0f} | |",
            "",
            f"Acknowledged within {TARGET_MS:.0f} ms: {int(r['within'])}/{n}. "
            f"Answered (one message per thread): {int(r['answered'])}/{n}; "
            f"all {n} answers done {r['total_s']:.1f} s after the burst.",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--llm-latency", type=float, default=1.0)
    parser.add_argument("--append", metavar="FILE", help="append the result table (Markdown)")
    args = parser.parse_args()
    result = asyncio.run(main(args.events, args.llm_latency))
    text = table(result, args.llm_latency)
    print(text)
    if args.append:
        command = "`.venv/bin/python bench/slack_ack.py " + " ".join(sys.argv[1:]) + "`"
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(f"\n## Slack acknowledgement (bench/slack_ack.py)\n\n{command}\n\n{text}\n")
