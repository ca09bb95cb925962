"""Weighted reciprocal-rank fusion and the reranker's lexical rankings."""

from __future__ import annotations

import pytest

from core.retrieval.base import VectorHit
from core.retrieval.fusion import fuse_rrf
from core.retrieval.rerank import SentenceReranker


def _vh(chunk: str, similarity: float | None = None) -> VectorHit:
    return VectorHit(chunk, "d", "n", chunk, 0.0, similarity)


def test_a_leg_weighs_by_its_weight() -> None:
    dense = [_vh("a", 0.9), _vh("b", 0.8)]
    bm25 = [_vh("b"), _vh("a")]
    even = fuse_rrf([dense, bm25], k=60)
    assert [h.chunk_id for h in even] == ["a", "b"]  # a tie: the first leg's order
    leaning = fuse_rrf([dense, bm25], k=60, weights=[1.0, 1.5])
    assert [h.chunk_id for h in leaning] == ["b", "a"]
    assert leaning[0].score == pytest.approx(1 / 62 + 1.5 / 61)
    assert leaning[0].similarity == 0.8


def test_weight_zero_drops_a_legs_say_and_ones_are_the_plain_fusion() -> None:
    dense = [_vh("a", 0.9), _vh("b", 0.8)]
    bm25 = [_vh("c"), _vh("b")]
    muted = fuse_rrf([dense, bm25], k=60, weights=[1.0, 0.0])
    assert [h.chunk_id for h in muted][:2] == ["a", "b"]
    assert muted[-1].score == 0.0
    assert fuse_rrf([dense, bm25], k=60, weights=[1, 1]) == fuse_rrf([dense, bm25], k=60)


def test_one_weight_per_leg() -> None:
    with pytest.raises(ValueError):
        fuse_rrf([[_vh("a")], [_vh("b")]], k=60, weights=[1.0])


def test_lexical_orders_rank_by_best_sentence_and_best_pair() -> None:
    texts = [
        "The fleet sailed at dawn. A storm came.",
        "Richard's fleet met a storm near Cyprus. It dispersed the fleet.",
        "Apples grow in the orchards.",
    ]
    sentence, pair = SentenceReranker().lexical_orders("What dispersed Richard's fleet?", texts)
    assert sentence[0] == 1 and pair[0] == 1
    assert sentence[-1] == 2 and pair[-1] == 2
    assert sorted(sentence) == sorted(pair) == [0, 1, 2]
