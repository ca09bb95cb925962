"""One text indexed through the real ingestion service into milvus-lite, for retrieval tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import NamespaceRecord, WorkspaceRecord
from core.db.usage import UsageStore
from core.ingestion.extract import ExtractLimits
from core.ingestion.service import IngestionService, Uploader
from core.retrieval.milvus import MilvusVectorStore


@contextlib.asynccontextmanager
async def indexed_text(
    database: Any, folder: Path, embedder: Any, text: str, *, team: str, namespace: str
) -> AsyncIterator[tuple[KnowledgeStore, MilvusVectorStore, WorkspaceRecord, NamespaceRecord]]:
    """``text`` as one file of ``namespace`` in Slack workspace ``team``, in 200-character
    chunks; yields the knowledge store, the vector store, the workspace and the namespace."""
    vectors = MilvusVectorStore(str(folder / "m.db"), dimension=embedder.dimension)
    await vectors.open()
    try:
        knowledge = KnowledgeStore(database)
        service = IngestionService(
            knowledge=knowledge,
            usage=UsageStore(database),
            embedder=embedder,
            vectors=vectors,
            limits=ExtractLimits(max_bytes=200_000, max_chars=100_000),
            chunk_size=200,
            chunk_overlap=40,
        )
        ws = await IdentityStore(database).workspace("slack", team)
        ns = await knowledge.ensure_namespace(ws.id, namespace)
        await service.ingest(
            text.encode(), f"{namespace}.txt", namespace=ns, uploader=Uploader(ws.id)
        )
        yield knowledge, vectors, ws, ns
    finally:
        await vectors.close()
