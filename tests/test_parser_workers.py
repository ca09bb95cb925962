"""The parser worker pool, for real: hostile files refused while they are read, wall-time and
memory limits that kill and replace a worker, and no worker left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import Document, Upload
from core.errors import UnsupportedFile
from core.ingestion.extract import ExtractLimits
from core.ingestion.parsing import Parsed, ParseJob
from core.ingestion.workers import WorkerPool
from tests.fixtures_files import (
    add_zip_member,
    make_docx,
    make_paragraph_docx,
    make_pdf,
    replace_zip_member,
)
from tests.harness import BotHarness

ROOT = Path(__file__).resolve().parents[1]
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def job(data: bytes, filename: str, **limits: int) -> ParseJob:
    return ParseJob(data, filename, ExtractLimits(**limits), 1000, 200)


async def refusal(pool: WorkerPool, data: bytes, filename: str, **limits: int) -> str:
    with pytest.raises(UnsupportedFile) as caught:
        await pool.parse(job(data, filename, **limits))
    assert caught.value.filename == filename
    return caught.value.why


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    """Limits a build-everything-then-count reader would break on these files: each hostile
    file below takes more than 10 s or more than 512 MiB to read whole."""
    workers = WorkerPool(workers=2, timeout=10, memory_mb=512)
    yield workers
    await workers.close()


# --- element caps, checked while reading --------------------------------------------------


def many_empty_objects() -> bytes:
    return b"[" + b",".join([b"{}"] * 6_000_000) + b"]"  # json.loads: ~450 MB of dicts


def pdf_with_lying_count(pages: int) -> bytes:
    pdf = make_pdf([[f"Page {n}."] for n in range(pages)])
    count = b"/Count %d" % pages
    return pdf.replace(count, b"/Count 1".ljust(len(count)))  # same length: offsets hold


HOSTILE: list[tuple[Callable[[], bytes], str, dict[str, int], str]] = [
    (
        lambda: make_paragraph_docx(300_000),
        "paragraphs.docx",
        {"max_paragraphs": 1000},
        "it has more than 1,000 paragraphs",
    ),
    (
        lambda: b"<b>x</b>" * 2_000_000,
        "wide.html",
        {"max_elements": 10_000},
        "it has more than 10,000 HTML elements",
    ),
    (
        lambda: b"<html><body>" + b"<div>" * 2_000_000,
        "deep.html",
        {"max_elements": 10_000},
        "it has more than 10,000 HTML elements",
    ),
    (
        many_empty_objects,
        "array.json",
        {"max_json_values": 10_000},
        "it has more than 10,000 JSON values",
    ),
    (
        lambda: pdf_with_lying_count(300),
        "pages.pdf",
        {"max_pages": 50},
        "it has more than 50 pages",
    ),
]


@pytest.mark.parametrize(("make", "filename", "caps", "why"), HOSTILE, ids=[h[1] for h in HOSTILE])
async def test_hostile_files_are_refused_while_they_are_read(
    pool: WorkerPool, make: Callable[[], bytes], filename: str, caps: dict[str, int], why: str
) -> None:
    assert await refusal(pool, make(), filename, **caps) == why


async def test_files_under_the_caps_are_read(pool: WorkerPool) -> None:
    docx = await pool.parse(
        job(make_paragraph_docx(900, letters="ab"), "ok.docx", max_paragraphs=1000)
    )
    assert docx.kind == "docx" and docx.chunks[0].text.startswith("a\n\nb\n\na")
    html = await pool.parse(job(b"<title>T</title><p>one</p>" * 100, "ok.html", max_elements=1000))
    assert (html.kind, html.title) == ("html", "T")
    values = json.dumps([{"id": i} for i in range(400)]).encode()
    assert (await pool.parse(job(values, "ok.json", max_json_values=1000))).kind == "json"
    pdf = await pool.parse(job(pdf_with_lying_count(50), "ok.pdf", max_pages=50))
    assert [c.page for c in pdf.chunks][:1] == [1]


async def test_classic_bombs_still_hold_in_the_workers(pool: WorkerPool) -> None:
    zip_bomb = add_zip_member(make_docx([("p", "hi")]), "word/media/a.png", zeros=64 * 2**20)
    assert await refusal(pool, zip_bomb, "zip.docx", max_bytes=2**20, max_chars=10**5) == (
        "it expands to more than 4 MB when unpacked"
    )
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    bomb = word_body(f"<!DOCTYPE w:document [{laughs}]>", "Safe text &l9;")
    assert (
        await refusal(pool, bomb, "laughs.docx") == "the Word document is damaged and can't be read"
    )
    xxe = word_body('<!DOCTYPE w:document [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "Hi &x;")
    read = await pool.parse(job(xxe, "xxe.docx"))
    assert [c.text for c in read.chunks] == ["Hi"]


def word_body(doctype: str, text: str) -> bytes:
    xml = (
        f'<?xml version="1.0"?>{doctype}<w:document xmlns:w="{W}"><w:body>'
        f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    return replace_zip_member(make_docx([]), "word/document.xml", xml.encode())


# --- wall time and memory: the worker is killed and replaced ------------------------------


async def test_a_worker_past_its_time_is_killed_and_replaced() -> None:
    pages = [
        [f"Line {i} of page {n} has a few words on it." for i in range(50)] for n in range(3000)
    ]
    slow = make_pdf(pages)  # seconds of text extraction, far past the limit
    workers = WorkerPool(workers=1, timeout=0.5, memory_mb=1024)
    try:
        warm = await workers.parse(job(b"warm up", "first.txt"))
        assert warm.kind == "txt"
        (before,) = workers.pids
        why = await refusal(workers, slow, "slow.pdf", max_pages=10_000)
        assert why == "reading it took longer than 0.5 s"
        assert not alive(before)
        after = await workers.parse(job(b"# Next\n\nstill read", "next.md"))
        assert (after.kind, after.title) == ("md", "Next")
        assert workers.pids and workers.pids != [before]
    finally:
        await workers.close()


async def test_a_worker_out_of_memory_fails_that_file_and_the_pool_recovers() -> None:
    workers = WorkerPool(workers=1, timeout=60, memory_mb=256)
    try:
        big = b"[" + b",".join([b'{"a":1}'] * 1_500_000) + b"]"  # ~350 MB of dicts
        why = await refusal(workers, big, "big.json", max_json_values=10**9)
        assert why == "reading it needed more than 256 MiB of memory"
        again = await workers.parse(job(b'{"still": "fine"}', "small.json"))
        assert isinstance(again, Parsed) and again.chunks[0].text == "still: fine"
    finally:
        await workers.close()


# --- no worker outlives the bot -------------------------------------------------------------


async def test_a_refusal_is_stored_and_close_leaves_no_worker(
    sqlite_databases, tmp_path: Path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "t.db")
    bot = await BotHarness.start(url, tmp_path, embedder=embedder, EXTRACT_MAX_ELEMENTS=1000)
    try:
        outcome = await bot.upload("soup.html", b"<b>x</b>" * 5000)
        assert not outcome.ok
        assert outcome.message == "I can't index soup.html: it has more than 1,000 HTML elements."
        async with bot.container.database.session() as db:
            document = (await db.execute(select(Document))).scalar_one()
            upload = (await db.execute(select(Upload))).scalar_one()
        assert (document.status, document.error) == (
            "failed",
            "it has more than 1,000 HTML elements",
        )
        assert upload.status == "failed" and "1,000 HTML elements" in (upload.error or "")
        assert (await bot.upload("fine.md", b"# Fine\n\nA file after the refusal.")).ok
        pids = bot.container.parsers.pids
        assert pids and all(alive(p) for p in pids)
    finally:
        await bot.close()
    assert not any(alive(p) for p in pids)


SCRIPT = """
import asyncio, sys
from core.ingestion.extract import ExtractLimits
from core.ingestion.parsing import ParseJob
from core.ingestion.workers import WorkerPool

