"""The abstention gate: answer or say "I couldn't find that", from the evidence of the top
candidates rather than from one similarity value.

A single cosine is brittle: short documents, paraphrased questions and small corpora score
low, while on-topic questions that the documents do not answer score high. The gate weighs
what the retrieval and the best supporting sentence say together (``Evidence``): the dense
similarity of the best chunk and of the chunk holding the sentence, whether the dense leg and
the lexical sentence ranking agree on that chunk, the share of the question's content terms,
bigrams, names, numbers and dates the sentence holds, its BM25, the expected answer type and
a negation the question asks about.

A question that names something, or a year, that no source mentions ("Can I use ChatGPT for
work?" over sources that never say ChatGPT) is not answered by them, whatever else they share
with it: that vetoes the answer (``Evidence.unknown_names``). Otherwise the decision rule is a
logistic model with its coefficients in ``COEFFICIENTS``: ``p`` is the estimated chance that
the question is answerable from the sources, and the bot answers when ``p`` reaches the
threshold (``DEFAULT_THRESHOLD``, or a namespace's ``answer_threshold``; 0 always answers when
a supporting sentence exists). The coefficients are fitted offline by ``bench/fit_gate.py`` on
calibration data that is not the evaluation set (one team handbook of ``bench/teamset/`` and
half of the SQuAD subset); ``bench/answer_quality.py`` measures the rule on the rest
(docs/benchmarks.md, "Answer quality").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from core.generation.base import Source
from core.generation.extractive import ExtractiveResult


@dataclass(frozen=True, slots=True)
class Evidence:
    """The signals of one question against its retrieved sources, each about in [0, 1]."""

    similarity: float  # the best chunk's dense cosine
    support_similarity: float  # the cosine of the chunk that holds the best sentence
    sentence_similarity: float  # the cosine of the best sentence itself
    dense_agrees: float  # 1 when that chunk is also the dense leg's best, 1/(1 + rank) else
    lexical_agrees: float  # 1 when that chunk is also the retrieval's (fused, reranked) first
    coverage: float  # idf-weighted share of the question's content terms in the sentence
    bigrams: float  # share of the question's term bigrams in the sentence
    bm25: float  # the sentence's BM25 over the question's idf sum
    names: float  # share of the question's names, numbers and dates in the sentence
    typed: float  # expected answer type present: 1 yes, 0 no, 0.5 no type expected
    negation_kept: float  # 1 unless the question negates and the sentence does not
    extractive: float  # the offline answerer's own confidence
    unknown_names: float = 0.0  # names and years of the question no source mentions: a veto


# Fitted by bench/fit_gate.py (weighted logistic regression, L2, on the calibration split),
# on the signals of both embedding backends pooled: the int8 model (`auto` where the CPU has
# VNNI or AVX2) and float32 give slightly different cosines, and a rule fitted on one alone
# refused two more handbook questions on the other. Term coverage, bigrams and BM25 weigh 0:
# fitted on SQuAD 2.0, whose unanswerable questions are written with the passage's own words,
# they turn negative and refuse plain questions on other corpora; the answerer's confidence
# carries the lexical evidence instead. What carries the rule is the best chunk's cosine, the
# expected answer type and the negation (without those two it abstains on a third as many
# unanswerable questions). The fit saw "I" counted as a name; refitted with the pronoun left
# out, the rule does worse on the held-out split (docs/benchmarks.md), so these stay.
INTERCEPT = -6.686
COEFFICIENTS: dict[str, float] = {
    "similarity": 5.816,
    "support_similarity": -0.055,
    "sentence_similarity": -1.363,
    "dense_agrees": 0.352,
    "lexical_agrees": 0.712,
    "coverage": 0.0,
    "bigrams": 0.0,
    "bm25": 0.0,
    "names": -0.715,
    "typed": 1.937,
    "negation_kept": 3.175,
    "extractive": 0.719,
}
DEFAULT_THRESHOLD = 0.18


def evidence(sources: Sequence[Source], result: ExtractiveResult) -> Evidence | None:
    """The signals for ``result`` (the offline answerer's pick over ``sources``, whose
    ``score`` is each chunk's dense cosine); None without sources. When no sentence shares a
    term with the question, the lexical signals are 0 and the dense ones speak alone (an LLM
    may still bridge the words; the offline answerer has nothing to quote)."""
    if not sources:
        return None
    cosines = [s.score for s in sources]
    support = result.support if result.text else None
    if support is None:
        return Evidence(max(cosines), *([0.0] * (len(fields(Evidence)) - 1)))
    held = cosines[support.source_index]
    dense_rank = sum(c > held for c in cosines)
    return Evidence(
        similarity=max(cosines),
        support_similarity=held,
        sentence_similarity=support.dense,
        dense_agrees=1.0 / (1 + dense_rank),
        lexical_agrees=1.0 if support.source_index == 0 else 0.0,
        coverage=support.coverage,
        bigrams=support.bigrams,
        bm25=support.bm25,
        names=support.names,
        typed=support.typed,
        negation_kept=1.0 if support.negation_kept else 0.0,
        extractive=result.score,
        unknown_names=float(len(support.unknown_names)),
    )


def answer_probability(signals: Evidence) -> float:
    """The logistic model's estimate that the sources answer the question; 0 when it names
    something no source mentions (they cannot say anything about it)."""
    if signals.unknown_names >= 1:
        return 0.0
    z = INTERCEPT + sum(COEFFICIENTS[name] * getattr(signals, name) for name in COEFFICIENTS)
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def should_answer(signals: Evidence | None, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Answer when there are sources and the answer probability reaches ``threshold``."""
    return signals is not None and answer_probability(signals) >= threshold
