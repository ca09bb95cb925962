"""Answer quality of the offline (extractive) answerer on two SQuAD 2.0 articles, and the
abstention threshold it implies.

    .venv/bin/python bench/answer_quality.py [--verify 60] [--write]

The two articles are uploaded as .txt files through the real UploadService/IngestionService
(BotHarness: temp SQLite, milvus-lite, all-MiniLM-L6-v2) into the default namespace. Each
question is then answered by the same steps AnswerService takes in a fresh thread with no
Groq key: ``Retriever.search`` (top_k from settings) -> ``to_sources`` -> ``extractive_answer``
-> ``parse_and_validate``; the abstention rule is replayed offline for every threshold. A
sample is also asked through ``AnswerService.answer`` (each in its own thread) and must give
the identical text, citations and abstention.

Correct: the answer text contains a gold answer (case-insensitive) and cites a chunk that
contains it. Baseline in the same run: retrieval hit@k (a gold answer in any retrieved
chunk), the ceiling for any answerer over these chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common import (
    Article,
    Question,
    bot_with_articles,
    default_context,
    load_articles,
    real_embedder,
    write_subsection,
)

from core.answer import DEFAULT_THRESHOLD, MIN_EXTRACTIVE_SCORE, abstain_text, to_sources
from core.generation.citations import parse_and_validate, quote_sentences
from core.generation.extractive import extractive_answer
from core.types import Citation

# Off-topic questions (not SQuAD): what a knowledge base about Normans and complexity theory
# should never answer. Their similarities show where "unrelated" sits for this embedder.
OFF_TOPIC = (
    "What is the airspeed velocity of an unladen swallow?",
    "How many days of paid vacation do employees get?",
    "How do I add Lorekeeper to Slack?",
    "What is the capital of Australia?",
    "Who won the football world cup in 2014?",
    "How do I reset my VPN password?",
    "What is the recipe for a margherita pizza?",
    "When is the next team offsite?",
    "Which Python version does the project require?",
    "How tall is Mount Everest?",
    "What is the boiling point of water at sea level?",
    "Who wrote Pride and Prejudice?",
)


@dataclass(frozen=True)
class Outcome:
    question: Question
    best_similarity: float
    extractive_score: float
    text: str  # the extractive answer after citation validation ("" = nothing relevant)
    cited_chunks: tuple[str, ...]
    correct: bool  # correct if answered (ignores the threshold)
    retrieval_hit: bool
    quotes: tuple[str, ...] = ()  # the citations' quotes, as the product shows them
    quote_holds_answer: bool = False  # a cited chunk holding the answer quotes it
    closing_quote_holds_answer: bool = False  # the same with the marker's closing sentence


def _leads(o: Outcome) -> bool:
    """The answer's first quoted line (after the header) holds a gold answer."""
    lines = [line for line in o.text.splitlines() if line.startswith(">")]
    return bool(lines) and any(a in lines[0].lower() for a in o.question.answers)


Signal = Callable[[Outcome], float]
SIGNALS: dict[str, Signal] = {
    "best_similarity": lambda o: o.best_similarity,
    "extractive_score": lambda o: o.extractive_score,
    "similarity x extractive": lambda o: o.best_similarity * o.extractive_score,
}


