"""Answer quality of the offline (extractive) answerer and its abstention gate, on the SQuAD 2.0
subset and on small team handbooks (bench/teamset/).

    .venv/bin/python bench/answer_quality.py [--verify 40] [--dump FILE] [--write]

Each corpus is uploaded through the real UploadService/IngestionService (BotHarness: temp
SQLite, milvus-lite, all-MiniLM-L6-v2): the two SQuAD articles as .txt files into one bot,
each team handbook (four or five Markdown files) into a bot of its own. Each question is then
answered by the steps AnswerService takes in a fresh thread with no Groq key:
``Retriever.search`` -> ``core.answer.weigh`` (sources, the extractive answer, the evidence) ->
``parse_and_validate``; the abstention rules are replayed offline for every threshold. A sample
is also asked through ``AnswerService.answer`` and must give the identical text, citations and
abstention.

Correct and cited: the answer contains a gold answer (case-insensitive, whitespace folded) and
cites a chunk that contains it. The gate's coefficients are fitted by bench/fit_gate.py from
``--dump`` on the calibration split (the "hr" handbook and the even half of SQuAD by question
id); the tables report the calibration and the held-out parts apart.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from common import Question, bot_with_articles, default_context, load_articles, real_embedder
from common import write_subsection as write_doc
from machine import cpu

from core.answer import abstain_text
from core.generation.citations import parse_and_validate, quote_sentences
from core.generation.gate import DEFAULT_THRESHOLD, Evidence, answer_probability
from core.search import weigh

TEAMSET = Path(__file__).resolve().parent / "teamset"
CALIBRATION_SETS = ("hr",)
HEADING = "Answer quality (extractive; SQuAD 2.0 subset and team handbooks)"


@dataclass(frozen=True)
class Doc:
    """One upload: ``bot_with_articles`` reads ``filename`` and ``text``."""

    filename: str
    text: str


@dataclass(frozen=True)
class Outcome:
    question: Question
    kind: str  # squad, literal, paraphrased, unanswerable
    signals: Evidence | None  # None: nothing retrieved
    text: str  # the extractive answer after citation validation
    correct: bool  # correct and cited, if answered
    retrieval_hit: bool
    missing: tuple[str, ...] = ()  # names of the question no source mentions

    @property
    def similarity(self) -> float:
        return self.signals.similarity if self.signals else 0.0

    @property
    def extractive(self) -> float:
        return self.signals.extractive if self.signals else 0.0


Rule = Callable[[Outcome], bool]  # answers?


def old_rule(o: Outcome) -> bool:
    """The rule the gate replaces: best cosine >= 0.25 and extractive support >= 0.40."""
    return bool(o.text) and o.similarity >= 0.25 and o.extractive >= 0.40


def gate_rule(threshold: float) -> Rule:
    return lambda o: bool(o.text) and answer_probability(o.signals) >= threshold  # type: ignore[arg-type]


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def _correct(gold: Sequence[str], text: str, cited: Sequence[str]) -> bool:
    lowered = _fold(text)
    return any(g in lowered and any(g in _fold(c) for c in cited) for g in map(_fold, gold))


def calibration(o: Outcome) -> bool:
    if o.kind == "squad":
        return int(hashlib.md5(o.question.qid.encode()).hexdigest(), 16) % 2 == 0
    return o.question.article in CALIBRATION_SETS


def load_teamset() -> dict[str, tuple[list[Doc], list[tuple[Question, str]]]]:
    """Per handbook: its Markdown files and its questions with their kind."""
    out: dict[str, tuple[list[Doc], list[tuple[Question, str]]]] = {}
    rows = [json.loads(line) for line in (TEAMSET / "questions.jsonl").read_text().splitlines()]
    for name in sorted({r["set"] for r in rows}):
        docs = [Doc(p.name, p.read_text()) for p in sorted((TEAMSET / name).glob("*.md"))]
        qs = [
            (
                Question(
                    r["id"],
                    r["question"],
                    tuple(a.lower() for a in r["answers"]),
                    not r["answers"],
                    name,
                ),
                r["kind"],
            )
            for r in rows
            if r["set"] == name
        ]
        out[name] = (docs, qs)
    return out


async def answer_all(bot, questions: Sequence[tuple[Question, str]]) -> list[Outcome]:
    """AnswerService's no-LLM path for a new thread, without the database writes."""
    c = bot.container
    ctx = await default_context(bot)
    ns_ids = [n.id for n in ctx.namespaces]
    out = []
    for q, kind in questions:
        retrieval = await c.retriever.search(
            q.text,
            workspace_id=ctx.workspace_ids,
            namespace_ids=ns_ids,
            limit=c.settings.retrieval_top_k,
        )
        sources, result, signals = await weigh(c.retriever, q.text, retrieval)
        text, closing = parse_and_validate(result.text, sources) if result.text else ("", [])
        citations = quote_sentences(closing, result.best_sentences, q.text)
        by_id = {s.chunk_id: s.text for s in sources}
        cited = [by_id[str(cit.chunk_id)] for cit in citations]
        contents = [_fold(s.text) for s in sources]
        out.append(
            Outcome(
                q,
                kind,
                signals,
                text,
                _correct(q.answers, text, cited) if text else False,
                any(_fold(g) in t for g in q.answers for t in contents),
                result.support.unknown_names if result.support else (),
            )
        )
    return out


