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
from typing import Protocol

from core.db.knowledge import ChunkRow, KnowledgeStore
from core.db.records import DocumentInput, DocumentRecord, NamespaceRecord, UsageInput
from core.db.types import new_id, utcnow
from core.db.usage import UsageStore
from core.enums import DocumentStatus, UsageOperation
from core.errors import LorekeeperError, UnsupportedFile
from core.ingestion.extract import ExtractLimits, precheck
from core.ingestion.parsing import ParseJob
from core.ingestion.repair import (
    EMBED_BATCH,
    ReconcileReport,
    embedding_text,
    reconcile,
    vector_record,
)
from core.ingestion.sentences import SentenceFiller, never_asked
from core.ingestion.versions import Versions, identity_hash, settle
from core.ingestion.workers import InlineParser, Parser
from core.observability import Metrics, NullMetrics
from core.retrieval.base import Embedder, VectorStore
from core.retrieval.priority import Activity
from core.retrieval.sentences import with_sentence_vectors
from core.types import Progress
from core.wording import count

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], Awaitable[None]]
# A document in these statuses holds its file: the same bytes again are a duplicate (processing:
# another process is indexing it).
_HELD = (DocumentStatus.INDEXED, DocumentStatus.PROCESSING)
# A document of at most this many chunks gets its sentence vectors while it is indexed (about
# as many again short texts to embed, a second or two at most); a larger one is told "Indexed"
# first and filled in the background (core.ingestion.sentences).
INLINE_SENTENCES = 64


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ``ingest`` did.

    ``replaced``: the older versions of the file it deleted. ``superseded_by``: set when a newer
    version by the same uploader, ingested at the same time, was indexed too and so replaced
    this one. ``others_kept``: versions of the same name by other people, which the uploader
    may not replace: they stay, and this file is a separate document beside them.
    """

    document: DocumentRecord
    duplicate: bool
    chunks: int
    tokens: int
    seconds: float = 0.0
    replaced: tuple[uuid.UUID, ...] = ()
    superseded_by: uuid.UUID | None = None
    others_kept: int = 0


@dataclass(frozen=True, slots=True)
class Uploader:
    """Who dropped the file and from where, for the document's provenance, its ownership
    (only its uploader or an admin replaces it) and token accounting."""

    workspace_id: uuid.UUID
    user_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    thread_key: str | None = None  # the conversation in the channel (``sessions.thread_key``)
    author: str | None = None
    platform: str | None = None
    is_admin: bool = False  # may replace anyone's version (admins, the CLI)
    file_id: str | None = None  # the platform's ids of the file and of its message
    message_id: str | None = None

    def may_replace(self, version: DocumentRecord) -> bool:
        return self.is_admin or (
            version.uploaded_by is not None and version.uploaded_by == self.user_id
        )


class UploadAllowance(Protocol):
    """Daily upload allowances (``core.quota.QuotaService``)."""

    async def check_upload(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID | None, tokens: int, filename: str
    ) -> None:
        """Raise ``QuotaExceeded`` when indexing ``tokens`` more would pass an allowance."""
        ...


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

    def row(self) -> DocumentInput:
        return DocumentInput(
            namespace_id=self.namespace.id,
            file_hash=self.file_hash,
            title=self.filename[:512],
            identity_hash=self.identity_hash,
            source_url=self.source_url,
            source_platform=self.uploader.platform,
            source_author=self.uploader.author,
            mime_type=self.mime_type,
            size_bytes=self.size,
            session_id=self.session_id,
            channel_id=self.uploader.channel_id,
            thread_key=self.uploader.thread_key,
            uploaded_by=self.uploader.user_id,
            platform_file_id=self.uploader.file_id,
            platform_message_id=self.uploader.message_id,
        )


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
        parser: Parser | None = None,
        allowance: UploadAllowance | None = None,
        quiet: Callable[[], float] | None = None,
        indexing: Activity | None = None,
    ) -> None:
        """``quiet``: seconds since the latest question (``Retriever.quiet_seconds``), which
        the background fill of sentence vectors waits on (``core.ingestion.sentences``).
        ``indexing``: counts the documents being embedded, for the ``Retriever`` to see."""
        self._indexing = Activity() if indexing is None else indexing  # falsy when idle
        self._knowledge = knowledge
        self._usage = usage
        self._embedder = embedder
        self._sentences = SentenceFiller(knowledge, embedder, quiet=quiet or never_asked)
        self._vectors = vectors
        self._limits = limits or ExtractLimits()
        self._chunk_size = chunk_size
        self._chunk_overlap = chunk_overlap
        self._metrics = metrics or NullMetrics()
        self._parser = parser or InlineParser()  # the bot passes a WorkerPool
        self._allowance = allowance
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
        # off the loop: 20 MB take ~11 ms, and a burst of uploads would stall questions
        file_hash = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
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
            if existing is not None and existing.status in _HELD:
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
            chunks, tokens = await self._index(data, new, document, report)
        except BaseException as exc:
            await self._fail(document.id, exc)
            self._metrics.ingested(ok=False, chunks=0, seconds=time.perf_counter() - started)
            raise
        self._metrics.ingested(ok=True, chunks=chunks, seconds=time.perf_counter() - started)
        await self._usage.record(
            UsageInput(
                workspace_id=new.uploader.workspace_id,
                operation=UsageOperation.INGEST,
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
            document, status=DocumentStatus.INDEXED, chunk_count=chunks, token_count=tokens
        )
        versions = await self._replace_older(done, new.identity_hash, new.uploader)
        detail = count(chunks, "chunk")
        if versions.replaced:
            detail += f", replaced {len(versions.replaced)} older"
        await report(Progress("indexed", 1.0, detail))
        seconds = time.perf_counter() - started
        return IngestResult(
            done,
            False,
            chunks,
            tokens,
            seconds,
            versions.replaced,
            versions.superseded_by,
            versions.others_kept,
        )

    async def _replace_older(
        self, document: DocumentRecord, identity: str, uploader: Uploader | None = None
    ) -> Versions:
        """Apply the version rule (``core.ingestion.versions.settle``) to a document just
        indexed: delete the older versions its uploader may replace, or the document itself
        when its uploader indexed a newer one meanwhile. Without ``uploader`` (a repair),
        only the same uploader's versions are replaced."""
        try:
            found = await self._knowledge.versions(document.namespace_id, identity)
            outcome = settle(document, found, uploader.may_replace if uploader else None)
            for old in outcome.delete:
                await self.delete_document(old)
        except Exception:  # the new version is indexed: an old one left beside it is less harm
            log.exception("replacing older versions of document %s failed", document.id)
            return Versions()
        return outcome

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
            await self._knowledge.restart_document(existing.id, new.row())
            again = await self._knowledge.document(existing.id)
            assert again is not None
            return again, True
        created = await self._knowledge.create_document(new.row())
        if created is None:
            raced = await self._knowledge.document_by_hash(new.namespace.id, new.file_hash)
            assert raced is not None
            return raced, False
        return created, True

    async def _index(
        self, data: bytes, new: _NewDocument, document: DocumentRecord, report: ProgressCallback
    ) -> tuple[int, int]:
        filename, namespace = new.filename, new.namespace
        await report(Progress("extracting", 0.05, filename))
        parsed = await self._parser.parse(
            ParseJob(data, filename, self._limits, self._chunk_size, self._chunk_overlap)
        )
        chunks = parsed.chunks
        await report(Progress("chunking", 0.15, filename))
        title = parsed.title or filename
        texts = [embedding_text(title, c.section, c.text) for c in chunks]
        tokens = await asyncio.to_thread(self._embedder.count_tokens, texts)
        await self._check_allowance(new, tokens)
        vectors, packed = await self._embed(texts, [c.text for c in chunks], report)
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
                sentence_vectors=sentences,
            )
            for c, sentences in zip(chunks, packed, strict=True)
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
        if len(chunks) > INLINE_SENTENCES:
            self._sentences.poke(document.id)
        return len(rows), tokens

    async def _embed(
        self, texts: Sequence[str], contents: Sequence[str], report: ProgressCallback
    ) -> tuple[list[list[float]], list[bytes | None]]:
        """The chunks' vectors, and their sentence vectors when the document is small
        (``INLINE_SENTENCES``): in the same pass, so the first question after it (often posted
        with the file) weighs every sentence. A larger one's are filled in the background."""
        with self._indexing.running():  # questions meanwhile leave the model to it
            if len(texts) <= INLINE_SENTENCES:
                await report(Progress("embedding", 0.2, f"0/{len(texts)}"))
                vectors, packed = await with_sentence_vectors(
                    self._embedder.embed_documents, texts, contents
                )
                await report(Progress("embedding", 0.9, f"{len(texts)}/{len(texts)}"))
                return vectors, list(packed)
            out: list[list[float]] = []
            for start in range(0, len(texts), EMBED_BATCH):
                batch = texts[start : start + EMBED_BATCH]
                out.extend(await self._embedder.embed_documents(batch))
                done = min(len(texts), start + EMBED_BATCH) / max(1, len(texts))
                await report(Progress("embedding", 0.2 + 0.7 * done, f"{len(out)}/{len(texts)}"))
            return out, [None] * len(texts)

    async def _check_allowance(self, new: _NewDocument, tokens: int) -> None:
        """Before embedding: a person's upload must fit their and their workspace's allowance
        of upload tokens today (the CLI, which has no person, is not checked)."""
        uploader = new.uploader
        if self._allowance is not None and uploader.user_id is not None:
            await self._allowance.check_upload(
                uploader.workspace_id, uploader.user_id, tokens, new.filename
            )

    async def _fail(self, document_id: uuid.UUID, exc: BaseException) -> None:
        if isinstance(exc, UnsupportedFile):
            reason = exc.why
        elif isinstance(exc, LorekeeperError):  # a refusal in words (an allowance)
            reason = exc.reason
        else:
            reason = f"internal error ({type(exc).__name__})"
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

    async def move_document(
        self, document: DocumentRecord, target: NamespaceRecord, *, uploader: Uploader
    ) -> IngestResult:
        """Put an indexed document into another namespace (a conversation's file shared with a
        namespace), applying the version rule there with ``uploader``'s rights. The same bytes
        already indexed there make it a duplicate: the moved copy is deleted instead."""
        there = await self._knowledge.document_by_hash(target.id, document.file_hash)
        if there is not None and there.status in _HELD:
            await self.delete_document(document.id)
            return IngestResult(there, True, there.chunk_count, there.token_count)
        if there is not None:  # a failed copy of the same bytes holds the name: make room
            await self._knowledge.delete_document(there.id)
        await self._vectors.move_document(
            str(document.id), workspace_id=str(target.workspace_id), namespace_id=str(target.id)
        )
        await self._knowledge.move_document(document.id, target.id)
        moved = replace(document, namespace_id=target.id)
        versions = await self._replace_older(moved, document.identity_hash or "", uploader)
        return IngestResult(
            moved,
            False,
            document.chunk_count,
            document.token_count,
            replaced=versions.replaced,
            superseded_by=versions.superseded_by,
            others_kept=versions.others_kept,
        )

    async def delete_namespace(self, namespace: NamespaceRecord) -> None:
        await self._vectors.delete_namespace(str(namespace.id))
        await self._knowledge.delete_namespace(namespace.id)

    async def recover(self, *, stuck_after: timedelta = timedelta(0)) -> int:
        """Fail documents left in ``processing`` (by a crash); returns how many."""
        stuck = await self._knowledge.documents_in_status(
            DocumentStatus.PROCESSING, older_than=utcnow() - stuck_after
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
        report = await reconcile(
            self._knowledge, self._vectors, self._embedder, self._replace_older
        )
        filled = await self._sentences.fill(yielding=True)
        return replace(report, sentence_vectors_filled=filled)

    async def fill_sentence_vectors(self) -> int:
        """Embed and store, now, the sentences of every chunk stored without them (what the
        background fill does after an upload: ``core.ingestion.sentences``)."""
        return await self._sentences.fill()

    async def sentences_settled(self) -> None:
        """Wait until the background fill started by uploads is done."""
        await self._sentences.settled()

    async def close(self) -> None:
        await self._sentences.close()
