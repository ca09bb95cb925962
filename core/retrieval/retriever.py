"""Retriever: query -> hybrid search in the vector store -> chunks with their documents."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from core.db.knowledge import ChunkView, KnowledgeStore
from core.retrieval.base import Embedder, VectorStore


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    chunk: ChunkView
    rank: int
    score: float  # the fused (RRF) score: only comparable within one search
    similarity: float  # cosine similarity of query and chunk: comparable across searches


@dataclass(frozen=True, slots=True)
class Retrieval:
    chunks: tuple[RetrievedChunk, ...]
    query_tokens: int
    embed_ms: int
    search_ms: int

    @property
    def best_similarity(self) -> float:
        return max((c.similarity for c in self.chunks), default=0.0)


class Retriever:
    """Finds the chunks for a question, always inside one workspace's namespaces."""

    def __init__(
        self, *, embedder: Embedder, vectors: VectorStore, knowledge: KnowledgeStore
    ) -> None:
        self._embedder = embedder
        self._vectors = vectors
        self._knowledge = knowledge

    async def search(
        self,
        query: str,
        *,
        workspace_id: uuid.UUID,
        namespace_ids: Sequence[uuid.UUID],
        document_ids: Sequence[uuid.UUID] | None = None,
        limit: int = 5,
        mode: str = "hybrid",
    ) -> Retrieval:
        """Top ``limit`` chunks; chunk rows whose document is not indexed are dropped."""
        if not namespace_ids or not query.strip():
            return Retrieval((), 0, 0, 0)
        t0 = time.perf_counter()
        vector = await self._embedder.embed_query(query)
        t1 = time.perf_counter()
        hits = await self._vectors.search(
            query_text=query,
            query_vector=vector,
            workspace_id=str(workspace_id),
            namespace_ids=[str(n) for n in namespace_ids],
            document_ids=[str(d) for d in document_ids] if document_ids is not None else None,
            limit=limit,
            mode=mode,
        )
        ids = [uuid.UUID(h.chunk_id) for h in hits]
        views = await self._knowledge.chunks(ids)
        stored = await self._vectors.dense_vectors([h.chunk_id for h in hits])
        t2 = time.perf_counter()
        out: list[RetrievedChunk] = []
        for hit in hits:
            view = views.get(uuid.UUID(hit.chunk_id))
            if view is None or view.workspace_id != workspace_id:
                continue
            out.append(
                RetrievedChunk(
                    view, len(out) + 1, hit.score, _cosine(vector, stored.get(hit.chunk_id))
                )
            )
        tokens = self._embedder.count_tokens([query])
        return Retrieval(tuple(out), tokens, int((t1 - t0) * 1000), int((t2 - t1) * 1000))


def _cosine(a: Sequence[float], b: Sequence[float] | None) -> float:
    if not b:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return float(dot / (na * nb)) if na and nb else 0.0
