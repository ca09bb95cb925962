"""100 questions at once against one `lorekeeper run --slack` replica, then against two.

    .venv/bin/python bench/replicas.py [--n 100] [--latency 1.0] [--write]

Each configuration is a fresh PostgreSQL database and a fresh Milvus server (a milvus-lite
server process on 127.0.0.1, standing in for Milvus standalone), the replicas as real
processes (tests/replica_harness.py), one fake Slack and a fake Groq that answers after
``--latency`` seconds (the real Groq is remote: it takes none of this machine's CPU, though
here it shares the load generator's process). The handbook is indexed through the first
replica and every replica answers one warm-up question. Then n signed ``app_mention`` events,
each a new thread of a different user, are POSTed at once, spread round-robin over the
replicas as a load balancer would; an answer counts when its final message (with the feedback
buttons) is in the fake Slack. Reported per configuration: the wall time from the first POST
to the last answer, and each question's latency p50 / p99; the baseline is one replica,
measured in the same run, and the ratio is two replicas against it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass

import aiohttp
from common import ROOT, pct, scratch_folder, temp_database
from machine import cpu

from core.retrieval.embedder import default_cache_dir
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.replica_harness import Replica, milvus_server, replica_env, replicas, until
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import visible_text

# the replicas share one built int8 model instead of building it in each data folder
os.environ.setdefault("EMBEDDING_CACHE_DIR", str(default_cache_dir()))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Replicas (bench/replicas.py)"
QUESTIONS = (
    "How many days of paid vacation do employees get?",
    "When do unused vacation days expire?",
    "How are travel expenses reimbursed?",
    "How long does reimbursing travel expenses take?",
)


@dataclass(frozen=True)
class Run:
    replicas: int
    wall: float
    latencies: list[float]
    answered: int


def _is_answer(message: dict[str, object]) -> bool:
    blocks = message.get("blocks") or []
    return any(b.get("type") == "actions" for b in blocks)  # type: ignore[union-attr]


async def _ask(replica: Replica, slack: FakeSlack, text: str, user: str) -> str:
    event = replica.driver.message_event(
        f"<@{BOT_USER}> {text}", user=user, channel="C1", kind="app_mention"
    )
    assert await replica.driver.send_event(event) == 200
    return str(event["ts"])


async def _answers(slack: FakeSlack, started: dict[str, float], deadline: float) -> dict:
    """When each thread's answer was first seen (polled every 20 ms)."""
    done: dict[str, float] = {}
    while len(done) < len(started) and time.perf_counter() < deadline:
        for ts in started:
            if ts not in done and any(_is_answer(m) for m in slack.thread("C1", ts)):
                done[ts] = time.perf_counter()
        await asyncio.sleep(0.02)
    return done


async def _prepare(group: list[Replica], slack: FakeSlack) -> None:
    first = group[0]
    shared = first.driver.message_event(
        "", user="U0", channel="C1", files=[slack.add_file("handbook.md", HANDBOOK)]
    )
    shared["text"] = f"<@{BOT_USER}>"
    assert await first.driver.send_event(shared) == 200

    async def indexed() -> bool:
        return any("Indexed" in visible_text(m) for m in slack.thread("C1", shared["ts"]))

    await until(indexed, what="the handbook indexed")
    for i, replica in enumerate(group):  # the model loaded, the first answer behind it
        ts = await _ask(replica, slack, QUESTIONS[0], f"UWARM{i}")

        async def answered(ts: str = ts) -> bool:
            return any(_is_answer(m) for m in slack.thread("C1", ts))

        await until(answered, what=f"{replica.name}'s warm-up answer")


async def measure(count: int, n: int, latency: float) -> Run:
    async with (
        scratch_folder("lk-replicas-") as folder,
        temp_database("postgresql", folder) as url,
        FakeGroq(responder=relevant_quoting_responder, latency=latency) as groq,
        FakeSlack() as slack,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        with milvus_server(folder) as milvus_uri:
            env = replica_env(url, milvus_uri, slack, groq, ANSWER_THRESHOLD="0")
            async with replicas(count, env, folder, slack=slack, http=http) as group:
                await _prepare(group, slack)
                started: dict[str, float] = {}

                async def one(i: int) -> None:
                    replica = group[i % count]
                    at = time.perf_counter()
                    ts = await _ask(replica, slack, QUESTIONS[i % len(QUESTIONS)], f"U{i:03d}")
                    started[ts] = at

                t0 = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                done = await _answers(slack, started, deadline=t0 + 300)
    wall = (max(done.values()) - t0) if done else float("nan")
    latencies = [done[ts] - at for ts, at in started.items() if ts in done]
    return Run(count, wall, latencies, len(done))


def report(runs: list[Run], n: int, latency: float) -> str:
    model, flags = cpu()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    base = runs[0].wall
    lines = [
        f"Command: `.venv/bin/python bench/replicas.py --n {n} --latency {latency:g} --write`."
        f" Machine: {model}, {os.cpu_count()} CPUs (replicas, milvus-lite, PostgreSQL and the"
        f" load generator share them), flags {flags}; load"
        f" average at the end {load}. Date: {dt.date.today().isoformat()}. {n} questions at"
        f" once, each a new thread, round-robin over the replicas; fake LLM {latency:g} s per"
        " answer; PostgreSQL, one Milvus server over gRPC.",
        "",
        "| replicas | all answered (s) | p50 (s) | p99 (s) | answered | wall vs one replica |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.replicas} | {run.wall:.2f} | {pct(run.latencies, 50):.2f} |"
            f" {pct(run.latencies, 99):.2f} | {run.answered}/{n} | {run.wall / base:.2f}x |"
        )
    lines += [
        "",
        "A replica answers at most 32 questions at once (`SlackConfig.concurrency`; the rest wait"
        " behind their placeholder), so 100 questions take one replica four rounds of the 1 s"
        " LLM and two replicas two. Both replicas share this machine's two"
        " cores: the gain is answering capacity, not CPU.",
    ]
    return "\n".join(lines)


def write(body: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    head, found, rest = text.partition(SECTION)
    after = ""
    if found:
        nxt = rest.find("\n## ")
        after = "" if nxt < 0 else rest[nxt:]
    else:
        head = text.rstrip("\n") + "\n\n"
    DOC.write_text(f"{head}{SECTION}\n\n{body}\n{after}".rstrip("\n") + "\n", encoding="utf-8")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="questions at once (default: 100)")
    parser.add_argument("--latency", type=float, default=1.0, help="fake LLM seconds per answer")
    parser.add_argument("--write", action="store_true", help=f"record in {DOC.name}")
    args = parser.parse_args()
    runs = []
    for count in (1, 2):
        run = await measure(count, args.n, args.latency)
        print(f"{count} replica(s): {run.answered}/{args.n} answered, wall {run.wall:.2f} s")
        runs.append(run)
    body = report(runs, args.n, args.latency)
    print(body)
    if args.write:
        write(body)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
