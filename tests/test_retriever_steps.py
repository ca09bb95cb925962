"""Retriever.search's two steps (candidates, rerank) on real milvus-lite and SQL: the seam
bench/vocabulary.py measures its options through."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.db.knowledge import ChunkView
from core.retrieval.base import VectorHit
from core.retrieval.fusion import fuse_rrf
from core.retrieval.milvus import MilvusVectorStore
from core.retrieval.retriever import Retriever, Scope
from tests.indexing import indexed_text

TEXT = "\n\n".join(
    [
        "Everyone gets paid time off (PTO) from their first day. Full-time staff receive "
        "25 days of PTO per calendar year.",
        "Meals on a business trip are covered by a per diem of 60 EUR a day. You do not need "
        "receipts for meals covered by the per diem.",
        "Acknowledge a page within 5 minutes. If you do not, the secondary on-call is paged.",
        "Laptops are replaced every three years. Engineers get 32 GB of RAM.",
    ]
    * 2
)


@pytest.fixture
async def indexed(database, tmp_path, embedder):
    async with indexed_text(
        database, tmp_path, embedder, TEXT, team="TV", namespace="handbook"
    ) as found:
        yield found


class SeparateLegs(Retriever):
    """Each leg searched on its own and fused here, as bench/vocabulary.py's options do."""

    def __init__(self, *, vectors: MilvusVectorStore, **parts: object) -> None:
        super().__init__(vectors=vectors, **parts)  # type: ignore[arg-type]
        self._store = vectors

    async def _candidates(
        self, query: str, vector: Sequence[float], scope: Scope, *, limit: int, mode: str
    ) -> list[VectorHit]:
        legs = [
            await self._store.search(
                query_text=query,
                query_vector=vector,
                workspace_id=scope.workspace_ids,
                namespace_ids=scope.namespace_ids,
                limit=50,
                mode=leg,
                ids_only=True,
            )
            for leg in ("dense", "bm25")
        ]
        return fuse_rrf(legs, k=60, limit=limit, weights=[1.0, 1.0])


class Reversed(Retriever):
    async def _rerank(
        self, query: str, vector: Sequence[float], found: Sequence[tuple[VectorHit, ChunkView]]
    ) -> list[tuple[ChunkView, float]]:
        ordered = await super()._rerank(query, vector, found)
        return ordered[::-1]


@pytest.mark.parametrize(
    "query",
    ["How much vacation do I get a year?", "How long do I have to ack a page?", "RAM laptops"],
)
async def test_separate_legs_fused_with_even_weights_are_the_stores_hybrid_search(
    indexed, embedder, query
) -> None:
    knowledge, vectors, ws, ns = indexed
    parts = {"embedder": embedder, "vectors": vectors, "knowledge": knowledge}
    product = await Retriever(**parts).search(query, workspace_id=ws.id, namespace_ids=[ns.id])
    legs = await SeparateLegs(**parts).search(query, workspace_id=ws.id, namespace_ids=[ns.id])
    assert len(product.chunks) == 5
    assert [c.chunk.id for c in legs.chunks] == [c.chunk.id for c in product.chunks]
    assert [c.similarity for c in legs.chunks] == pytest.approx(
        [c.similarity for c in product.chunks]
    )


async def test_the_rerank_step_orders_what_search_returns(indexed, embedder) -> None:
    knowledge, vectors, ws, ns = indexed
    parts = {"embedder": embedder, "vectors": vectors, "knowledge": knowledge}
    query = "Do I need receipts for meals on a business trip?"
    product = await Retriever(**parts).search(
        query, workspace_id=ws.id, namespace_ids=[ns.id], limit=8
    )
    backwards = await Reversed(**parts).search(
        query, workspace_id=ws.id, namespace_ids=[ns.id], limit=8
    )
    assert "receipts" in product.chunks[0].chunk.content
    assert len(product.chunks) >= 4  # every chunk of the handbook
    assert [c.chunk.id for c in backwards.chunks] == [c.chunk.id for c in product.chunks][::-1]
    assert [c.rank for c in backwards.chunks] == list(range(1, len(product.chunks) + 1))