async def main():
    pool = WorkerPool(workers=2)
    jobs = [ParseJob(b"text %d" % i, "a.txt", ExtractLimits(), 1000, 200) for i in range(2)]
    await asyncio.gather(*(pool.parse(j) for j in jobs))
    print(*pool.pids, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_a_bot_that_is_killed(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bot = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, env=env)
    try:
        assert bot.stdout is not None
        pids = [int(p) for p in bot.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        bot.send_signal(sig)
        bot.wait(30)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
    finally:
        bot.kill()
        bot.wait()


async def test_workers_are_fresh_capped_low_priority_processes(pool: WorkerPool) -> None:
    """Not a fork of this torch-loaded process; niced, memory-capped, first for the OOM killer."""
    import torch  # noqa: F401 - loaded here, the parent, as in the bot

    await pool.parse(job(b"<p>hello</p>", "a.html"))
    (pid,) = pool.pids
    libraries = Path(f"/proc/{pid}/maps").read_text()
    assert "lxml" in libraries
    assert "torch" not in libraries and "onnxruntime" not in libraries
    # os.nice adds to the parent's niceness (capped at 19): a test run under `nice` still counts
    niceness = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])
    assert niceness == min(os.nice(0) + 10, 19)
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert f"Max address space         {512 * 2**20}" in limits
    assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "1000"
