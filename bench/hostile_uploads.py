"""Hostile uploads against the running service: every file finishes in time, memory stays
bounded, and questions asked meanwhile keep their idle speed.

    .venv/bin/python bench/hostile_uploads.py [--questions 200] [--where elsewhere|here] [--write]

The real container (SQLite, milvus-lite, the real embedder, the parser worker pool with its
default limits) with the two SQuAD 2.0 articles of bench/common.py uploaded first. Files go in
through core's UploadService and questions through AnswerService (extractive: no LLM), both as
the test harness sends them. The hostile set, generated here, all uploaded at once:

- paragraphs.docx: ~230 KB, 2.2 million one-character paragraphs
- bold.html: 19 MB of ``<b>x</b>``
- nested.html: 10 MB of nested ``<div>``
- array.json: a 20 MB JSON array of small objects
- six 0.75 MB HTML pages of dense markup round real words (many elements to read and
  hundreds of chunks each to embed)

Where the files go (``--where``): "elsewhere" (the default) drops them in another channel, as
a member stalling everyone else's questions would; "here" drops them in the channel the
questions are asked in, so those questions search the six pages' 2,000 chunks too once they
are indexed (a bigger corpus, which is slower to search whatever the load: compare the
"after" row).

Baseline, same run: question latency with nothing uploading, the questions before the hostile
set. The same number is asked after it and reported beside, not as the baseline: for a while
after a bulk of new rows milvus-lite is still busy with them, which slows some searches
(measured with the code before sentence vectors too). In between, questions one after another
while the hostile set is read and embedded. Targets: each file finishes
(indexed or refused with a reason) within 60 s of its upload; peak RSS of the bot plus its
parser workers (sampled every 20 ms through all phases) under 1.5 GiB; question p99 during the
uploads within 2x the idle p99. milvus-lite's server process is reported beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from common import BENCH_DOC, bot_with_articles, lift_quotas, load_articles, pct, real_embedder
from machine import cpu

from tests.fixtures_files import make_paragraph_docx
from tests.harness import BotHarness

SECTION = "## Hostile uploads (bench/hostile_uploads.py)"
FILE_TARGET_S = 60.0
RSS_TARGET_MIB = 1536.0
LATENCY_TARGET = 2.0
PAUSE_S = 0.1  # between two questions, idle and busy alike
OTHER_CHANNEL = "C-ELSEWHERE"  # where ``--where elsewhere`` drops the hostile set


def hostile_set(words: list[str]) -> dict[str, bytes]:
    files = {
        "paragraphs.docx": make_paragraph_docx(2_200_000),
        "bold.html": b"<b>x</b>" * (19_000_000 // 8),
        "nested.html": b"<div>" * (10_000_000 // 5),
        "array.json": _json_array(20_000_000),
    }
    for n in range(6):
        files[f"dense-{n}.html"] = _dense_page(words, seed=n, size=750_000)
    return files


def _json_array(size: int) -> bytes:
    item = b'{"id":0,"v":"x"}'
    return b"[" + b",".join([item] * (size // (len(item) + 1))) + b"]"


def _dense_page(words: list[str], *, seed: int, size: int) -> bytes:
    pick = random.Random(seed).choice
    parts, length = [], 0
    while length < size:
        part = f"<p><b>{pick(words)}</b> <i>{pick(words)}</i> <span>{pick(words)}</span></p>"
        parts.append(part)
        length += len(part)
    return "".join(parts).encode()


@dataclass
class Upload:
    name: str
    size: int
    seconds: float = 0.0
    ok: bool = False
    message: str = ""


async def ask(
    bot: BotHarness, questions: list[str], stop: asyncio.Event | None, n: int
) -> list[float]:
    """Ask one question after another (``n`` at least, and until ``stop`` is set)."""
    out: list[float] = []
    i = 0
    while len(out) < n or (stop is not None and not stop.is_set()):
        started = time.perf_counter()
        await bot.say(questions[i % len(questions)], thread=f"q-{i}")
        out.append(time.perf_counter() - started)
        i += 1
        await asyncio.sleep(PAUSE_S)
    return out


async def upload(bot: BotHarness, name: str, data: bytes, channel: str | None) -> Upload:
    started = time.perf_counter()
    outcome = await bot.upload(name, data, thread=f"up-{name}", channel=channel)
    return Upload(name, len(data), time.perf_counter() - started, outcome.ok, outcome.message)


def rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


@dataclass
class Peaks:
    bot: float = 0.0
    total: float = 0.0
    worker: float = 0.0
    workers_seen: int = 0
    milvus: float = 0.0


def milvus_pid() -> int | None:
    """The milvus-lite server this process started (a child running its ``milvus`` binary)."""
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"milvus_lite" in command:
            return int(entry.name)
    return None


async def sample(bot: BotHarness, stop: asyncio.Event, peaks: Peaks) -> None:
    seen: set[int] = set()
    milvus = milvus_pid()
    while not stop.is_set():
        own = rss_mib(os.getpid())
        workers = [rss_mib(p) for p in bot.container.parsers.pids]
        seen.update(bot.container.parsers.pids)
        peaks.bot = max(peaks.bot, own)
        peaks.worker = max([peaks.worker, *workers])
        peaks.total = max(peaks.total, own + sum(workers))
        peaks.workers_seen = len(seen)
        peaks.milvus = max(peaks.milvus, rss_mib(milvus) if milvus else 0.0)
        await asyncio.sleep(0.02)


async def run(n: int, where: str) -> tuple[list[float], list[float], list[Upload], Peaks, float]:
    articles = load_articles()
    questions = [q.text for a in articles for q in a.questions if not q.impossible]
    words = sorted({w for a in articles for w in re.findall(r"[A-Za-z]{3,}", a.text)})
    files = hostile_set(words)
    async with bot_with_articles("sqlite", embedder=real_embedder(), articles=articles) as bot:
        await lift_quotas(bot)
        await ask(bot, questions[-20:], None, 20)  # warm up
        finished, uploaded, peaks = asyncio.Event(), asyncio.Event(), Peaks()
        sampler = asyncio.create_task(sample(bot, finished, peaks))
        idle = await ask(bot, questions, None, n // 2)
        began = time.perf_counter()
        channel = OTHER_CHANNEL if where == "elsewhere" else None  # None: the asking channel
        uploads = asyncio.gather(
            *(upload(bot, name, data, channel) for name, data in files.items())
        )
        busy_task = asyncio.create_task(ask(bot, questions, uploaded, 1))
        results = await uploads
        wall = time.perf_counter() - began
        uploaded.set()
        busy = await busy_task
        idle += await ask(bot, questions, None, n - n // 2)
        finished.set()
        await sampler
    return idle, busy, list(results), peaks, wall


def report(
    where: str,
    idle: list[float],
    busy: list[float],
    uploads: list[Upload],
    peaks: Peaks,
    wall: float,
) -> str:
    model, flags = cpu()
    # the baseline is the questions before the uploads: after them, milvus-lite is still
    # digesting the new rows for a while (old code and new alike), which is no idle machine
    before, after = idle[: len(idle) // 2], idle[len(idle) // 2 :]
    idle99, busy99 = pct(before, 99), pct(busy, 99)
    ratio = busy99 / idle99
    slowest = max(u.seconds for u in uploads)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Command: `.venv/bin/python bench/hostile_uploads.py --questions {len(idle)}"
        f" --where {where} --write`."
        f" Machine: {model}, {os.cpu_count()} CPUs, flags {flags}"
        f" (embedder {_backend()}); load average at the end {load}."
        f" Date: {dt.date.today().isoformat()}. Defaults: EXTRACT_WORKERS=2, EXTRACT_TIMEOUT=60,"
        " EXTRACT_MEMORY_MB=1024, caps 100,000 paragraphs, 1,000,000 elements, 1,000,000 JSON"
        " values, 2,000 pages. All ten files are uploaded at once; questions are asked one after"
        f" another ({PAUSE_S:.1f} s apart) before, during and after the uploads (before: the idle"
        " baseline). The files are dropped "
        + (
            "in another channel than the questions'."
            if where == "elsewhere"
            else "in the channel the questions are asked in (which then search them too)."
        ),
        "",
        "| file | size | finished after (s) | outcome |",
        "| --- | ---: | ---: | --- |",
    ]
    for u in uploads:
        size = f"{u.size / 1e6:.2f} MB" if u.size >= 1e6 else f"{u.size / 1e3:.0f} KB"
        lines.append(f"| {u.name} | {size} | {u.seconds:.1f} | {u.message} |")
    lines += [
        "",
        "| measure | value | target | met |",
        "| --- | ---: | ---: | --- |",
        f"| slowest file | {slowest:.1f} s | <= {FILE_TARGET_S:.0f} s"
        f" | {_met(slowest <= FILE_TARGET_S)} |",
        f"| all ten files, wall | {wall:.1f} s | | |",
        f"| peak RSS, bot + parser workers (sampled) | {peaks.total:.0f} MiB"
        f" | < {RSS_TARGET_MIB:.0f} MiB | {_met(peaks.total < RSS_TARGET_MIB)} |",
        f"| peak RSS, bot alone / largest worker | {peaks.bot:.0f} / {peaks.worker:.0f} MiB | | |",
        f"| parser worker processes started | {peaks.workers_seen} | | |",
        f"| peak RSS, milvus-lite server (its own process) | {peaks.milvus:.0f} MiB | | |",
        f"| question latency idle (baseline, before the uploads), p50 / p99, n={len(before)}"
        f" | {pct(before, 50) * 1000:.0f} / {idle99 * 1000:.0f} ms | | |",
        f"| question latency after the uploads, p50 / p99, n={len(after)}"
        f" | {pct(after, 50) * 1000:.0f} / {pct(after, 99) * 1000:.0f} ms | | |",
        f"| question latency during the uploads, p50 / p99, n={len(busy)}"
        f" | {pct(busy, 50) * 1000:.0f} / {busy99 * 1000:.0f} ms | | |",
        f"| p99 during / p99 idle | {ratio:.2f}x | <= {LATENCY_TARGET:.0f}x"
        f" | {_met(ratio <= LATENCY_TARGET)} |",
    ]
    return "\n".join(lines)


def _backend() -> str:
    """The embedding backend this run used: EMBEDDING_BACKEND, or what `auto` picks here."""
    from core.retrieval.embedder import auto_backend

    chosen = os.environ.get("EMBEDDING_BACKEND", "auto")
    return f"`auto`: {auto_backend()}" if chosen == "auto" else f"`{chosen}`"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def write(body: str, path: Path = BENCH_DOC) -> None:
    """Put this benchmark's section at the end of the doc, replacing its earlier text."""
    text = path.read_text(encoding="utf-8")
    head, found, rest = text.partition(SECTION)
    if found:
        nxt = rest.find("\n## ")
        text = head.rstrip("\n") + ("" if nxt < 0 else "\n" + rest[nxt:])
    path.write_text(f"{text.rstrip()}\n\n{SECTION}\n\n{body}\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument(
        "--where",
        choices=("elsewhere", "here"),
        default="elsewhere",
        help="drop the files in another channel (default) or in the asking one",
    )
    parser.add_argument("--write", action="store_true", help="record it in docs/benchmarks.md")
    args = parser.parse_args()
    body = report(args.where, *asyncio.run(run(args.questions, args.where)))
    print(body)
    if args.write:
        write(body)
    print(json.dumps({"written": args.write}))


if __name__ == "__main__":
    main()
