"""IngestionService: files -> chunks -> vectors, with SQL as the source of truth.

A document goes ``processing`` -> chunk rows -> vectors -> ``indexed``. Any failure leaves it
``failed`` with the reason, no chunk rows and no vectors. ``recover()`` fails documents a crash
left in ``processing``; ``reconcile()`` repairs SQL and Milvus when they disagree
(``core.ingestion.repair``). Once a changed file is indexed, the older versions of it (same
identity, see ``core.ingestion.versions``) are deleted; until then they stay searchable.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from core.db.knowledge import ChunkRow, KnowledgeStore
from core.db.records import DocumentRecord, NamespaceRecord, UsageInput
from core.db.types import new_id, utcnow
from core.db.usage import UsageStore
from core.errors import UnsupportedFile
from core.ingestion.chunking import chunk_text
from core.ingestion.extract import ExtractLimits, extract, precheck
from core.ingestion.repair import (
    EMBED_BATCH,
    ReconcileReport,
    embedding_text,
    reconcile,
    vector_record,
)
from core.ingestion.versions import identity_hash, newest
from core.observability import Metrics, NullMetrics
from core.retrieval.base import Embedder, VectorStore
from core.types import Progress
from core.wording import count

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ``ingest`` did.

    ``replaced``: the older versions of the file it deleted. ``superseded_by``: set when a newer
    version, ingested at the same time, was indexed too and so replaced this one.
    """

    document: DocumentRecord
    duplicate: bool
    chunks: int
    tokens: int
    seconds: float = 0.0
    replaced: tuple[uuid.UUID, ...] = ()
    superseded_by: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Uploader:
    """Who dropped the file, for the document's provenance and token accounting."""

    workspace_id: uuid.UUID
    user_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    author: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class _NewDocument:
    """The provenance of a file being ingested: the columns of its document row."""

    namespace: NamespaceRecord
    filename: str
    file_hash: str
    identity_hash: str
    uploader: Uploader
    session_id: uuid.UUID | None
    source_url: str | None
    mime_type: str | None
    size: int

    def columns(self) -> dict[str, object]:
        return {
            "title": self.filename[:512],
            "identity_hash": self.identity_hash,
            "source_url": self.source_url,
            "source_platform": self.uploader.platform,
            "source_author": self.uploader.author,
            "mime_type": self.mime_type,
            "size_bytes": self.size,
            "session_id": self.session_id,
        }


async def _noop(_: Progress) -> None:
    return None


