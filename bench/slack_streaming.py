"""Slack answers streamed natively (chat.startStream/appendStream/stopStream) against edits.

    .venv/bin/python bench/slack_streaming.py [--lengths 0.3,0.8,1.5,3,8] [--words 100]
        [--llm-latency 0.3] [--rounds 3] [--stream-interval S] [--write]

Two whole bots run side by side, as in production (real bolt app over HTTP with request
signing, real core on SQLite + milvus-lite + the real embedder), each against its own fake
Slack, one with ``SLACK_NATIVE_STREAMING`` on and one with it off (the edit-based path, the
baseline). Their fake Groq waits ``--llm-latency`` seconds, then emits the answer a word at a
time at a steady rate, so that its words take ``--lengths`` seconds. Questions alternate
between the two bots, one at a time. Per answer:

- *first words*: from the first token leaving the fake Groq to the first Slack call that shows
  answer text (chat.startStream, or a chat.postMessage / chat.update that is not the
  "Searching…" placeholder);
- *calls*: every Web API call that shows the answer: chat.* (placeholder, stream or edits,
  ending) and assistant.threads.setStatus (the native path's loading status).

Two answer shapes: citation markers after every sentence (each streams once core has checked
it, as the final answer shows it) and one marker at the end. Either way a streamed native
answer normally stops with the rest of the text and the footer, with no edit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.machine import cpu
from core.retrieval.embedder import SentenceTransformerEmbedder
from tests.databases import SqliteDatabases
from tests.scenarios.suite import HANDBOOK
from tests.slack.conftest import running_bot
from tests.slack.driver import SlackDriver

QUESTION = "How are travel expenses reimbursed?"
TARGET_FIRST_WORDS = 1.0
HEADING = "## Slack native streaming (bench/slack_streaming.py)"
SENTENCE = (
    "Travel expenses are reimbursed within 14 days when the receipt is uploaded to the portal"
)
SHAPES = {"sentences": "markers after each sentence", "end": "one marker at the end"}
SHOWING = ("chat.startStream", "chat.postMessage", "chat.update")
ASKERS = 8


def answer_text(words: int, *, shape: str) -> str:
    """About ``words`` words of sentences; markers after each sentence or only at the end."""
    sentences = []
    count = 0
    while count < words:
        sentences.append(SENTENCE)
        count += len(SENTENCE.split())
    if shape == "end":
        return ". ".join(sentences) + " [1]."
    return " ".join(f"{s} [1]." for s in sentences)


class Timed:
    """The fake Groq's responder: the answer, and when each request started streaming."""

    def __init__(self) -> None:
        self.text = ""
        self.started: list[float] = []

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        self.started.append(time.monotonic())
        return self.text


def answer_call(method: str) -> bool:
    return method.startswith("chat.") or method == "assistant.threads.setStatus"


async def one_answer(bot: SlackDriver, llm: Timed, text: str, delay: float) -> dict[str, float]:
    llm.text = text
    bot.groq.chunk_delay = delay
    before = len(bot.slack.calls)
    # askers take turns: one person may ask 30 questions in 5 minutes
    thread = await bot.mention(QUESTION, user=f"U{len(llm.started) % ASKERS}")
    await bot.bot.idle()
    calls = [c for c in bot.slack.calls[before:] if answer_call(c.method)]
    first_token = llm.started[-1] + delay  # the fake sleeps before each word
    shown = next(
        (
            c.at
            for c in calls
            if c.method in SHOWING and not str(c.params.get("text", "")).startswith("_Searching")
        ),
        float("nan"),
    )
    messages = bot.slack.thread(thread.channel, thread.thread)
    assert len(messages) == 1 and "14 days" in str(messages[0]), messages
    return {"first_words": shown - first_token, "calls": float(len(calls))}


