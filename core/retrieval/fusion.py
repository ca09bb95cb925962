"""Reciprocal-rank fusion of ranked hit lists (the dense and BM25 legs of a hybrid search)."""

from __future__ import annotations

from collections.abc import Sequence

from core.retrieval.base import VectorHit


def fuse_rrf(
    legs: Sequence[Sequence[VectorHit]],
    *,
    k: int,
    limit: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[VectorHit]:
    """Reciprocal-rank fusion, as Milvus' ``RRFRanker(k)``: each hit scores the sum over the
    legs of ``weight / (k + rank)`` (rank from 1; every weight 1 unless ``weights`` gives one
    per leg), best first; ties keep the first leg's order. The dense leg's cosine stays on the
    fused hit as its ``similarity``. The best ``limit`` hits (all without one)."""
    if weights is not None and len(weights) != len(legs):
        raise ValueError("one weight per leg")
    fused: dict[str, VectorHit] = {}
    scores: dict[str, float] = {}
    for n, leg in enumerate(legs):
        weight = 1.0 if weights is None else weights[n]
        for rank, hit in enumerate(leg, start=1):
            key = hit.chunk_id
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            seen = fused.get(key)
            if seen is None or (seen.similarity is None and hit.similarity is not None):
                fused[key] = hit
    out = []
    for key in sorted(scores, key=scores.__getitem__, reverse=True)[:limit]:  # stable
        h = fused[key]  # built directly: dataclasses.replace costs twice as much per hit
        out.append(
            VectorHit(h.chunk_id, h.document_id, h.namespace_id, h.text, scores[key], h.similarity)
        )
    return out
