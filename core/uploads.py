"""Files dropped into a thread: indexed into the channel's namespace, linked to the session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.context import ContextResolver
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.errors import LorekeeperError, UnsupportedFile
from core.ingestion.service import IngestionService, IngestResult, Uploader
from core.types import IncomingFile, IncomingMessage, Progress, Reply
from core.wording import count

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
    replaced: int = 0  # older versions of the file that this upload deleted


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
                # no identity: the platform's link changes with every upload, so a file
                # replaces the earlier upload of the same name in the namespace
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
        # finish_upload links the document only if it still exists (a newer version may have
        # replaced it meanwhile)
        await self._knowledge.finish_upload(upload_id, document_id=result.document.id, error=None)
        return UploadOutcome(
            file.filename,
            True,
            _message(file.filename, namespace.name, result),
            result.chunks,
            result.duplicate,
            namespace.name,
            len(result.replaced),
        )

    async def file_deleted(self, file_id: str) -> int:
        """A platform deleted a file: delete its documents, chunks and vectors."""
        ids = await self._knowledge.documents_by_platform_file(file_id)
        for document_id in ids:
            await self._ingestion.delete_document(document_id)
        return len(ids)


def _message(filename: str, namespace: str, result: IngestResult) -> str:
    """What the chat says about an indexed file (every adapter posts these words as they are)."""
    chunks = count(result.chunks, "chunk")
    if result.duplicate:
        return f"{filename} is already indexed in {namespace} ({chunks})."
    text = f"Indexed {filename} into {namespace}: {chunks}."
    if result.superseded_by:
        return text + f" A newer {filename}, uploaded at the same time, then replaced it."
    if len(result.replaced) == 1:
        return text + f" It replaced the earlier version of {filename}."
    if result.replaced:
        return text + f" It replaced {len(result.replaced)} earlier versions of {filename}."
    return text
