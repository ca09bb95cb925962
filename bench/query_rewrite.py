"""Query rewriting on the Groq path, on the team handbooks (bench/teamset/): how many questions
the evidence gate refuses in their own words (the candidates a rewrite could rescue), what an
oracle rewrite makes of them, and what a rewrite costs.

    .venv/bin/python bench/query_rewrite.py [--repeat 3] [--write]

Each handbook is uploaded twice through the real UploadService/IngestionService
(``bot_with_articles``: temp SQLite, milvus-lite, the product's embedder): into a bot without
a Groq key, and into a bot whose real groq SDK talks to the fake Groq server
(tests/fakes/groq_server.py, no model latency). Every question of bench/teamset/questions.jsonl
and every rewording of bench/teamset/rewordings.jsonl (answers: those of the question it
rewords) is asked through ``AnswerService.answer`` in a fresh thread of each bot.

There is no real LLM here, so the quality of real rewrites is not measured. The fake replies
to the rewrite request with an ORACLE rewrite: for a rewording, the question it rewords; for a
question of questions.jsonl, a rewrite written here by hand knowing the handbook (``ORACLE``).
They use the handbook's words and are an upper bound on what a model's rewrite could rescue,
not an estimate of it. Questions without an oracle rewrite come back unchanged (no second
search). A rescue is an answerable question the gate refuses without the rewrite and accepts
after it, with a gold answer in the sources sent to the model; an unanswerable question the
gate accepts after the rewrite is a false accept (it costs an answer call, and the model must
say the sources don't say).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from answer_quality import TEAMSET, Doc
from common import Question, bot_with_articles, default_context, real_embedder
from common import write_subsection as write_doc
from machine import cpu
from sqlalchemy import select

from core.db.models import TokenUsage
from core.enums import UsageOperation
from core.generation.gate import DEFAULT_THRESHOLD, should_answer
from core.search import weigh
from tests.fakes.groq_server import FakeGroq, quoting_responder

HEADING = "Query rewriting (Groq path; team handbooks, oracle rewrites)"
REWRITE_INSTRUCTION = "search query for the team's handbook"

# Written knowing the handbooks, in their words and without the answer: an upper bound.
ORACLE = {
    "When does my expense money hit my bank account?": "When are approved expense claims paid?",
    "What happens if I don't answer a page?": "What happens if nobody acknowledges a page?",
    "Who runs the show during an outage?": "Who coordinates the response during an incident?",
    "When is an outage considered over?": "When does the incident commander close an incident?",
    "Which airline do we have a corporate discount with?": (
        "Which airline gives us a corporate discount or negotiated fare?"
    ),
    "Do we get a phone allowance?": "Is there a mobile phone allowance or stipend?",
    "How big is the Notion storage quota?": "What is the Notion storage limit?",
    "What is the uptime target for the API?": "What is the API availability SLO?",
}


@dataclass(frozen=True)
class Asked:
    question: Question
    kind: str  # literal, paraphrased, unanswerable, reworded
    oracle: str | None


@dataclass(frozen=True)
class Result:
    asked: Asked
    refused_alone: bool  # the gate refuses without a rewrite (no LLM)
    rewrites: int  # rewrite requests the question made
    answered: bool  # answered on the Groq path (after a rewrite or without one)
    gold_sent: bool  # a gold answer in the sources of the answer request
    seconds_alone: float  # median time to answer without an LLM
    seconds: float  # median time on the Groq path
    chat_ms: int  # the answer call's latency (0 when none)
    rewrite_tokens: tuple[int, int]  # prompt, completion
    words_accepts: bool  # the alternative: the rewrite's search weighed on its own words


def load() -> dict[str, tuple[list[Doc], list[Asked]]]:
    rows = [json.loads(line) for line in (TEAMSET / "questions.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in rows}
    words = [json.loads(line) for line in (TEAMSET / "rewordings.jsonl").read_text().splitlines()]
    out: dict[str, tuple[list[Doc], list[Asked]]] = {}
    for name in sorted({r["set"] for r in rows}):
        docs = [Doc(p.name, p.read_text()) for p in sorted((TEAMSET / name).glob("*.md"))]
        asked = [
            Asked(_question(r["id"], r["question"], r), r["kind"], ORACLE.get(r["question"]))
            for r in rows
            if r["set"] == name
        ]
        for i, w in enumerate(words):
            of = by_id[w["of"]]
            if "question" in w and of["set"] == name:
                qid = f"{of['id']}~{i}"
                asked.append(Asked(_question(qid, w["question"], of), "reworded", of["question"]))
        out[name] = (docs, asked)
    return out


def _question(qid: str, text: str, row: dict[str, Any]) -> Question:
    answers = tuple(a.lower() for a in row["answers"])
    return Question(qid, text, answers, not answers, row["set"])


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


class Model:
    """The fake's responder: the oracle rewrite (else the question back) when asked for a
    query, the first sentence of source [1] when asked to answer."""

    def __init__(self, oracle: dict[str, str]) -> None:
        self.oracle = oracle

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        if REWRITE_INSTRUCTION not in str(messages[0].get("content", "")):
            return quoting_responder(messages)
        match = re.search(r"^Question: (.*)$", str(messages[-1].get("content", "")), re.M)
        asked = match.group(1) if match else ""
        return self.oracle.get(asked, asked)


async def _usage(bot, message_id) -> list[TokenUsage]:
    async with bot.container.database.session() as db:
        stmt = select(TokenUsage).where(TokenUsage.message_id == message_id)
        return list((await db.execute(stmt)).scalars())


async def _words_accept(bot, rewrite: str) -> bool:
    """The design not taken: would the gate accept the rewrite's search weighed on the
    rewrite's own words (not the question's)?"""
    c = bot.container
    ctx = await default_context(bot)
    retrieval = await c.retriever.search(
        rewrite,
        workspace_id=ctx.workspace_ids,
        namespace_ids=[n.id for n in ctx.namespaces],
        limit=c.settings.retrieval_top_k,
    )
    _, _, signals = await weigh(c.retriever, rewrite, retrieval)
    threshold = c.settings.answer_threshold
    return should_answer(signals, DEFAULT_THRESHOLD if threshold is None else threshold)


async def _timed(bot, text: str, thread: str):
    t0 = time.perf_counter()
    answer = await bot.say(text, thread=thread)
    return answer, time.perf_counter() - t0


async def run_set(
    name: str, docs: Sequence[Doc], asked: Sequence[Asked], embedder: object, repeat: int
) -> list[Result]:
    oracle = {a.question.text: a.oracle for a in asked if a.oracle}
    alone: dict[str, tuple[bool, float, bool]] = {}
    async with bot_with_articles("sqlite", embedder=embedder, articles=docs) as bot:
        for i, a in enumerate(asked):
            runs = [await _timed(bot, a.question.text, f"alone-{i}-{r}") for r in range(repeat)]
            refused = runs[0][0].abstained
            words = refused and a.oracle is not None and await _words_accept(bot, a.oracle)
            alone[a.question.qid] = (refused, statistics.median(s for _, s in runs), words)
    results = []
    async with (
        FakeGroq(responder=Model(oracle)) as fake,
        bot_with_articles(
            "sqlite", embedder=embedder, articles=docs, groq_base_url=fake.base_url
        ) as bot,
    ):
        for i, a in enumerate(asked):
            times = []
            for r in range(repeat):
                before = len(fake.requests)
                answer, seconds = await _timed(bot, a.question.text, f"groq-{i}-{r}")
                times.append(seconds)
                made = fake.requests[before:]
            rows = await _usage(bot, answer.message_id)
            rewrite = [u for u in rows if u.operation == UsageOperation.REWRITE]
            chat = [u for u in rows if u.operation == UsageOperation.CHAT]
            prompt = [
                str(m["messages"][-1]["content"])
                for m in made
                if REWRITE_INSTRUCTION not in str(m["messages"][0]["content"])
            ]
            refused, seconds_alone, words = alone[a.question.qid]
            results.append(
                Result(
                    a,
                    refused,
                    len(made) - len(prompt),
                    not answer.abstained,
                    any(_fold(g) in _fold(p) for g in a.question.answers for p in prompt),
                    seconds_alone,
                    statistics.median(times),
                    chat[0].latency_ms or 0 if chat else 0,
                    (rewrite[0].prompt_tokens, rewrite[0].completion_tokens) if rewrite else (0, 0),
                    words,
                )
            )
    return results


def _share(n: int, d: int) -> str:
    return f"{n}/{d} = {n / d:.0%}" if d else "-"


def render(results: Sequence[Result], seconds: float, repeat: int) -> str:
    model, flags = cpu()
    answerable = [r for r in results if not r.asked.question.impossible]
    unanswerable = [r for r in results if r.asked.question.impossible]
    lines = [
        "Command: `.venv/bin/python bench/query_rewrite.py --write`. "
        f"Machine: {model} ({flags}). Date: {time.strftime('%Y-%m-%d')}. "
        f"Run time {seconds:.0f} s. Every question of `bench/teamset/` and every rewording of "
        "it, asked through `AnswerService.answer` on a bot without a Groq key and on one "
        "talking to the fake Groq (no model latency) through the real groq SDK, threshold "
        f"0.18, top_k 5, median of {repeat} asks. No real LLM: the rewrites are oracle "
        "rewrites in the handbooks' words (for a rewording, the question it rewords; else "
        "written by hand, `ORACLE` in the script), an upper bound on what a model's rewrite "
        "could rescue, not a measure of one.",
        "",
        "| questions | asked | refused by the gate alone | rewritten | answered after the "
        "oracle rewrite (gold in the sources sent) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, kinds in (
        ("paraphrased", ("paraphrased",)),
        ("literal", ("literal",)),
        ("rewordings, answerable", ("reworded",)),
    ):
        group = [r for r in answerable if r.asked.kind in kinds]
        lines.append(_row(label, group, gold=True))
    lines.append(_row("unanswerable (all kinds)", unanswerable, gold=False))
    rewritten = [r for r in results if r.rewrites]
    still = [r for r in rewritten if not r.answered]
    extra = [r.seconds - r.seconds_alone for r in still]
    tokens_in = [r.rewrite_tokens[0] for r in rewritten]
    tokens_out = [r.rewrite_tokens[1] for r in rewritten]
    accepted = [r for r in results if not r.refused_alone]
    refused_ok = [r for r in answerable if r.refused_alone and r.asked.oracle]
    refused_no = [r for r in unanswerable if r.refused_alone and r.asked.oracle]
    missed = [
        r
        for r in answerable
        if r.refused_alone and r.asked.oracle and not (r.answered and r.gold_sent)
    ]
    lines += [
        "",
        f"- A question the gate accepts makes no rewrite call: {sum(r.rewrites for r in accepted)} "
        f"rewrite requests for the {len(accepted)} it accepted alone; each refused question "
        f"made one ({_share(len(rewritten), sum(r.refused_alone for r in results))}).",
        f"- Cost of a rewrite: prompt tokens median {_median(tokens_in)}, completion tokens "
        f"median {_median(tokens_out)} (the fake's count, about 4 characters a token), under "
        "the `rewrite` operation; plus a second query embedding on the question's embedding "
        "row.",
        f"- Extra latency of a rewritten question that the gate still refuses (the LLM call at "
        f"zero model latency, a second search and weighing): median {_median(extra, 1000)} ms, "
        f"max {max(extra, default=0) * 1000:.0f} ms over {len(extra)}, against "
        f"{_median([r.seconds_alone for r in still], 1000)} ms for the abstention without an "
        "LLM. A real Groq adds its own time for a one-line completion on top.",
        "- The rewrite's search is weighed on the original question, so its own negation and "
        "expected answer type still count; answerable questions the oracle rewrite did not "
        "rescue: "
        + (", ".join(f'"{r.asked.question.text}"' for r in missed) or "none")
        + ". Weighed on the rewrite's own words instead, the gate would accept "
        f"{_share(sum(r.words_accepts for r in refused_ok), len(refused_ok))} of the refused "
        "answerable questions and "
        f"{_share(sum(r.words_accepts for r in refused_no), len(refused_no))} of the refused "
        "unanswerable ones.",
    ]
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str) -> str:
    """Prose wrapped at 96 characters as the rest of docs/benchmarks.md; tables as they are."""
    if line.startswith("|") or not line:
        return line
    indent = "  " if line.startswith("- ") else ""
    return textwrap.fill(line, 96, subsequent_indent=indent, break_on_hyphens=False)


def _row(label: str, group: Sequence[Result], *, gold: bool) -> str:
    refused = [r for r in group if r.refused_alone]
    rewritten = [r for r in refused if r.rewrites]
    rescued = [r for r in rewritten if r.answered and (r.gold_sent or not gold)]
    return (
        f"| {label} | {len(group)} | {_share(len(refused), len(group))} | {len(rewritten)} | "
        f"{_share(len(rescued), len(refused))}{'' if gold else ' (false accepts)'} |"
    )


def _median(values: Sequence[float], scale: float = 1.0) -> str:
    return f"{statistics.median(values) * scale:.0f}" if values else "-"


async def main(repeat: int, write: bool) -> None:
    embedder = real_embedder()
    t0 = time.perf_counter()
    results: list[Result] = []
    for name, (docs, asked) in load().items():
        results += await run_set(name, docs, asked, embedder, repeat)
    report = render(results, time.perf_counter() - t0, repeat)
    for r in results:
        if r.refused_alone:
            print(
                f"refused: {r.asked.kind:12} {r.asked.question.text!r} -> {r.asked.oracle!r}: "
                f"{'answered' if r.answered else 'abstained'}"
                f"{' (gold sent)' if r.gold_sent else ''}"
            )
    print(report)
    if write:
        write_doc(HEADING, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the docs subsection")
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.write))