async def main(
    lengths: list[float],
    words: int,
    llm_latency: float,
    rounds: int,
    stream_interval: float | None,
) -> list[dict[str, Any]]:
    native_tuning = {"stream_interval": stream_interval} if stream_interval else None
    embedder = SentenceTransformerEmbedder()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dbs = SqliteDatabases(folder / "template")
        await asyncio.to_thread(dbs.setup)
        async with (
            running_bot(
                dbs.create(folder / "native.db"),
                _folder(folder, "native"),
                embedder,
                responder=(native_llm := Timed()),
                latency=llm_latency,
                tuning=native_tuning,
            ) as native,
            running_bot(
                dbs.create(folder / "edits.db"),
                _folder(folder, "edits"),
                embedder,
                responder=(edits_llm := Timed()),
                latency=llm_latency,
                tuning={"native_streaming": False},
            ) as edits,
        ):
            bots = {"native": (native, native_llm), "edits": (edits, edits_llm)}
            for bot, llm in bots.values():
                await bot.upload("handbook.md", HANDBOOK)  # also warms the embedder
                await one_answer(bot, llm, answer_text(10, shape="end"), 0.0)
            for shape in SHAPES:
                text = answer_text(words, shape=shape)
                count = len(text.split())
                for seconds in lengths:
                    runs: dict[str, list[dict[str, float]]] = {"native": [], "edits": []}
                    for _ in range(rounds):
                        for mode, (bot, llm) in bots.items():
                            runs[mode].append(await one_answer(bot, llm, text, seconds / count))
                    row: dict[str, Any] = {"shape": shape, "seconds": seconds, "words": count}
                    for mode, got in runs.items():
                        row[f"{mode}_first"] = statistics.median(r["first_words"] for r in got)
                        row[f"{mode}_first_max"] = max(r["first_words"] for r in got)
                        row[f"{mode}_calls"] = statistics.median(r["calls"] for r in got)
                        row[f"{mode}_calls_max"] = max(r["calls"] for r in got)
                    results.append(row)
                    print(row, flush=True)
    return results


def _folder(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def table(rows: list[dict[str, Any]], *, llm_latency: float, rounds: int) -> str:
    model, flags = cpu()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    counts = sorted({r["words"] for r in rows})
    words = f"{counts[0]}-{counts[-1]}" if len(counts) > 1 else str(counts[0])
    lines = [
        f"Fake LLM: {llm_latency:.1f} s to the first word, then {words} words at a "
        f"steady rate over the stream length; medians of {rounds} answers per cell, the two "
        f"paths alternating. Machine: {model}, {os.cpu_count()} CPUs, flags {flags}; load "
        f"average at the end {load}. Date: {datetime.now(UTC):%Y-%m-%d}.",
        "",
        "| answer | stream length | first words: native / edits (max) | ratio "
        "| calls per answer: native / edits (max) | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {SHAPES[r['shape']]} | {r['seconds']:.1f} s ({r['words'] / r['seconds']:.0f}"
            f" words/s) | {r['native_first']:.2f} s ({r['native_first_max']:.2f}) /"
            f" {r['edits_first']:.2f} s ({r['edits_first_max']:.2f})"
            f" | {r['native_first'] / r['edits_first']:.2f}x"
            f" | {r['native_calls']:.0f} ({r['native_calls_max']:.0f}) /"
            f" {r['edits_calls']:.0f} ({r['edits_calls_max']:.0f})"
            f" | {r['native_calls'] / r['edits_calls']:.2f}x |"
        )
    first_ok = all(r["native_first_max"] <= TARGET_FIRST_WORDS for r in rows)
    calls_ok = [r for r in rows if r["native_calls"] <= r["edits_calls"]]
    lines += [
        "",
        f"Target: first words within {TARGET_FIRST_WORDS:.0f} s of the first token "
        f"({'met' if first_ok else 'not met'}), and no more API calls per answer than the "
        f"edit-based path (met in {len(calls_ok)} of {len(rows)} cells).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lengths", default="0.3,0.8,1.5,3,8", help="seconds of streamed words, comma-separated"
    )
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--llm-latency", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-interval", type=float, help="SlackConfig.stream_interval")
    parser.add_argument("--write", action="store_true", help="replace this page's section")
    args = parser.parse_args()
    lengths = [float(s) for s in args.lengths.split(",")]
    rows = asyncio.run(
        main(lengths, args.words, args.llm_latency, args.rounds, args.stream_interval)
    )
    text = table(rows, llm_latency=args.llm_latency, rounds=args.rounds)
    print(text)
    if args.write:
        command = "`.venv/bin/python bench/slack_streaming.py " + " ".join(sys.argv[1:]) + "`"
        page = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        body = page.read_text(encoding="utf-8")
        section = f"{HEADING}\n\nCommand: {command}.\n\n{text}\n"
        if HEADING in body:
            start = body.index(HEADING)
            end = body.find("\n## ", start + len(HEADING))
            body = body[:start] + section + (body[end:] if end >= 0 else "")
        else:
            body = body.rstrip("\n") + "\n\n" + section
        page.write_text(body, encoding="utf-8")