def _correct(gold: Sequence[str], text: str, cited: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(g in lowered and any(g in c.lower() for c in cited) for g in gold)


def _quoted(gold: Sequence[str], citations: Sequence[Citation], texts: dict[str, str]) -> bool:
    """A citation of a chunk that holds a gold answer shows that answer in its quote."""
    return any(
        g in cit.quote.lower()
        for cit in citations
        for g in gold
        if g in texts[str(cit.chunk_id)].lower()
    )


async def answer_all(bot, questions: Sequence[Question]) -> list[Outcome]:
    """AnswerService's no-LLM path for a new thread, without the database writes."""
    c = bot.container
    ctx = await default_context(bot)
    ns_ids = [n.id for n in ctx.namespaces]
    top_k = c.settings.retrieval_top_k
    out = []
    for q in questions:
        retrieval = await c.retriever.search(
            q.text, workspace_id=ctx.workspace_ids, namespace_ids=ns_ids, limit=top_k
        )
        sources = to_sources(retrieval.chunks)
        result = extractive_answer(q.text, sources)
        text, closing = parse_and_validate(result.text, sources) if result.text else ("", [])
        citations = quote_sentences(closing, result.best_sentences, q.text)
        by_id = {s.chunk_id: s.text for s in sources}
        cited = tuple(by_id[str(cit.chunk_id)] for cit in citations)
        contents = [s.text.lower() for s in sources]
        out.append(
            Outcome(
                q,
                retrieval.best_similarity,
                result.score,
                text,
                tuple(str(cit.chunk_id) for cit in citations),
                _correct(q.answers, text, cited) if text else False,
                any(g in t for g in q.answers for t in contents),
                tuple(cit.quote for cit in citations),
                _quoted(q.answers, citations, by_id),
                _quoted(q.answers, closing, by_id),
            )
        )
    return out


def answered(o: Outcome, signal: Signal, threshold: float) -> bool:
    """AnswerService answers when the signal reaches the threshold and the answerer found text."""
    return bool(o.text) and signal(o) >= threshold


@dataclass(frozen=True)
class Point:
    threshold: float
    correct: float  # share of answerable questions answered correctly
    abstain_impossible: float  # share of impossible questions abstained on
    wrong_abstain: float  # share of answerable questions abstained on
    accuracy: float  # (correct answerable + abstained impossible) / all
    balanced: float  # mean of correct and abstain_impossible


def evaluate(outcomes: Sequence[Outcome], signal: Signal, threshold: float) -> Point:
    pos = [o for o in outcomes if not o.question.impossible]
    neg = [o for o in outcomes if o.question.impossible]
    ok = sum(answered(o, signal, threshold) and o.correct for o in pos)
    silent_neg = sum(not answered(o, signal, threshold) for o in neg)
    silent_pos = sum(not answered(o, signal, threshold) for o in pos)
    correct = ok / len(pos) if pos else 0.0
    abstain = silent_neg / len(neg) if neg else 0.0
    return Point(
        threshold,
        correct,
        abstain,
        silent_pos / len(pos) if pos else 0.0,
        (ok + silent_neg) / len(outcomes),
        (correct + abstain) / 2,
    )


def grid(lo: float, hi: float, step: float) -> list[float]:
    n = round((hi - lo) / step)
    return [round(lo + i * step, 4) for i in range(n + 1)]


def sweep_table(outcomes: Sequence[Outcome], signal: Signal, thresholds: Sequence[float]) -> str:
    rows = [
        "| threshold | correct (answerable) | abstains (impossible) | wrong abstentions "
        "| accuracy (all) | balanced |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for t in thresholds:
        p = evaluate(outcomes, signal, t)
        rows.append(
            f"| {t:.2f} | {p.correct:.1%} | {p.abstain_impossible:.1%} | {p.wrong_abstain:.1%} "
            f"| {p.accuracy:.1%} | {p.balanced:.1%} |"
        )
    return "\n".join(rows)


def both(sim: float, ext: float) -> Signal:
    """The AND rule as a 0/1 signal: similarity >= ``sim`` and extractive score >= ``ext``."""
    return lambda o: float(o.best_similarity >= sim and o.extractive_score >= ext)


def and_grid(outcomes: Sequence[Outcome]) -> str:
    sims = (0.0, 0.20, 0.25, 0.30, 0.35)
    exts = (0.0, 0.30, 0.35, 0.40, 0.45, 0.50)
    rows = [
        "| similarity >= (row), extractive >= (column) | "
        + " | ".join(f"{e:.2f}" for e in exts)
        + " |",
        "|---:|" + "---:|" * len(exts),
    ]
    for sim in sims:
        cells = []
        for ext in exts:
            p = evaluate(outcomes, both(sim, ext), 1.0)
            cells.append(
                f"{p.correct:.1%} / {p.abstain_impossible:.1%} / {p.wrong_abstain:.1%} "
                f"/ {p.accuracy:.1%}"
            )
        rows.append(f"| {sim:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def transfer_rows(groups: dict[str, list[Outcome]], rules: dict[str, Signal]) -> str:
    """How fixed rules (picked on both articles) do on each article alone."""
    rows = [
        "| rule | subset | correct | abstains (imp.) | wrong abst. | accuracy |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, signal in rules.items():
        for subset, outs in groups.items():
            p = evaluate(outs, signal, 1.0)
            rows.append(
                f"| {name} | {subset} | {p.correct:.1%} | {p.abstain_impossible:.1%} | "
                f"{p.wrong_abstain:.1%} | {p.accuracy:.1%} |"
            )
    return "\n".join(rows)


def best_under_floor(
    outcomes: Sequence[Outcome], signal: Signal, thresholds: Sequence[float], floor: float
) -> Point:
    """The most accurate threshold whose wrong-abstention share stays within ``floor``."""
    points = [evaluate(outcomes, signal, t) for t in thresholds]
    allowed = [p for p in points if p.wrong_abstain <= floor] or points[:1]
    return max(allowed, key=lambda p: (round(p.accuracy, 6), -p.threshold))


def robust_pick(
    groups: dict[str, list[Outcome]], signal: Signal, thresholds: Sequence[float], floor: float
) -> tuple[float, float, float]:
    """Threshold maximising the worst article's accuracy while every article's wrong
    abstentions stay within ``floor``: (threshold, worst accuracy, worst wrong abstentions)."""
    best = (0.0, -1.0, 1.0)
    for t in thresholds:
        points = [evaluate(outs, signal, t) for outs in groups.values()]
        worst_wrong = max(p.wrong_abstain for p in points)
        worst_acc = min(p.accuracy for p in points)
        if worst_wrong <= floor and worst_acc > best[1]:
            best = (t, worst_acc, worst_wrong)
    return best


def distribution(values: Sequence[float]) -> str:
    qs = statistics.quantiles(values, n=20, method="inclusive")
    return (
        f"min {min(values):.3f} p5 {qs[0]:.3f} p25 {qs[4]:.3f} median "
        f"{statistics.median(values):.3f} p75 {qs[14]:.3f} p95 {qs[18]:.3f} max {max(values):.3f}"
    )


async def verify(bot, outcomes: Sequence[Outcome], sample: int, threshold: float) -> str:
    """Ask a sample through AnswerService.answer; text, citations and abstention must match what
    the replay predicts under the product's rule (similarity >= ``threshold`` and extractive
    support >= MIN_EXTRACTIVE_SCORE)."""
    c = bot.container
    ctx = await default_context(bot)
    for ns in ctx.namespaces:  # general and the channel's own files: whichever sets it
        await c.knowledge.update_namespace_config(
            ns.id, {**ns.config, "answer_threshold": threshold}
        )
    chosen = random.Random(7).sample(list(outcomes), min(sample, len(outcomes)))
    mismatches = []
    for i, o in enumerate(chosen):
        got = await bot.say(o.question.text, thread=f"verify-{i}")
        # the product's rule: the similarity threshold and the answerer's own support floor
        expect_answer = answered(o, SIGNALS["best_similarity"], threshold)
        expect_answer = expect_answer and o.extractive_score >= MIN_EXTRACTIVE_SCORE
        text = o.text if expect_answer else abstain_text(ctx.namespace_labels)
        cited = tuple(str(x.chunk_id) for x in got.citations)
        quotes = tuple(x.quote for x in got.citations)
        if (
            got.abstained == expect_answer
            or got.text != text
            or (expect_answer and (cited != o.cited_chunks or quotes != o.quotes))
        ):
            mismatches.append(o.question.qid)
    for ns in ctx.namespaces:
        await c.knowledge.update_namespace_config(ns.id, ns.config)
    return (
        f"{len(chosen) - len(mismatches)}/{len(chosen)} sampled questions identical through "
        f"AnswerService.answer at threshold {threshold:.2f}"
        + (f" (mismatches: {', '.join(mismatches)})" if mismatches else "")
    )


def per_article(outcomes: Sequence[Outcome], articles: Sequence[Article]) -> dict[str, list]:
    return {a.title: [o for o in outcomes if o.question.article == a.title] for a in articles}


def stability_rows(
    groups: dict[str, list[Outcome]], thresholds: dict[str, list[float]], floor: float
) -> str:
    rows = [
        "| signal | subset | best threshold (wrong abst. <= "
        f"{floor:.0%}) | correct | abstains (imp.) | wrong abst. | accuracy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, signal in SIGNALS.items():
        for subset, outs in groups.items():
            p = best_under_floor(outs, signal, thresholds[name], floor)
            rows.append(
                f"| {name} | {subset} | {p.threshold:.2f} | {p.correct:.1%} | "
                f"{p.abstain_impossible:.1%} | {p.wrong_abstain:.1%} | {p.accuracy:.1%} |"
            )
    return "\n".join(rows)


async def off_topic_similarities(bot) -> list[tuple[str, float, float]]:
    fake_questions = [
        Question(f"off-{i}", q, (), True, "off-topic") for i, q in enumerate(OFF_TOPIC)
    ]
    outs = await answer_all(bot, fake_questions)
    return [(o.question.text, o.best_similarity, o.extractive_score) for o in outs]


THRESHOLDS = {
    "best_similarity": grid(0.0, 0.70, 0.05),
    "extractive_score": grid(0.0, 1.0, 0.1),
    "similarity x extractive": grid(0.0, 0.60, 0.05),
}
FINE = {
    "best_similarity": grid(0.0, 0.80, 0.01),
    "extractive_score": grid(0.0, 1.0, 0.01),
    "similarity x extractive": grid(0.0, 0.80, 0.01),
}
RULES: dict[str, Signal] = {
    "similarity >= 0.30 (the first default)": lambda o: float(o.best_similarity >= 0.30),
    "similarity >= 0.34": lambda o: float(o.best_similarity >= 0.34),
    "extractive >= 0.40": lambda o: float(o.extractive_score >= 0.40),
    "similarity x extractive >= 0.19": lambda o: float(
        o.best_similarity * o.extractive_score >= 0.19
    ),
    "similarity >= 0.25 and extractive >= 0.40 (the default)": both(0.25, 0.40),
    "similarity >= 0.30 and extractive >= 0.40": both(0.30, 0.40),
}
FLOOR = 0.10  # at most one answerable question in ten may be refused


async def main(sample: int, write: bool) -> None:
    articles = load_articles()
    questions = [q for a in articles for q in a.questions]
    embedder = real_embedder()
    t0 = time.perf_counter()
    async with bot_with_articles(
        "sqlite", embedder=embedder, articles=articles, ANSWER_THRESHOLD=0.0
    ) as bot:
        t1 = time.perf_counter()
        outcomes = await answer_all(bot, questions)
        t2 = time.perf_counter()
        off = await off_topic_similarities(bot)
        check = await verify(bot, outcomes, sample, DEFAULT_THRESHOLD)
        check_mid = await verify(bot, outcomes, sample // 2, 0.45)
    report = render(outcomes, articles, off, [check, check_mid], (t1 - t0, t2 - t1))
    print(report)
    if write:
        write_subsection("Answer quality (extractive, SQuAD 2.0 two articles)", report)


def render(
    outcomes: Sequence[Outcome],
    articles: Sequence[Article],
    off: Sequence[tuple[str, float, float]],
    checks: Sequence[str],
    timing: tuple[float, float],
) -> str:
    pos = [o for o in outcomes if not o.question.impossible]
    neg = [o for o in outcomes if o.question.impossible]
    hit = sum(o.retrieval_hit for o in pos) / len(pos)
    empty_pos = sum(not o.text for o in pos) / len(pos)
    right = [o for o in pos if o.text and o.correct] or list(pos)
    sims_pos = [o.best_similarity for o in pos]
    sims_neg = [o.best_similarity for o in neg]
    ext_pos = [o.extractive_score for o in pos]
    ext_neg = [o.extractive_score for o in neg]
    articles_only = per_article(outcomes, articles)
    groups = {"both": list(outcomes), **articles_only}
    parts = [
        "Command: `.venv/bin/python bench/answer_quality.py --write` (ingest "
        f"{timing[0]:.1f} s, {len(outcomes)} questions answered in {timing[1]:.1f} s).",
        f"{len(pos)} answerable, {len(neg)} is_impossible questions; top_k 5; extractive mode.",
        "",
        f"- Baseline (ceiling): retrieval hit@5 {hit:.1%} of answerable questions.",
        f"- Never abstaining: {evaluate(outcomes, SIGNALS['best_similarity'], 0).correct:.1%} "
        f"correct on answerable; the answerer itself finds no sentence on {empty_pos:.1%}.",
        f"- Checks: {'; '.join(checks)}.",
        f"- Answer form: median {statistics.median(len(o.text) for o in outcomes if o.text):.0f}"
        " characters per answer (never abstaining); the first quoted line holds the gold answer"
        f" in {sum(_leads(o) for o in right) / len(right):.1%} of the correct answers.",
        f"- Citation quotes: of the {len(right)} correct answers (never abstaining), "
        f"{sum(o.quote_holds_answer for o in right) / len(right):.1%} show the answer in the "
        "quote of a cited chunk that holds it (quote from the answer's best sentence of that "
        "chunk); baseline, the sentence that closes the marker: "
        f"{sum(o.closing_quote_holds_answer for o in right) / len(right):.1%}.",
        "",
        "Signal distributions:",
        "",
        f"- best_similarity, answerable: {distribution(sims_pos)}",
        f"- best_similarity, impossible: {distribution(sims_neg)}",
        f"- best_similarity, off-topic probes ({len(off)}): {distribution([s for _, s, _ in off])}",
        f"- extractive_score, answerable: {distribution(ext_pos)}",
        f"- extractive_score, impossible: {distribution(ext_neg)}",
        f"- extractive_score, off-topic probes: {distribution([e for _, _, e in off])}",
        "",
    ]
    for name, signal in SIGNALS.items():
        parts += [f"Sweep over **{name}** (both articles):", ""]
        parts += [sweep_table(outcomes, signal, THRESHOLDS[name]), ""]
    parts += [
        f"Stability: best threshold per subset (max accuracy with wrong abstentions <= "
        f"{FLOOR:.0%}, 0.01 grid):",
        "",
        stability_rows(groups, FINE, FLOOR),
        "",
        f"Robust pick per signal (maximise the worse article's accuracy, wrong abstentions "
        f"<= {FLOOR:.0%} on each article):",
        "",
        *[
            "- {}: threshold {:.2f} (worst-article accuracy {:.1%}, worst wrong abstentions "
            "{:.1%})".format(name, *robust_pick(articles_only, signal, FINE[name], FLOOR))
            for name, signal in SIGNALS.items()
        ],
        "",
        "AND rule (answer only when both reach their thresholds), cells are correct / "
        "abstains on impossible / wrong abstentions / accuracy:",
        "",
        and_grid(outcomes),
        "",
        "Transfer: fixed rules applied to each article alone:",
        "",
        transfer_rows(groups, RULES),
        "",
        "Off-topic probes (best_similarity, extractive_score):",
        "",
        *[f"- {q} -> {s:.3f}, {e:.2f}" for q, s, e in off],
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", type=int, default=60, help="questions checked end to end")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    asyncio.run(main(args.verify, args.write))