class IngestionService:
    """Indexes files into namespaces and keeps SQL and the vector store consistent."""

    def __init__(
        self,
        *,
        knowledge: KnowledgeStore,
        usage: UsageStore,
        embedder: Embedder,
        vectors: VectorStore,
        limits: ExtractLimits | None = None,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        metrics: Metrics | None = None,
    ) -> None:
        self._knowledge = knowledge
        self._usage = usage
        self._embedder = embedder
        self._vectors = vectors
        self._limits = limits or ExtractLimits()
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap
        self._metrics = metrics or NullMetrics()
        # The same bytes dropped twice at once in one process: the second waits for the first.
        self._inflight: dict[tuple[uuid.UUID, str], asyncio.Future[IngestResult]] = {}

    async def ingest(
        self,
        source: bytes | Path,
        filename: str,
        *,
        namespace: NamespaceRecord,
        uploader: Uploader,
        session_id: uuid.UUID | None = None,
        source_url: str | None = None,
        identity: str | None = None,
        mime_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Index one file. Raises ``UnsupportedFile`` (nothing half-written) when it can't.

        The same bytes already in the namespace are a duplicate: the stored document comes back
        and nothing is indexed or replaced. Otherwise, once the new document is indexed, the
        older indexed versions of it in the namespace are deleted (``IngestResult.replaced``).
        A version is identified by ``identity`` (the CLI passes the file's ``file:`` URL) or,
        when None, by ``filename`` (chat uploads, whose links change with every upload); see
        ``core.ingestion.versions``. If the new file fails, the old version stays as it was.
        """
        report = progress or _noop
        started = time.perf_counter()
        await report(Progress("reading", 0.0, filename))
        data = await self._read(source, filename)
        file_hash = hashlib.sha256(data).hexdigest()
        key = (namespace.id, file_hash)
        running = self._inflight.get(key)
        if running is not None:
            first = await asyncio.shield(running)
            await report(Progress("duplicate", 1.0, filename))
            return replace(first, duplicate=True, replaced=())
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future  # claimed before the next await: no second owner
        try:
            existing = await self._knowledge.document_by_hash(namespace.id, file_hash)
            if existing is not None and existing.status in ("indexed", "processing"):
                # processing here means another process is indexing it (recover() fails leftovers)
                await report(Progress("duplicate", 1.0, filename))
                result = IngestResult(existing, True, existing.chunk_count, existing.token_count)
                future.set_result(result)
                return result
            new = _NewDocument(
                namespace=namespace,
                filename=filename,
                file_hash=file_hash,
                identity_hash=identity_hash(filename, identity),
                uploader=uploader,
                session_id=session_id,
                source_url=source_url,
                mime_type=mime_type,
                size=len(data),
            )
            result = await self._ingest_new(data, new, existing, report=report, started=started)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting duplicates re-raise it themselves
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _ingest_new(
        self,
        data: bytes,
        new: _NewDocument,
        existing: DocumentRecord | None,
        *,
        report: ProgressCallback,
        started: float,
    ) -> IngestResult:
        document, mine = await self._start_document(existing, new)
        if not mine:  # another process won the race for the same bytes
            return IngestResult(document, True, document.chunk_count, document.token_count)
        try:
            chunks, tokens = await self._index(data, new.filename, document, new.namespace, report)
        except BaseException as exc:
            await self._fail(document.id, exc)
            self._metrics.ingested(ok=False, chunks=0, seconds=time.perf_counter() - started)
            raise
        self._metrics.ingested(ok=True, chunks=chunks, seconds=time.perf_counter() - started)
        await self._usage.record(
            UsageInput(
                workspace_id=new.uploader.workspace_id,
                operation="embedding",
                model=self._embedder.model_name,
                user_id=new.uploader.user_id,
                channel_id=new.uploader.channel_id,
                namespace_id=new.namespace.id,
                embedding_tokens=tokens,
                latency_ms=int((time.perf_counter() - started) * 1000),
            )
        )
        # gone already when a newer version, indexed meanwhile, replaced this one
        done = await self._knowledge.document(document.id) or replace(
            document, status="indexed", chunk_count=chunks, token_count=tokens
        )
        replaced, superseded_by = await self._replace_older(done, new.identity_hash)
        detail = count(chunks, "chunk") + (f", replaced {len(replaced)} older" if replaced else "")
        await report(Progress("indexed", 1.0, detail))
        seconds = time.perf_counter() - started
        return IngestResult(done, False, chunks, tokens, seconds, replaced, superseded_by)

    async def _replace_older(
        self, document: DocumentRecord, identity: str
    ) -> tuple[tuple[uuid.UUID, ...], uuid.UUID | None]:
        """Delete every indexed version of the document but the newest (maybe this one).

        Returns the versions this document replaced, and the newer version that replaced it
        (here, or already: every version applies this rule once it is indexed).
        """
        deleted: list[uuid.UUID] = []
        keep = document
        try:
            versions = await self._knowledge.versions(document.namespace_id, identity)
            keep = newest(versions or [document])
            for old in versions:
                if old.id != keep.id:
                    await self.delete_document(old.id)
                    deleted.append(old.id)
        except Exception:  # the new version is indexed: an old one left beside it is less harm
            log.exception("replacing older versions of document %s failed", document.id)
        if keep.id != document.id:
            return (), keep.id
        return tuple(deleted), None

    async def _read(self, source: bytes | Path, filename: str) -> bytes:
        if isinstance(source, bytes):
            precheck(filename, len(source), limits=self._limits)
            return source
        precheck(filename, (await asyncio.to_thread(source.stat)).st_size, limits=self._limits)
        data = await asyncio.to_thread(source.read_bytes)
        precheck(filename, len(data), limits=self._limits)  # it may have grown meanwhile
        return data

    def precheck(self, filename: str, size: int) -> None:
        """Refuse a file by its name and declared size before it is downloaded."""
        precheck(filename, size, limits=self._limits)

    async def _start_document(
        self, existing: DocumentRecord | None, new: _NewDocument
    ) -> tuple[DocumentRecord, bool]:
        """The document row to index into, and whether this call owns it."""
        if existing is not None:  # failed or deleted before: index the same bytes again
            await self._vectors.delete_documents([str(existing.id)])
            # a retry is a new version: it competes for "newest" from now, not from its first try
            await self._knowledge.restart_document(
                existing.id, created_at=utcnow(), **new.columns()
            )
            again = await self._knowledge.document(existing.id)
            assert again is not None
            return again, True
        created = await self._knowledge.create_document(
            {"namespace_id": new.namespace.id, "file_hash": new.file_hash, **new.columns()}
        )
        if created is None:
            raced = await self._knowledge.document_by_hash(new.namespace.id, new.file_hash)
            assert raced is not None
            return raced, False
        return created, True

    async def _index(
        self,
        data: bytes,
        filename: str,
        document: DocumentRecord,
        namespace: NamespaceRecord,
        report: ProgressCallback,
    ) -> tuple[int, int]:
        await report(Progress("extracting", 0.05, filename))
        extracted = await asyncio.to_thread(extract, data, filename, limits=self._limits)
        await report(Progress("chunking", 0.15, filename))
        chunks = await asyncio.to_thread(
            chunk_text,
            extracted.text,
            size=self._chunk_size,
            overlap=self._chunk_overlap,
            pages=extracted.pages,
        )
        title = extracted.title or filename
        texts = [embedding_text(title, c.section, c.text) for c in chunks]
        vectors = await self._embed(texts, report)
        tokens = await asyncio.to_thread(self._embedder.count_tokens, texts)
        rows = [
            ChunkRow(
                id=new_id(),
                chunk_index=c.index,
                content=c.text,
                content_hash=hashlib.sha256(c.text.encode()).hexdigest(),
                start_offset=c.start,
                end_offset=c.end,
                page=c.page,
                section=c.section,
            )
            for c in chunks
        ]
        await report(Progress("storing", 0.92, count(len(rows), "chunk")))
        await self._knowledge.add_chunks(document.id, rows)
        await self._vectors.upsert(
            [
                vector_record(r.id, namespace.workspace_id, namespace.id, document.id, text, vec)
                for r, text, vec in zip(rows, texts, vectors, strict=True)
            ]
        )
        await self._knowledge.mark_indexed(document.id, chunk_count=len(rows), token_count=tokens)
        return len(rows), tokens

    async def _embed(self, texts: Sequence[str], report: ProgressCallback) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            out.extend(await self._embedder.embed_documents(texts[start : start + EMBED_BATCH]))
            done = min(len(texts), start + EMBED_BATCH) / max(1, len(texts))
            await report(Progress("embedding", 0.2 + 0.7 * done, f"{len(out)}/{len(texts)}"))
        return out

    async def _fail(self, document_id: uuid.UUID, exc: BaseException) -> None:
        reason = (
            exc.why
            if isinstance(exc, UnsupportedFile)
            else f"internal error ({type(exc).__name__})"
        )
        if not isinstance(exc, UnsupportedFile):
            log.error("ingestion of document %s failed", document_id, exc_info=exc)
        try:
            await asyncio.shield(self._cleanup(document_id, reason))
        except Exception:  # the original error matters more; reconcile() repairs the rest
            log.exception("cleanup after failed ingestion of %s also failed", document_id)

    async def _cleanup(self, document_id: uuid.UUID, reason: str) -> None:
        await self._vectors.delete_documents([str(document_id)])
        await self._knowledge.mark_failed(document_id, reason)

    async def delete_document(self, document_id: uuid.UUID) -> None:
        """Remove a document, its chunks and its vectors."""
        # SQL first: a crash in between leaves orphan vectors, which search ignores and
        # reconcile() deletes; the other order would have reconcile() restore the document.
        await self._knowledge.delete_document(document_id)
        await self._vectors.delete_documents([str(document_id)])

    async def delete_namespace(self, namespace: NamespaceRecord) -> None:
        await self._vectors.delete_namespace(str(namespace.id))
        await self._knowledge.delete_namespace(namespace.id)

    async def recover(self, *, stuck_after: timedelta = timedelta(0)) -> int:
        """Fail documents left in ``processing`` (by a crash); returns how many."""
        stuck = await self._knowledge.documents_in_status(
            "processing", older_than=utcnow() - stuck_after
        )
        for doc in stuck:
            await self._cleanup(
                doc.id, "indexing was interrupted by a restart; upload the file again"
            )
        if stuck:
            log.warning("failed %d document(s) left in processing", len(stuck))
        return len(stuck)

    async def reconcile(self) -> ReconcileReport:
        """Repair SQL and Milvus where they disagree (``core.ingestion.repair``)."""
        return await reconcile(self._knowledge, self._vectors, self._embedder, self._replace_older)