@dataclass(frozen=True)
class Point:
    correct: float  # answerable questions answered correctly and cited
    wrong_abstain: float  # answerable questions abstained on
    abstain_unanswerable: float
    median_chars: float  # of the answers given


def evaluate(outcomes: Sequence[Outcome], rule: Rule) -> Point:
    pos = [o for o in outcomes if not o.question.impossible]
    neg = [o for o in outcomes if o.question.impossible]
    lengths = [len(o.text) for o in outcomes if rule(o)]
    return Point(
        sum(rule(o) and o.correct for o in pos) / max(len(pos), 1),
        sum(not rule(o) for o in pos) / max(len(pos), 1),
        sum(not rule(o) for o in neg) / max(len(neg), 1),
        statistics.median(lengths) if lengths else 0.0,
    )


def row(name: str, p: Point) -> str:
    return (
        f"| {name} | {p.correct:.1%} | {p.wrong_abstain:.1%} | {p.abstain_unanswerable:.1%} "
        f"| {p.median_chars:.0f} |"
    )


HEAD = (
    "| rule | correct and cited | wrong abstentions | abstains (unanswerable) | median chars |\n"
    "|---|---:|---:|---:|---:|"
)


def groups(outcomes: Sequence[Outcome]) -> dict[str, list[Outcome]]:
    squad = [o for o in outcomes if o.kind == "squad"]
    team = [o for o in outcomes if o.kind != "squad"]
    return {
        "SQuAD, all": squad,
        "SQuAD, held-out half": [o for o in squad if not calibration(o)],
        "team handbooks, all": team,
        "team handbooks, held-out (oncall, it)": [o for o in team if not calibration(o)],
        "team handbooks, paraphrased only": [o for o in team if o.kind == "paraphrased"],
    }


def tables(outcomes: Sequence[Outcome]) -> list[str]:
    parts = []
    for name, outs in groups(outcomes).items():
        pos = [o for o in outs if not o.question.impossible]
        hit = sum(o.retrieval_hit for o in pos) / max(len(pos), 1)
        parts += [
            f"**{name}** ({len(pos)} answerable, {len(outs) - len(pos)} unanswerable; "
            f"retrieval hit@5 {hit:.1%}):",
            "",
            HEAD,
            row("gate (default)", evaluate(outs, gate_rule(DEFAULT_THRESHOLD))),
            row("cosine >= 0.25 and extractive >= 0.40", evaluate(outs, old_rule)),
            row("never abstain", evaluate(outs, lambda o: bool(o.text))),
            "",
        ]
    return parts


def sweep(outcomes: Sequence[Outcome]) -> list[str]:
    squad = [o for o in outcomes if o.kind == "squad"]
    team = [o for o in outcomes if o.kind != "squad"]
    lines = [
        "The gate as its threshold moves (SQuAD all | team handbooks all; correct / wrong "
        "abstentions / abstains on unanswerable):",
        "",
        "| threshold | SQuAD | team handbooks |",
        "|---:|---|---|",
    ]
    for t in sorted({0.0, 0.1, 0.2, 0.3, 0.4, DEFAULT_THRESHOLD, 0.5, 0.6, 0.7, 0.8}):
        cells = []
        for outs in (squad, team):
            p = evaluate(outs, gate_rule(t))
            cells.append(f"{p.correct:.1%} / {p.wrong_abstain:.1%} / {p.abstain_unanswerable:.1%}")
        lines.append(f"| {t:.2f} | {cells[0]} | {cells[1]} |")
    return [*dict.fromkeys(lines), ""]


