"""Ports of retrieval: the embedder and the vector store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Embedder(Protocol):
    """Turns text into dense vectors. Implementations load lazily and run off the event loop."""

    @property
    def dimension(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages (batched), normalised for cosine similarity."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model sees for these texts (for token_usage)."""
        ...


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """One chunk as the vector store holds it. Ids are strings (UUIDs in text form)."""

    chunk_id: str
    workspace_id: str
    namespace_id: str
    document_id: str
    text: str
    vector: list[float]


@dataclass(frozen=True, slots=True)
class VectorHit:
    chunk_id: str
    document_id: str
    namespace_id: str
    text: str
    score: float
    similarity: float | None = None  # the query's cosine to the chunk, when the search knows it


class VectorStore(Protocol):
    """Hybrid (dense + BM25) search over chunks, always filtered by tenant."""

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def search(
        self,
        *,
        query_text: str,
        query_vector: Sequence[float],
        workspace_id: str | Sequence[str],
        namespace_ids: Sequence[str],
        document_ids: Sequence[str] | None = None,
        limit: int = 5,
        mode: str = "hybrid",
        ids_only: bool = False,
    ) -> list[VectorHit]:
        """``mode`` is "hybrid", "dense" or "bm25". Empty ``namespace_ids`` returns nothing.
        ``ids_only=True`` fills only each hit's chunk id and scores (a caller that reads the
        chunk rows from SQL anyway skips decoding every candidate's text and ids)."""
        ...

    async def delete_documents(self, document_ids: Sequence[str]) -> None: ...

    async def move_document(self, document_id: str, *, workspace_id: str, namespace_id: str) -> int:
        """Give a document's chunks another namespace; returns how many moved."""
        ...

    async def move_namespace(
        self, namespace_id: str, *, workspace_id: str, into: str | None = None
    ) -> int:
        """Give a namespace's chunks another workspace (and namespace); returns how many."""
        ...

    async def delete_namespace(self, namespace_id: str) -> None: ...

    async def chunk_ids(self, *, document_ids: Sequence[str] | None = None) -> set[str]:
        """All chunk ids held (optionally for some documents): for reconciliation."""
        ...

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None: ...

    async def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored dense vectors of these chunks (to score similarity for abstention)."""
        ...

    async def close(self) -> None: ...
