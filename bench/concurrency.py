"""100 questions at once, 100 threads, against a fake LLM that takes 1 s per answer.

    .venv/bin/python bench/concurrency.py [--n 100] [--db sqlite postgresql] [--write]
        [--torch-threads 1] [--profile FILE] [--timeline]

The real container (BotHarness) with the two SQuAD eval articles ingested, the real groq SDK
against FakeGroq(latency=1.0) on 127.0.0.1, threshold 0 so every question reaches the LLM,
daily quotas lifted (100 answers from one user would otherwise approach the default plan).
``asyncio.gather`` asks n distinct questions, each in its own thread. Target: all answered
within 1.5 s of wall time, i.e. <= 0.5 s of core time on top of the 1 s LLM.

The bot's start-up objects are frozen out of the cyclic collector (``gc.freeze()`` after the
warm-up question), as ``lorekeeper run`` does once the model is loaded. The burst reports the
event loop thread's CPU time and, of it, the collector's: on a 2-core machine the loop's CPU is
what the wall time is made of.

The fake Groq runs in its own process (``python -m tests.fakes.groq_server``), as the real
one is remote: in-process, its HTTP serving and streaming would share the bot's event loop and
CPU. ``--in-process-llm`` runs it in the bot's process instead.

Two rounds on one bot, with fresh questions each: "real embedder" (all-MiniLM-L6-v2 at query
time, as in production) and "precomputed vectors" (the same vectors looked up, to tell the
embedder's share from the rest). Baseline in the same run: one question alone (its wall
time is the floor for the batch). The fake records when each LLM request arrived, which
shows how long the core took to get all n questions to the model (pre-LLM serialisation)
and how long it took to finish after the model answered (post-LLM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import json
import os
import pstats
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from common import (
    PrecomputedEmbedder,
    bot_with_articles,
    lift_quotas,
    load_articles,
    pct,
    real_embedder,
    write_subsection,
)

from tests.fakes.groq_server import FakeGroq, quoting_responder

LLM_SECONDS = 1.0
TARGET_SECONDS = 1.5


@dataclass
class Round:
    db: str
    embedding: str
    n: int
    wall: float
    single: float
    first_arrival: float  # seconds from start until the first LLM request arrived
    last_arrival: float
    latencies: list[float]
    modes: dict[str, int]
    sessions: int
    hops: dict[str, float]  # mean seconds per question spent in each instrumented step
    loop_cpu: float  # CPU seconds of the event loop's thread during the burst
    gc_seconds: float  # time in the cyclic garbage collector during the burst
    process_cpu: float  # CPU seconds of the whole process (all threads) during the burst


class RemoteFake:
    """FakeGroq in a child process; ``arrivals`` are wall-clock (``time.time()``) seconds."""

    def __init__(self, latency: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.groq_server", "--latency", str(latency)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError("the fake Groq process did not start")

    def take_arrivals(self) -> list[float]:
        with urllib.request.urlopen(self.base_url + "/fake/arrivals", timeout=10) as r:
            return [float(x) for x in json.loads(r.read())]

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


class GcClock:
    """Sums the time the cyclic garbage collector runs while the block runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


