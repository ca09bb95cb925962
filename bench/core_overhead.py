"""Core overhead per question: everything AnswerService does except the LLM and the embedding.

    .venv/bin/python bench/core_overhead.py [--questions 200] [--db sqlite postgresql]
        [--llm instant fakegroq] [--profile] [--write]

Setup: the two SQuAD eval articles uploaded through the real ingestion (bench/common.py);
threshold 0 so every question goes through generation. Each question is asked with
``AnswerService.answer`` in its own thread (one user, quotas lifted so none refuses).

- Embedding: a precomputed-vector embedder (``PrecomputedEmbedder``): the questions are
  embedded by the real all-MiniLM-L6-v2 beforehand, ``embed_query`` is a lookup, so retrieval
  sees real vectors and the timed path contains no model time (misses are counted; 0 expected).
- LLM: "instant" is an in-process ``core.generation.base.LLM`` that streams one delta and
  returns at once (pure core overhead); "fakegroq" is the real groq SDK against FakeGroq
  (latency 0) on 127.0.0.1, its call time measured around ``complete`` and subtracted.

Baselines measured in the same run: the bare ``Retriever.search`` call (hybrid milvus-lite
search + chunk rows + stored vectors) and a raw ``SELECT 1`` round trip through the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import io
import itertools
import os
import pstats
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from common import (
    PrecomputedEmbedder,
    bot_with_articles,
    default_context,
    lift_quotas,
    load_articles,
    pct,
    real_embedder,
    write_subsection,
)
from sqlalchemy import event, text

from core.generation.base import ChatMessage, Completion, OnDelta
from core.generation.groq import GroqLLM
from tests.fakes.groq_server import FakeGroq

TARGET_P50_MS = 25.0
INSTANT_TEXT = "The sources say so [1]."


@dataclass
class InstantLLM:
    """An in-process LLM that answers immediately (streams its text as one delta)."""

    seconds: list[float] = field(default_factory=list)

    @property
    def model(self) -> str:
        return "instant"

    @property
    def timeout(self) -> float:
        return 30.0

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        on_delta: OnDelta | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.1,
        deadline: float | None = None,
    ) -> Completion:
        t0 = time.perf_counter()
        if on_delta is not None:
            await on_delta(INSTANT_TEXT)
        prompt = sum(len(m.content) for m in messages) // 4
        self.seconds.append(time.perf_counter() - t0)
        return Completion(INSTANT_TEXT, self.model, prompt, 6, 0)


@dataclass
class TimedLLM:
    """Times another LLM's ``complete`` (the SDK + HTTP + fake server = the LLM's time)."""

    inner: GroqLLM
    seconds: list[float] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def timeout(self) -> float:
        return self.inner.timeout

    async def complete(self, messages, **kwargs) -> Completion:
        t0 = time.perf_counter()
        try:
            return await self.inner.complete(messages, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - t0)

    async def close(self) -> None:
        await self.inner.close()


def instrument(obj: object, label: str, totals: dict[str, float], calls: Counter) -> None:
    """Time every public async method of ``obj`` (instance attributes shadow the methods)."""
    for name in dir(type(obj)):
        if name.startswith("_"):
            continue
        method = getattr(obj, name, None)
        if not inspect.iscoroutinefunction(method):
            continue
        key = f"{label}.{name}"

        async def timed(*args, _method=method, _key=key, **kwargs):
            t0 = time.perf_counter()
            try:
                return await _method(*args, **kwargs)
            finally:
                totals[_key] += time.perf_counter() - t0
                calls[_key] += 1

        setattr(obj, name, timed)


@dataclass
class RunResult:
    db: str
    llm: str
    overhead_ms: list[float]
    llm_ms: float  # mean per question, subtracted
    retrieval_ms: list[float]
    select1_ms: list[float]
    statements: float  # SQL statements per question
    phases: dict[str, tuple[float, float]]  # name -> (ms per question, calls per question)
    misses: int
    loop_cpu_ms: float  # event-loop thread CPU per question (the in-process fake's included)
    profile: str = ""


async def _select1(bot, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with bot.container.database.session() as db:
            await db.execute(text("SELECT 1"))
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _retrievals(bot, questions: Sequence[str]) -> list[float]:
    ctx = await default_context(bot)
    ns = [n.id for n in ctx.namespaces]
    out = []
    for q in questions:
        t0 = time.perf_counter()
        await bot.container.retriever.search(q, workspace_id=ctx.workspace_ids, namespace_ids=ns)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _ask_all(bot, questions: Sequence[str], llm, tag: str) -> list[float]:
    """Wall ms minus LLM ms per question, each in its own thread."""
    out = []
    for i, q in enumerate(questions):
        before = len(llm.seconds)
        t0 = time.perf_counter()
        answer = await bot.say(q, thread=f"{tag}-{i}")
        wall = time.perf_counter() - t0
        if answer.mode != "llm":
            raise RuntimeError(f"expected an LLM answer, got {answer.mode}: {answer.text[:80]}")
        out.append((wall - sum(llm.seconds[before:])) * 1000)
    return out


async def measure(
    kind: str, llm_kind: str, questions: Sequence[str], *, embedder, profile: bool
) -> RunResult:
    articles = load_articles()
    fake = FakeGroq(latency=0.0) if llm_kind == "fakegroq" else None
    if fake is not None:
        await fake.start()
    llm = InstantLLM() if fake is None else TimedLLM(GroqLLM("gsk_bench", base_url=fake.base_url))
    try:
        async with bot_with_articles(
            kind, embedder=embedder, articles=articles, llm=llm, ANSWER_THRESHOLD=0.0
        ) as bot:
            await lift_quotas(bot)
            warm = questions[:20]
            await _ask_all(bot, warm, llm, "warm")
            await _retrievals(bot, warm)
            statements = Counter[str]()

            def count(*_args) -> None:
                statements["n"] += 1

            event.listen(bot.container.database.engine.sync_engine, "before_cursor_execute", count)
            totals: dict[str, float] = defaultdict(float)
            calls: Counter[str] = Counter()
            c = bot.container
            for obj, label in (
                (c.identity, "identity"),
                (c.conversation, "conversation"),
                (c.usage, "usage"),
                (c.knowledge, "knowledge"),
                (c.vectors, "vectors"),
                (c.retriever, "retriever"),
                (c.quota, "quota"),
            ):
                instrument(obj, label, totals, calls)
            misses = embedder.misses
            llm.seconds.clear()
            cpu0 = time.thread_time()
            overhead = await _ask_all(bot, questions, llm, "q")
            loop_cpu_ms = (time.thread_time() - cpu0) * 1000 / len(questions)
            llm_ms = sum(llm.seconds) * 1000 / len(questions)
            n_statements = statements["n"] / len(questions)
            phases = {
                k: (v * 1000 / len(questions), calls[k] / len(questions))
                for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
            }
            event.remove(bot.container.database.engine.sync_engine, "before_cursor_execute", count)
            retrieval = await _retrievals(bot, questions)
            select1 = await _select1(bot, len(questions))
            prof = await _profile(bot, questions[:100], llm) if profile else ""
            return RunResult(
                kind,
                llm_kind,
                overhead,
                llm_ms,
                retrieval,
                select1,
                n_statements,
                phases,
                embedder.misses - misses,
                loop_cpu_ms,
                prof,
            )
    finally:
        if fake is not None:
            await llm.close()
            await fake.stop()


async def _profile(bot, questions: Sequence[str], llm) -> str:
    """cProfile of the event-loop thread (worker threads: milvus-lite, aiosqlite, not seen)."""
    profiler = cProfile.Profile()
    profiler.enable()
    await _ask_all(bot, questions, llm, "prof")
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"core/|sqlalchemy/orm|sqlalchemy/engine", 30)
    return buf.getvalue()


def render(results: Sequence[RunResult], n: int) -> str:
    rows = [
        f"Command: `.venv/bin/python bench/core_overhead.py --questions {n} --write`. "
        "Embedding: precomputed-vector embedder (real MiniLM vectors, lookup at query time). "
        "LLM: `instant` = in-process LLM returning at once; `fakegroq` = real groq SDK against "
        "FakeGroq(latency=0), its call time subtracted (that fake runs on the same event loop, so "
        "its serving is in the event-loop CPU column). Threshold 0: every question is "
        f"generated. {n} questions, each in a new thread, sequential, after 20 warm-up ones. "
        f"Load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())} on "
        f"{len(os.sched_getaffinity(0))} CPUs (shared machine).",
        "",
        "| database | LLM | overhead p50 | p90 | p99 | target p50 <= 25 ms | "
        "baseline Retriever.search p50 | ratio | SELECT 1 p50 | ratio | SQL statements "
        "/ question | LLM time subtracted | event-loop CPU / question |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p50 = pct(r.overhead_ms, 50)
        rp50 = pct(r.retrieval_ms, 50)
        sp50 = pct(r.select1_ms, 50)
        rows.append(
            f"| {r.db} | {r.llm} | {p50:.1f} ms | {pct(r.overhead_ms, 90):.1f} ms | "
            f"{pct(r.overhead_ms, 99):.1f} ms | {'met' if p50 <= TARGET_P50_MS else 'MISSED'} "
            f"| {rp50:.1f} ms | {p50 / rp50:.1f}x | {sp50:.2f} ms | {p50 / sp50:.0f}x | "
            f"{r.statements:.1f} | {r.llm_ms:.2f} ms | {r.loop_cpu_ms:.1f} ms |"
        )
    for r in results:
        rows += [
            "",
            f"Where the time goes ({r.db}, {r.llm}; mean ms per question, calls per question; "
            "nested calls are inside their callers, e.g. retriever.search holds vectors.* and "
            f"knowledge.chunks; embedding misses {r.misses}):",
            "",
            "| call | ms / question | calls / question |",
            "|---|---:|---:|",
        ]
        rows += [f"| {k} | {ms:.2f} | {cnt:.1f} |" for k, (ms, cnt) in r.phases.items()]
    return "\n".join(rows)


async def main(n: int, dbs: Sequence[str], llms: Sequence[str], profile: bool, write: bool):
    articles = load_articles()
    # Alternate between the articles, skip duplicates; the first 20 only warm up.
    pairs = itertools.zip_longest(*[[q.text for q in a.questions] for a in articles])
    questions = list(dict.fromkeys(q for pair in pairs for q in pair if q))[: n + 20]
    embedder = PrecomputedEmbedder(real_embedder())
    await embedder.prime([*questions, "probe"])
    results = []
    profiles = []
    for kind in dbs:
        for llm_kind in llms:
            r = await measure(kind, llm_kind, questions[20:], embedder=embedder, profile=profile)
            print(
                f"{kind:10s} {llm_kind:8s} overhead p50 {pct(r.overhead_ms, 50):.1f} ms "
                f"p99 {pct(r.overhead_ms, 99):.1f} ms; retrieval p50 "
                f"{pct(r.retrieval_ms, 50):.1f} ms; SELECT 1 p50 {pct(r.select1_ms, 50):.2f} ms",
                flush=True,
            )
            results.append(r)
            if r.profile:
                profiles.append(f"==== profile {kind} {llm_kind} ====\n{r.profile}")
    report = render(results, n)
    print(report)
    for p in profiles:
        print(p)
    if write:
        write_subsection("Core overhead per question", report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--llm", nargs="+", default=["instant", "fakegroq"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.questions, args.db, args.llm, args.profile, args.write))
