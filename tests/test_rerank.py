"""SentenceReranker on its own, and inside Retriever.search on real milvus-lite and SQL."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from core.retrieval.rerank import SentenceReranker
from core.retrieval.retriever import Retriever
from core.text import STOPWORDS, split_sentences, stem, words
from tests.indexing import indexed_text

# Chunk 0 mentions every query word, but in different sentences; chunk 1 answers in one.
SPREAD = (
    "The duchy had many castles. Normandy is a region in the north of France. "
    "Historians say the fiefdom began to change in the tenth century. "
    "Trade grew along the river."
)
ANSWER = "The Duchy of Normandy began in 911 as a fiefdom. Rollo was its first ruler."
OTHER = "Cooking with butter is common in the region. Apples grow well in the orchards."


def test_the_chunk_with_the_answering_sentence_moves_up() -> None:
    order = SentenceReranker().rerank(
        "When did the Duchy of Normandy begin as a fiefdom?", [SPREAD, ANSWER, OTHER]
    )
    assert [i for i, _ in order] == [1, 0, 2]
    scores = [s for _, s in order]
    assert scores == sorted(scores, reverse=True)


def test_sentence_pairs_count_when_the_answer_spans_two_sentences() -> None:
    texts = [
        "Richard sailed for Acre. The weather was fine. Richard met his allies in June.",
        "Richard planned to reach Acre with his fleet. But a storm dispersed the fleet.",
    ]
    order = SentenceReranker().rerank("What dispersed Richard's fleet on the way to Acre?", texts)
    assert order[0][0] == 1


def test_a_query_without_content_words_keeps_the_search_order() -> None:
    reranker = SentenceReranker()
    texts = [OTHER, ANSWER, SPREAD]
    assert [i for i, _ in reranker.rerank("what is it?", texts)] == [0, 1, 2]
    assert [i for i, _ in reranker.rerank("anything", [ANSWER])] == [0]
    assert reranker.rerank("anything", []) == []


def test_a_question_typed_without_accents_finds_the_accented_sentence() -> None:
    texts = [
        "Richard sailed for Cyprus with his fleet. His sister was on board.",
        "A storm scattered the ships. Richard's fiancée Berengaria was anchored off the coast.",
    ]
    reranker = SentenceReranker()
    assert reranker.rerank("Who was Richard's fiancee?", texts)[0][0] == 1
    assert reranker.rerank("Who was Richard's fiancée?", texts)[0][0] == 1


def test_ties_keep_the_search_order() -> None:
    texts = ["Nothing relevant here at all.", "Nor here, to be sure.", "Still nothing."]
    assert [i for i, _ in SentenceReranker().rerank("vacation days", texts)] == [0, 1, 2]


def test_the_stem_memo_is_bounded() -> None:
    reranker = SentenceReranker()
    for _ in range(3):
        reranker.rerank("castles fiefdom", [SPREAD, ANSWER, OTHER])
    memo = stem.cache_info()  # the reranker's stems come from core.text.stem's memo
    assert memo.hits > 0 and memo.maxsize == 1 << 16 and memo.currsize <= memo.maxsize
    assert [i for i, _ in reranker.rerank("castles fiefdom", [OTHER, SPREAD])] == [1, 0]


@pytest.fixture
async def indexed(database, tmp_path, embedder):
    text = "\n\n".join([SPREAD, ANSWER, OTHER] * 3)
    async with indexed_text(
        database, tmp_path, embedder, text, team="TR", namespace="history"
    ) as found:
        yield found


async def test_retriever_reranks_hybrid_results_and_keeps_cosine_similarity(
    indexed, embedder
) -> None:
    knowledge, vectors, ws, ns = indexed
    query = "When did the Duchy of Normandy begin as a fiefdom?"
    retriever = Retriever(embedder=embedder, vectors=vectors, knowledge=knowledge)
    plain = Retriever(embedder=embedder, vectors=vectors, knowledge=knowledge, rerank_depth=0)
    found = await retriever.search(query, workspace_id=ws.id, namespace_ids=[ns.id], limit=3)
    assert [c.rank for c in found.chunks] == [1, 2, 3]
    assert "911" in found.chunks[0].chunk.content
    qv = await embedder.embed_query(query)
    stored = await vectors.dense_vectors([str(c.chunk.id) for c in found.chunks])
    for c in found.chunks:
        v = stored[str(c.chunk.id)]
        assert math.isclose(
            c.similarity, sum(a * b for a, b in zip(qv, v, strict=True)), abs_tol=1e-4
        )
    assert found.best_similarity == max(c.similarity for c in found.chunks)
    unranked = await plain.search(query, workspace_id=ws.id, namespace_ids=[ns.id], limit=3)
    assert len(unranked.chunks) == 3
    dense = await retriever.search(
        query, workspace_id=ws.id, namespace_ids=[ns.id], limit=3, mode="dense"
    )
    hits = await vectors.search(
        query_text=query,
        query_vector=qv,
        workspace_id=str(ws.id),
        namespace_ids=[str(ns.id)],
        limit=3,
        mode="dense",
    )
    assert [str(c.chunk.id) for c in dense.chunks] == [h.chunk_id for h in hits]


def _reference_order(query: str, texts: list[str]) -> list[int]:
    """The reranker's definition computed the slow, obvious way: every sentence and every
    adjacent pair of every text scored with BM25 over all of them, best unit per text, then
    RRF of the search order and the two best-unit orders (ties keep the search order)."""

    def terms(text: str) -> list[str]:
        return [stem(w) for w in words(text) if w.lower() not in STOPWORDS]

    query_terms = terms(query)
    if len(texts) < 2 or not query_terms:
        return list(range(len(texts)))
    sentences = [[terms(s) for s in split_sentences(t)] for t in texts]
    pairs = [[a + b for a, b in itertools.pairwise(ss)] or ss for ss in sentences]

    def best_order(units: list[list[list[str]]]) -> list[int]:
        flat = [u for us in units for u in us if u]
        if not flat:
            return list(range(len(units)))
        df = Counter(t for u in flat for t in set(u) if t in query_terms)
        idf = {t: math.log(1 + (len(flat) - df[t] + 0.5) / (df[t] + 0.5)) for t in query_terms}
        avg = sum(len(u) for u in flat) / len(flat)
        best = []
        for us in units:
            scores = [0.0]
            for u in us:
                tf = Counter(u)
                norm = 1.2 * (1 - 0.75 + 0.75 * len(u) / avg)
                scores.append(
                    sum(idf[t] * tf[t] * 2.2 / (tf[t] + norm) for t in query_terms if tf[t])
                )
            best.append(max(scores))
        return sorted(range(len(units)), key=lambda i: -best[i])

    fused = [0.0] * len(texts)
    for ranking in (list(range(len(texts))), best_order(sentences), best_order(pairs)):
        for rank, i in enumerate(ranking):
            fused[i] += 1.0 / (60 + 1 + rank)
    return sorted(range(len(texts)), key=lambda i: -fused[i])


def test_the_inverted_index_ranks_as_the_definition_does() -> None:
    rng = random.Random(7)
    vocabulary = [
        "normandy",
        "duchy",
        "rollo",
        "fiefdom",
        "castle",
        "river",
        "trade",
        "king",
        "norman",
        "viking",
        "france",
        "paris",
        "century",
        "began",
        "ruled",
        "war",
        "peace",
        "church",
        "abbey",
        "duke",
        "count",
        "the",
        "of",
        "and",
        "in",
        "a",
        "to",
        "was",
    ]

    def sentence() -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 8))).capitalize()

    def text() -> str:
        return " ".join(sentence() + "." for _ in range(rng.randint(0, 7)))

    reranker = SentenceReranker()
    for _ in range(500):
        texts = [text() for _ in range(rng.randint(1, 12))]
        query = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 6))) + "?"
        got = [i for i, _ in reranker.rerank(query, texts)]
        assert got == _reference_order(query, texts), (query, texts)