async def verify(bot, outcomes: Sequence[Outcome], sample: int) -> tuple[int, int]:
    """Ask a sample through AnswerService.answer: answered or not, and the text, must match."""
    ctx = await default_context(bot)
    chosen = random.Random(7).sample(list(outcomes), min(sample, len(outcomes)))
    same = 0
    for i, o in enumerate(chosen):
        got = await bot.say(o.question.text, thread=f"verify-{i}")
        expect = gate_rule(DEFAULT_THRESHOLD)(o)
        text = o.text if expect else abstain_text(ctx.namespace_labels, o.missing)
        same += got.abstained != expect and got.text == text
    return same, len(chosen)


async def main(sample: int, dump: Path | None, write: bool) -> None:
    embedder = real_embedder()
    articles = load_articles()
    runs: list[tuple[str, Sequence[object], list[tuple[Question, str]]]] = [
        ("squad", articles, [(q, "squad") for a in articles for q in a.questions])
    ]
    runs += [(name, docs, qs) for name, (docs, qs) in load_teamset().items()]
    outcomes: list[Outcome] = []
    checks = [0, 0]
    timing: dict[str, tuple[float, float, int]] = {}
    for name, docs, qs in runs:
        t0 = time.perf_counter()
        async with bot_with_articles("sqlite", embedder=embedder, articles=docs) as bot:
            t1 = time.perf_counter()
            outs = await answer_all(bot, qs)
            t2 = time.perf_counter()
            same, n = await verify(bot, outs, sample if name == "squad" else sample // 4)
        checks = [checks[0] + same, checks[1] + n]
        timing[name] = (t1 - t0, t2 - t1, len(qs))
        outcomes += outs
    if dump is not None:
        dump.write_text(
            "".join(
                json.dumps(
                    {
                        "qid": o.question.qid,
                        "kind": o.kind,
                        "set": o.question.article,
                        "impossible": o.question.impossible,
                        "correct": o.correct,
                        "calibration": calibration(o),
                        "signals": asdict(o.signals) if o.signals else None,
                        "chars": len(o.text),
                    }
                )
                + "\n"
                for o in outcomes
            )
        )
    report = render(outcomes, timing, checks)
    print(report)
    if write:
        write_doc(HEADING, report)


def render(
    outcomes: Sequence[Outcome], timing: dict[str, tuple[float, float, int]], checks: list[int]
) -> str:
    model, flags = cpu()
    per_q = {k: v[1] / v[2] * 1000 for k, v in timing.items()}
    return "\n".join(
        [
            "Command: `.venv/bin/python bench/answer_quality.py --write`. Machine: "
            f"{model} ({flags}). Date: {time.strftime('%Y-%m-%d')}.",
            "",
            "Corpora: the SQuAD 2.0 subset (two articles, one bot) and the three handbooks of "
            "bench/teamset/ (each four or five short Markdown files, one bot each: hr, oncall, "
            "it; literal and paraphrased questions with gold substrings, and on-topic "
            "questions they do not answer). The gate is fitted on the calibration split (the "
            "hr handbook and the even half of SQuAD by question id) and reported on the rest "
            f"too. top_k 5; extractive mode; gate threshold {DEFAULT_THRESHOLD:.2f}.",
            "",
            "Ingest and answer time: "
            + "; ".join(
                f"{k} {v[0]:.1f} s ingest, {per_q[k]:.0f} ms per question"
                for k, v in timing.items()
            )
            + f". Checks: {checks[0]}/{checks[1]} sampled questions identical through "
            "AnswerService.answer.",
            "",
            *tables(outcomes),
            *sweep(outcomes),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", type=int, default=40, help="questions checked end to end")
    parser.add_argument("--dump", type=Path, help="write each question's signals (JSON lines)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    asyncio.run(main(args.verify, args.dump, args.write))