class LoopWatch:
    """``--timeline``: how busy the event loop's thread was in each 50 ms of the burst (its CPU
    time over wall time: an idle loop is waiting for a worker thread, the database or Milvus),
    and the CPU time of every thread of the process during the burst."""

    def __init__(self, start: float, cpu0: float) -> None:
        self._start, self._cpu0 = start, cpu0
        self._samples: list[tuple[float, float]] = []
        self._threads = _thread_cpu()
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            now = time.perf_counter() - self._start
            self._samples.append((now, time.thread_time() - self._cpu0))
            await asyncio.sleep(0.05)

    def report(self) -> None:
        self._task.cancel()
        busy, (t0, c0) = [], (0.0, 0.0)
        for t, c in self._samples:
            if t > t0:
                busy.append(f"{t0:.2f}:{(c - c0) / (t - t0):.0%}")
            t0, c0 = t, c
        print("  loop busy (window start s: share):", " ".join(busy))
        after = _thread_cpu()
        used = sorted(((after[k] - self._threads.get(k, 0.0), k) for k in after), reverse=True)
        print("  thread CPU (s):", ", ".join(f"{name} {cpu:.2f}" for cpu, name in used[:6]))


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (from /proc)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[f"{names.get(int(tid), 'native')}:{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


class ArrivalClock:
    """A responder for an in-process FakeGroq that notes when each request arrived, in
    wall-clock seconds (it answers after the fake's latency, so arrival = now - latency)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.arrivals: list[float] = []

    def __call__(self, messages):
        self.arrivals.append(time.time() - self.latency)
        return quoting_responder(messages)

    def take_arrivals(self) -> list[float]:
        out, self.arrivals = self.arrivals, []
        return out


@contextlib.asynccontextmanager
async def fake_llm(in_process: bool):
    """(clock, base_url) of a fake Groq taking LLM_SECONDS per answer."""
    if in_process:
        clock = ArrivalClock(LLM_SECONDS)
        async with FakeGroq(latency=LLM_SECONDS, responder=clock) as fake:
            yield clock, fake.base_url
        return
    remote = await asyncio.to_thread(RemoteFake, LLM_SECONDS)
    try:
        yield remote, remote.base_url
    finally:
        remote.close()


def wrap_timed(obj: object, names: Sequence[str], totals: dict[str, float], label: str) -> None:
    """Instance-level wrappers summing the wall time of ``names`` (queueing included)."""
    for name in names:
        method = getattr(obj, name)

        async def timed(*args, _m=method, _k=f"{label}.{name}", **kwargs):
            t0 = time.perf_counter()
            try:
                return await _m(*args, **kwargs)
            finally:
                totals[_k] += time.perf_counter() - t0

        setattr(obj, name, timed)


async def one_round(
    bot, clock, questions, tag, *, db, embedding, totals, profiler=None, timeline=False
) -> Round:
    t0 = time.perf_counter()
    single = await bot.say(questions[0], thread=f"{tag}-single")
    single_wall = time.perf_counter() - t0
    if single.mode != "llm":
        raise RuntimeError(f"warm-up question got {single.mode}: {single.text[:80]}")
    clock.take_arrivals()
    totals.clear()
    lat: list[float] = []

    async def ask(i: int, q: str):
        s = time.perf_counter()
        answer = await bot.say(q, thread=f"{tag}-{i}")
        lat.append(time.perf_counter() - s)
        return answer

    collecting = GcClock()
    start, start_wall = time.perf_counter(), time.time()
    cpu0, proc0 = time.thread_time(), time.process_time()
    watch = LoopWatch(start, cpu0) if timeline else None
    with collecting:
        if profiler is not None:
            profiler.enable()
        try:
            answers = await asyncio.gather(*(ask(i, q) for i, q in enumerate(questions[1:])))
        finally:
            if profiler is not None:
                profiler.disable()
    wall = time.perf_counter() - start
    if watch is not None:
        watch.report()
    loop_cpu, process_cpu = time.thread_time() - cpu0, time.process_time() - proc0
    arrivals = [a - start_wall for a in clock.take_arrivals()]
    modes: dict[str, int] = defaultdict(int)
    for a in answers:
        modes[a.mode] += 1
    n = len(answers)
    return Round(
        db,
        embedding,
        n,
        wall,
        single_wall,
        min(arrivals) if arrivals else float("nan"),
        max(arrivals) if arrivals else float("nan"),
        lat,
        dict(modes),
        len({a.session_id for a in answers}),
        {k: v / n for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        loop_cpu,
        collecting.seconds,
        process_cpu,
    )


async def run_db(
    kind: str,
    n: int,
    articles,
    embedder: PrecomputedEmbedder,
    in_process: bool,
    profile: str | None = None,
    timeline: bool = False,
) -> list[Round]:
    questions = list(
        dict.fromkeys(
            q
            for pair in itertools.zip_longest(*[[q.text for q in a.questions] for a in articles])
            for q in pair
            if q
        )
    )
    real_set, cached_set = questions[: n + 1], questions[n + 1 : 2 * n + 2]
    await embedder.prime(cached_set)
    async with (
        fake_llm(in_process) as (clock, base_url),
        bot_with_articles(
            kind,
            embedder=embedder,
            articles=articles,
            groq_base_url=base_url,
            ANSWER_THRESHOLD=0.0,
        ) as bot,
    ):
        await lift_quotas(bot)
        await bot.say("warm up the SDK connection pool", thread="warm")
        # as `lorekeeper run` does once the model is loaded (bot/run.py): start-up objects,
        # the model's included, out of the collector's generations
        gc.freeze()
        totals: dict[str, float] = defaultdict(float)
        c = bot.container
        wrap_timed(c.embedder, ["embed_query"], totals, "embedder")
        wrap_timed(c.vectors, ["search", "dense_vectors"], totals, "milvus")
        wrap_timed(c.retriever, ["search"], totals, "retriever")
        wrap_timed(c.quota, ["check"], totals, "quota")
        wrap_timed(c.conversation, ["add_message", "history"], totals, "conversation")
        wrap_timed(c.identity, ["claim_event", "session"], totals, "identity")
        wrap_timed(c.usage, ["record_many"], totals, "usage")
        wrap_timed(c.llm, ["complete"], totals, "llm")
        rounds = []
        for name, qs in (("real embedder", real_set), ("precomputed vectors", cached_set)):
            profiler = cProfile.Profile() if profile and name.startswith("precomputed") else None
            r = await one_round(
                bot,
                clock,
                qs,
                name.split()[0],
                db=kind,
                embedding=name,
                totals=totals,
                profiler=profiler,
                timeline=timeline,
            )
            if profiler is not None:
                profiler.dump_stats(f"{profile}.{kind}")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            print(
                f"{kind:10s} {name:20s} n={r.n} wall {r.wall:.2f} s (single {r.single:.2f} s); "
                f"LLM requests arrived {r.first_arrival:.2f}-{r.last_arrival:.2f} s; "
                f"loop CPU {r.loop_cpu:.2f} s (GC {r.gc_seconds:.2f} s), "
                f"process CPU {r.process_cpu:.2f} s; "
                f"modes {r.modes}",
                flush=True,
            )
            rounds.append(r)
        return rounds


def render(rounds: Sequence[Round], n: int, load: str) -> str:
    rows = [
        f"Command: `.venv/bin/python bench/concurrency.py --n {n} --write` ({load}). "
        f"{n} distinct questions via asyncio.gather, each in its own thread; real groq SDK "
        f"against FakeGroq(latency={LLM_SECONDS:.0f} s); threshold 0 (every question reaches "
        "the LLM); baseline: one question alone, same bot, just before.",
        "",
        "| database | query embedding | wall (all n) | target <= 1.5 s | single question "
        "| ratio wall / single | LLM requests arrived (s after start) | answer latency "
        "p50 / max | event-loop thread CPU (of it GC) | process CPU | answers (mode) "
        "| distinct sessions |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in rounds:
        rows.append(
            f"| {r.db} | {r.embedding} | {r.wall:.2f} s | "
            f"{'met' if r.wall <= TARGET_SECONDS else 'MISSED'} | {r.single:.2f} s | "
            f"{r.wall / r.single:.2f}x | {r.first_arrival:.2f} - {r.last_arrival:.2f} | "
            f"{pct(r.latencies, 50):.2f} / {max(r.latencies):.2f} s | "
            f"{r.loop_cpu:.2f} s ({r.gc_seconds:.2f} s) | {r.process_cpu:.2f} s | "
            f"{', '.join(f'{k} {v}' for k, v in r.modes.items())} | {r.sessions} |"
        )
    rows += [
        "",
        "Mean wall time per question inside each step during the burst (seconds; includes "
        "waiting for locks, pools and worker threads, so the sum exceeds the wall time):",
        "",
        "| step | " + " | ".join(f"{r.db}, {r.embedding}" for r in rounds) + " |",
        "|---|" + "---:|" * len(rounds),
    ]
    steps = list(dict.fromkeys(k for r in rounds for k in r.hops))
    for step in steps:
        rows.append(
            f"| {step} | " + " | ".join(f"{r.hops.get(step, 0.0):.3f}" for r in rounds) + " |"
        )
    return "\n".join(rows)


async def main(
    n: int,
    dbs: Sequence[str],
    write: bool,
    torch_threads: int | None,
    in_process: bool,
    profile: str | None = None,
    timeline: bool = False,
) -> None:
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    speed_before = cpu_speed()
    print(f"machine speed: 10M-add loop {speed_before:.2f} s (lower is faster)")
    articles = load_articles()
    embedder = PrecomputedEmbedder(real_embedder())
    await embedder.prime(["warm up the SDK connection pool"])
    rounds = []
    for kind in dbs:
        rounds += await run_db(kind, n, articles, embedder, in_process, profile, timeline)
    load = (
        f"load average {' '.join(_loadavg())} on {_cpus()} CPUs; machine speed: a pure-Python "
        f"10M-add loop took {speed_before:.2f} s before and {cpu_speed():.2f} s after"
    )
    report = render(rounds, n, load)
    heading = "Concurrency: 100 questions at once, 1 s LLM"
    if torch_threads is not None:
        report = report.replace("--write`", f"--torch-threads {torch_threads} --write`", 1)
        heading += f" (torch.set_num_threads({torch_threads}))"
    if in_process:
        report = report.replace("--write`", "--in-process-llm --write`", 1)
        report = report.replace("FakeGroq(", "FakeGroq in this process (", 1)
        heading += " (fake Groq in the bot's process)"
    else:
        report = report.replace("FakeGroq(", "FakeGroq in its own process (", 1)
    print(report)
    if write:
        write_subsection(heading, report)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def cpu_speed() -> float:
    """Seconds for a pure-Python loop of 10M additions (best of 3): these VMs' speed drifts
    by up to 1.7x within an hour, so each report says how fast the machine was."""
    best = float("inf")
    for _ in range(3):
        start, x = time.perf_counter(), 0
        for i in range(10_000_000):
            x += i
        best = min(best, time.perf_counter() - start)
    return best


def _loadavg() -> list[str]:
    return [f"{x:.1f}" for x in os.getloadavg()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--in-process-llm", action="store_true", help="serve the fake Groq in the bot's process"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the event loop's thread during the precomputed-vectors burst; "
        "stats go to FILE.<db> and the top 30 by own time are printed",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print the event loop's busy share per 50 ms and each thread's CPU per burst",
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.n,
            args.db,
            args.write,
            args.torch_threads,
            args.in_process_llm,
            args.profile,
            args.timeline,
        )
    )
