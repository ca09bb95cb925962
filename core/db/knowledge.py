"""Documents and chunks, on top of the namespaces: the SQL side of the knowledge base."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from core.db.access import Database
from core.db.models import (
    Channel,
    Chunk,
    Document,
    Namespace,
    Upload,
    User,
    Workspace,
    table,
)
from core.db.namespaces import NamespaceStore
from core.db.records import DocumentInput, DocumentRecord, UploadInput
from core.db.types import new_id, utcnow
from core.enums import DocumentStatus, UploadStatus


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk ready to be stored (ids chosen by the caller so vectors can share them)."""

    id: uuid.UUID
    chunk_index: int
    content: str
    content_hash: str
    start_offset: int
    end_offset: int
    page: int | None
    section: str | None
    sentence_vectors: bytes | None = None  # core.retrieval.sentences.pack


@dataclass(frozen=True, slots=True)
class ChunkView:
    """A stored chunk with what a citation needs from its document."""

    id: uuid.UUID
    document_id: uuid.UUID
    namespace_id: uuid.UUID
    workspace_id: uuid.UUID
    content: str
    start_offset: int
    end_offset: int
    page: int | None
    section: str | None
    title: str
    source_url: str | None
    sentence_vectors: bytes | None = None  # core.retrieval.sentences.pack


# built once: every question loads its candidates' rows with it (columns, not ORM objects)
_C, _D, _N = table("chunks").c, table("documents").c, table("namespaces").c
_CHUNK_VIEWS = (
    select(
        _C.id,
        _C.document_id,
        _C.content,
        _C.start_offset,
        _C.end_offset,
        _C.page,
        _C.section,
        _D.title,
        _D.source_url,
        _D.namespace_id,
        _N.workspace_id,
        _C.sentence_vectors,
    )
    .select_from(table("chunks"))
    .join(table("documents"), _D.id == _C.document_id)
    .join(table("namespaces"), _N.id == _D.namespace_id)
    .where(_C.id.in_(bindparam("ids", expanding=True)), _D.status == DocumentStatus.INDEXED)
)
CHUNK_READ_BATCH = 64  # chunk reads (questions) that share one statement
_CHUNK_READ_IDS = 1000  # ids per statement
_SESSION_DOCUMENTS = select(_D.id).where(
    _D.session_id == bindparam("session_id"), _D.status == DocumentStatus.INDEXED
)
_INSERT_DOCUMENT = insert(table("documents"))
_INSERT_CHUNKS = insert(table("chunks"))
_INSERT_UPLOAD = insert(table("uploads"))


def _columns(item: DocumentInput | UploadInput) -> dict[str, Any]:
    """An input's fields as the row's columns (they are named alike)."""
    return {name: getattr(item, name) for name in item.__dataclass_fields__}


async def _read_chunks(
    conn: AsyncConnection, _key: None, requests: Sequence[tuple[uuid.UUID, ...]]
) -> list[dict[uuid.UUID, ChunkView]]:
    """The chunks of every request, in statements of at most ``_CHUNK_READ_IDS`` ids."""
    wanted = list(dict.fromkeys(i for ids in requests for i in ids))
    found: dict[uuid.UUID, ChunkView] = {}
    for start in range(0, len(wanted), _CHUNK_READ_IDS):
        rows = await conn.execute(_CHUNK_VIEWS, {"ids": wanted[start : start + _CHUNK_READ_IDS]})
        # the statement's columns are named as ChunkView's fields
        found.update((row.id, ChunkView(**row._mapping)) for row in rows)
    return [{i: found[i] for i in ids if i in found} for ids in requests]


def _doc(row: Any) -> DocumentRecord:
    return DocumentRecord(
        id=row.id,
        namespace_id=row.namespace_id,
        title=row.title,
        status=row.status,
        file_hash=row.file_hash,
        chunk_count=row.chunk_count,
        token_count=row.token_count,
        created_at=row.created_at,
        error=row.error,
        source_url=row.source_url,
        session_id=row.session_id,
        indexed_at=row.indexed_at,
        uploaded_by=row.uploaded_by,
        platform_file_id=row.platform_file_id,
        identity_hash=row.identity_hash,
    )


