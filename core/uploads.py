"""Files dropped into a thread: indexed into the channel's namespace, linked to the session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.context import ContextResolver
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.errors import LorekeeperError, UnsupportedFile
from core.ingestion.service import IngestionService, Uploader
from core.types import IncomingFile, IncomingMessage, Progress, Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """What happened to one file, in words a chat can show."""

    filename: str
    ok: bool
    message: str
    chunks: int = 0
    duplicate: bool = False
    namespace: str | None = None


class UploadService:
    """Indexes attachments; every outcome (even a crash) ends as a stored status and a message."""

    def __init__(
        self,
        *,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        ingestion: IngestionService,
        resolver: ContextResolver,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._ingestion = ingestion
        self._resolver = resolver

    async def claim(self, message: IncomingMessage) -> bool:
        """True the first time a message's files arrive; False when a platform redelivers it."""
        return await self._identity.record_event(
            message.platform.value, f"upload:{message.event_id}"
        )

    def precheck(self, file: IncomingFile) -> str | None:
        """Why a file will be refused, judged from its name and size before downloading it."""
        try:
            self._ingestion.precheck(file.filename, file.size)
        except UnsupportedFile as exc:
            return exc.user_message
        return None

    async def ingest(
        self, message: IncomingMessage, file: IncomingFile, data: bytes, reply: Reply
    ) -> UploadOutcome:
        ctx = await self._resolver.resolve(message)
        namespace = ctx.namespaces[0]
        upload_id = await self._knowledge.create_upload(
            {
                "user_id": ctx.user.id,
                "original_filename": file.filename[:512],
                "platform_file_id": file.file_id,
                "size_bytes": len(data),
                "mime_type": file.mime_type,
                "status": "processing",
            }
        )
        uploader = Uploader(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            channel_id=ctx.channel.id,
            author=message.author_name or message.author_id,
            platform=message.platform.value,
        )

        async def progress(p: Progress) -> None:
            await reply.progress(p)

        try:
            result = await self._ingestion.ingest(
                data,
                file.filename,
                namespace=namespace,
                uploader=uploader,
                session_id=ctx.session.id,
                source_url=file.url,
                mime_type=file.mime_type,
                progress=progress,
            )
        except LorekeeperError as exc:
            await self._knowledge.finish_upload(upload_id, document_id=None, error=exc.reason)
            return UploadOutcome(file.filename, False, exc.user_message, namespace=namespace.name)
        except Exception as exc:
            log.exception("upload of %s failed", file.filename)
            await self._knowledge.finish_upload(
                upload_id, document_id=None, error=f"internal error ({type(exc).__name__})"
            )
            return UploadOutcome(
                file.filename,
                False,
                f"Something went wrong while indexing {file.filename}; it was not added.",
                namespace=namespace.name,
            )
        await self._knowledge.finish_upload(upload_id, document_id=result.document.id, error=None)
        if result.duplicate:
            text = (
                f"{file.filename} is already indexed in {namespace.name} ({result.chunks} chunks)."
            )
        else:
            text = f"Indexed {file.filename} into {namespace.name}: {result.chunks} chunks."
        return UploadOutcome(
            file.filename, True, text, result.chunks, result.duplicate, namespace.name
        )

    async def file_deleted(self, file_id: str) -> int:
        """A platform deleted a file: delete its documents, chunks and vectors."""
        ids = await self._knowledge.documents_by_platform_file(file_id)
        for document_id in ids:
            await self._ingestion.delete_document(document_id)
        return len(ids)
