"""Bringing SQL and Milvus back in line (``IngestionService.reconcile``).

SQL is the source of truth. A crash between the SQL and the Milvus writes, a restore of one
store from an older backup than the other, or a failed clean-up after a new version of a file
was indexed leaves the two out of step; the nightly reconcile job repairs each case.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from core.db.knowledge import KnowledgeStore
from core.db.records import DocumentRecord
from core.ingestion.versions import Versions, newest
from core.retrieval.base import Embedder, VectorRecord, VectorStore

log = logging.getLogger(__name__)

EMBED_BATCH = 256

# applies the version rule to one indexed document (its uploader's older versions go)
ReplaceOlder = Callable[[DocumentRecord, str], Awaitable[Versions]]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    orphan_vectors_deleted: int
    missing_vectors_restored: int
    # older versions left beside their replacement (deleting them failed after it was indexed)
    old_versions_deleted: int = 0
    # chunks stored before sentence vectors were kept, given theirs
    sentence_vectors_filled: int = 0


def embedding_text(title: str, section: str | None, text: str) -> str:
    """What the embedder and BM25 see: the document title and section give a chunk context."""
    head = title if not section or section == title else f"{title} - {section}"
    return f"{head}\n{text}"


def vector_record(
    chunk_id: uuid.UUID,
    workspace_id: uuid.UUID,
    namespace_id: uuid.UUID,
    document_id: uuid.UUID,
    text: str,
    vector: list[float],
) -> VectorRecord:
    return VectorRecord(
        str(chunk_id), str(workspace_id), str(namespace_id), str(document_id), text, vector
    )


async def reconcile(
    knowledge: KnowledgeStore,
    vectors: VectorStore,
    embedder: Embedder,
    replace_older: ReplaceOlder,
) -> ReconcileReport:
    """Delete vectors without chunk rows, re-embed chunk rows without vectors, and finish
    replacing documents whose older versions are still indexed beside the newest."""
    # Milvus first: an ingestion in flight (here or in another replica) writes its chunk rows
    # before its vectors, so no vector read here lacks its row when SQL is read after it
    held = await vectors.chunk_ids()
    sql_chunks = await knowledge.chunk_ids()
    orphans = [cid for cid in held if _as_uuid(cid) not in sql_chunks]
    if orphans:
        await vectors.delete_chunks(orphans)
    held_ids = {_as_uuid(c) for c in held}
    missing = [cid for cid in sql_chunks if cid not in held_ids]
    restored = await _restore(knowledge, vectors, embedder, missing)
    old_versions = 0
    for namespace_id, identity in await knowledge.version_groups():
        by_uploader: dict[uuid.UUID | None, list[DocumentRecord]] = {}
        for version in await knowledge.versions(namespace_id, identity):
            by_uploader.setdefault(version.uploaded_by, []).append(version)
        for versions in by_uploader.values():
            if len(versions) > 1:
                old_versions += len((await replace_older(newest(versions), identity)).replaced)
    if old_versions:
        log.warning("deleted %d older document version(s) left indexed", old_versions)
    return ReconcileReport(len(orphans), restored, old_versions)


async def _restore(
    knowledge: KnowledgeStore,
    vectors: VectorStore,
    embedder: Embedder,
    chunk_ids: Sequence[uuid.UUID],
) -> int:
    restored = 0
    for start in range(0, len(chunk_ids), EMBED_BATCH):
        found = await knowledge.chunks(chunk_ids[start : start + EMBED_BATCH])
        views = list(found.values())
        if not views:
            continue
        texts = [embedding_text(v.title, v.section, v.content) for v in views]
        embedded = await embedder.embed_documents(texts)
        await vectors.upsert(
            [
                vector_record(v.id, v.workspace_id, v.namespace_id, v.document_id, text, vec)
                for v, text, vec in zip(views, texts, embedded, strict=True)
            ]
        )
        restored += len(views)
    return restored


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