class KnowledgeStore(NamespaceStore):
    """The knowledge base in SQL: namespaces and their channel bindings (``NamespaceStore``),
    documents and chunks. SQL is the source of truth for what is indexed; Milvus mirrors the
    chunks."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._chunk_reads = db.coalesced(_read_chunks, max_batch=CHUNK_READ_BATCH)

    # --- documents and chunks -------------------------------------------------------------

    async def document_by_hash(
        self, namespace_id: uuid.UUID, file_hash: str
    ) -> DocumentRecord | None:
        found = await self._documents(
            select(Document).where(
                Document.namespace_id == namespace_id, Document.file_hash == file_hash
            )
        )
        return found[0] if found else None

    async def versions(self, namespace_id: uuid.UUID, identity_hash: str) -> list[DocumentRecord]:
        """The indexed documents of a namespace with this identity, oldest first."""
        return await self._documents(
            select(Document)
            .where(
                Document.namespace_id == namespace_id,
                Document.identity_hash == identity_hash,
                Document.status == DocumentStatus.INDEXED,
            )
            .order_by(Document.created_at, Document.id)
        )

    async def version_groups(self) -> list[tuple[uuid.UUID, str]]:
        """(namespace, identity) of every document indexed in more than one version."""
        stmt = (
            select(Document.namespace_id, Document.identity_hash)
            .where(Document.status == DocumentStatus.INDEXED, Document.identity_hash.is_not(None))
            .group_by(Document.namespace_id, Document.identity_hash)
            .having(func.count() > 1)
        )
        async with self._db.read() as conn:
            rows = await conn.execute(stmt)
            return [(ns, identity) for ns, identity in rows if identity is not None]

    async def document(self, document_id: uuid.UUID) -> DocumentRecord | None:
        found = await self._documents(select(Document).where(Document.id == document_id))
        return found[0] if found else None

    async def _documents(self, stmt: Select[Any]) -> list[DocumentRecord]:
        async with self._db.read() as conn:
            return [_doc(r) for r in await conn.execute(stmt)]

    async def create_document(self, new: DocumentInput) -> DocumentRecord | None:
        """Insert a document in ``processing``; None if its hash exists in the namespace."""
        row = {
            "id": new_id(),
            "status": DocumentStatus.PROCESSING,
            "created_at": utcnow(),
            **_columns(new),
        }
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_DOCUMENT, [row])
        except IntegrityError:
            return None
        return await self.document(row["id"])

    async def restart_document(self, document_id: uuid.UUID, again: DocumentInput) -> None:
        """Put a failed document back to processing with the retry's provenance (the same
        bytes, so the same namespace and hash). A retry is a new version: it competes for
        "newest" from now, not from its first try."""
        columns = _columns(again)
        del columns["namespace_id"], columns["file_hash"]
        async with self._db.transaction() as conn:
            await conn.execute(delete(Chunk).where(Chunk.document_id == document_id))
            await conn.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(
                    status=DocumentStatus.PROCESSING,
                    error=None,
                    chunk_count=0,
                    created_at=utcnow(),
                    **columns,
                )
            )

    async def add_chunks(self, document_id: uuid.UUID, chunks: Sequence[ChunkRow]) -> None:
        rows = [
            {
                "id": c.id,
                "document_id": document_id,
                "chunk_index": c.chunk_index,
                "content": c.content,
                "content_hash": c.content_hash,
                "start_offset": c.start_offset,
                "end_offset": c.end_offset,
                "page": c.page,
                "section": (c.section or "")[:512] or None,
                "vector_id": str(c.id),
                "sentence_vectors": c.sentence_vectors,
            }
            for c in chunks
        ]
        async with self._db.transaction() as conn:
            for start in range(0, len(rows), 2000):
                await conn.execute(_INSERT_CHUNKS, rows[start : start + 2000])

    async def mark_indexed(
        self, document_id: uuid.UUID, *, chunk_count: int, token_count: int
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(
                    status=DocumentStatus.INDEXED,
                    chunk_count=chunk_count,
                    token_count=token_count,
                    indexed_at=utcnow(),
                    error=None,
                )
            )

    async def mark_failed(self, document_id: uuid.UUID, reason: str) -> None:
        """Failed documents keep no chunks: SQL never points at vectors that may be absent."""
        async with self._db.transaction() as conn:
            await conn.execute(delete(Chunk).where(Chunk.document_id == document_id))
            await conn.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(status=DocumentStatus.FAILED, error=reason[:2000], chunk_count=0)
            )

    async def delete_document(self, document_id: uuid.UUID) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(delete(Document).where(Document.id == document_id))

    async def documents(
        self, namespace_ids: Sequence[uuid.UUID], *, status: DocumentStatus | None = None
    ) -> list[DocumentRecord]:
        stmt = select(Document).where(Document.namespace_id.in_(namespace_ids))
        if status:
            stmt = stmt.where(Document.status == status)
        return await self._documents(stmt.order_by(Document.created_at))

    async def documents_in_status(
        self, status: DocumentStatus, *, older_than: datetime | None = None
    ) -> list[DocumentRecord]:
        stmt = select(Document).where(Document.status == status)
        if older_than is not None:
            stmt = stmt.where(Document.created_at < older_than)
        return await self._documents(stmt)

    async def session_documents(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        """Indexed documents uploaded into a thread (asked on each of its follow-ups)."""
        async with self._db.read() as conn:
            rows = await conn.execute(_SESSION_DOCUMENTS, {"session_id": session_id})
            return [r[0] for r in rows]

    async def chunks(self, chunk_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ChunkView]:
        """Chunks by id with their document's title and link (only indexed documents).

        Reads that arrive while one is running share the next statement: a burst of questions
        costs a few statements instead of one each (``core.db.access``, coalesced reads)."""
        if not chunk_ids:
            return {}
        return await self._chunk_reads.fetch(None, tuple(chunk_ids))

    async def documents_without_sentence_vectors(self) -> list[uuid.UUID]:
        """Documents with chunks stored before their sentence vectors were."""
        stmt = select(_C.document_id).where(_C.sentence_vectors.is_(None)).distinct()
        async with self._db.read() as conn:
            return [row[0] for row in await conn.execute(stmt)]

    async def chunks_without_sentence_vectors(
        self, document_id: uuid.UUID, limit: int
    ) -> list[tuple[uuid.UUID, str]]:
        """Up to ``limit`` chunks (id, content) of a document stored without their sentence
        vectors."""
        stmt = (
            select(_C.id, _C.content)
            .where(_C.document_id == document_id, _C.sentence_vectors.is_(None))
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [(row.id, row.content) for row in await conn.execute(stmt)]

    async def set_sentence_vectors(self, packed: dict[uuid.UUID, bytes | None]) -> None:
        if not packed:
            return
        stmt = (
            update(table("chunks"))
            .where(_C.id == bindparam("chunk_id"))
            .values(sentence_vectors=bindparam("packed"))
        )
        async with self._db.transaction() as conn:
            await conn.execute(stmt, [{"chunk_id": i, "packed": b} for i, b in packed.items()])

    async def chunk_ids(self) -> dict[uuid.UUID, uuid.UUID]:
        """Every stored chunk id with its document id (for reconciliation)."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(Chunk.id, Chunk.document_id))
            return {cid: did for cid, did in rows}

    async def delete_chunks(self, chunk_ids: Sequence[uuid.UUID]) -> None:
        async with self._db.transaction() as conn:
            for start in range(0, len(chunk_ids), 1000):
                await conn.execute(
                    delete(Chunk).where(Chunk.id.in_(chunk_ids[start : start + 1000]))
                )

    # --- uploads -------------------------------------------------------------------------

    async def create_upload(self, upload: UploadInput) -> uuid.UUID:
        upload_id = new_id()
        row = {"id": upload_id, "created_at": utcnow(), **_columns(upload)}
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_UPLOAD, [row])
        return upload_id

    async def finish_upload(
        self, upload_id: uuid.UUID, *, document_id: uuid.UUID | None, error: str | None
    ) -> None:
        """Record how an upload ended; its document link is NULL when that document is gone
        already (a newer version of the file replaced it meanwhile)."""
        link = select(Document.id).where(Document.id == document_id).scalar_subquery()
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(
                    status=UploadStatus.FAILED if error else UploadStatus.COMPLETED,
                    error=error,
                    document_id=link if document_id is not None else None,
                    completed_at=utcnow(),
                )
            )

    async def documents_from_platform(
        self,
        platform: str,
        *,
        file_id: str | None = None,
        message_id: str | None = None,
        workspace: str | None = None,
    ) -> list[DocumentRecord]:
        """Documents made from a platform's file or message (of one workspace, when given).

        The workspace is the uploader's: in one organisation a document's namespace belongs to
        the organisation, not to the Slack team or Discord server its file came from."""
        if file_id is None and message_id is None:
            return []
        owner = aliased(Workspace)
        uploader = aliased(Workspace)
        stmt = (
            select(Document)
            .join(Namespace, Namespace.id == Document.namespace_id)
            .join(owner, owner.id == Namespace.workspace_id)
            .outerjoin(User, User.id == Document.uploaded_by)
            .outerjoin(uploader, uploader.id == User.workspace_id)
            .where(
                or_(
                    Document.source_platform == platform,
                    uploader.platform == platform,
                    owner.platform == platform,
                )
            )
        )
        if file_id is not None:
            stmt = stmt.where(Document.platform_file_id == file_id)
        if message_id is not None:
            stmt = stmt.where(Document.platform_message_id == message_id)
        if workspace is not None:
            stmt = stmt.where(
                or_(
                    (uploader.platform == platform) & (uploader.external_id == workspace),
                    (owner.platform == platform) & (owner.external_id == workspace),
                )
            )
        return await self._documents(stmt)

    async def documents_from_place(
        self,
        platform: str,
        *,
        workspace: str,
        channel_id: str,
        thread_id: str | None = None,
        sparing_message_id: str | None = None,
    ) -> list[DocumentRecord]:
        """Documents uploaded in a platform's channel (with its threads) or in one thread of it.

        A document keeps the channel and thread its file was dropped in (whose workspace is
        the uploader's), however long ago its conversation was forgotten; a channel's own
        files namespace holds only files dropped there, so those count too. The files of
        message ``sparing_message_id`` (not a saved thread) are left out."""
        place = (
            select(Channel.id)
            .join(Workspace, Workspace.id == Channel.workspace_id)
            .where(
                Workspace.platform == platform,
                Workspace.external_id == workspace,
                Channel.external_id == channel_id,
            )
        )
        if thread_id is not None:
            uploaded_there = Document.channel_id.in_(place) & (Document.thread_key == thread_id)
        else:
            own = select(Namespace.id).where(Namespace.channel_id.in_(place))
            uploaded_there = Document.channel_id.in_(place) | Document.namespace_id.in_(own)
        stmt = select(Document).where(uploaded_there)
        if sparing_message_id is not None:  # (NULLs spelt out: NOT of a NULL keeps no row)
            stmt = stmt.where(
                or_(
                    Document.platform_file_id.is_(None),
                    Document.platform_message_id.is_(None),
                    Document.platform_message_id != sparing_message_id,
                )
            )
        return await self._documents(stmt.order_by(Document.created_at))

    async def move_document(self, document_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
        """Put a document (with its chunks) into another namespace."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Document).where(Document.id == document_id).values(namespace_id=namespace_id)
            )
