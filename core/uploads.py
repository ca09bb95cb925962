"""Files dropped into a conversation: indexed where an admin said (the channel's upload
namespace) or else into the conversation's own files, owned by their uploader, audited."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.context import ContextResolver, ConversationContext
from core.db.audit import AuditStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import DocumentRecord, NamespaceRecord, UploadInput
from core.errors import LorekeeperError, NotEnabled, UnsupportedFile
from core.ingestion.service import IngestionService, IngestResult, ProgressCallback, Uploader
from core.threads import ThreadPost, render_thread
from core.types import (
    IncomingFile,
    IncomingMessage,
    Progress,
    SaveChoice,
    SaveChoices,
    Status,
    UploadOutcome,
)
from core.wording import SAVE_THREAD_REFUSED, UPLOAD_FAILED, count

log = logging.getLogger(__name__)
SHARE_CHOICES = 3  # namespaces offered as buttons under a conversation's file
HERE = "~"  # a saved thread's choice of the conversation's own files (no namespace name has ~)
HERE_LABEL = "This conversation only"


@dataclass(frozen=True, slots=True)
class _Destinations:
    """Where one person may save a thread of one place: the shared namespaces (the place's
    upload namespace first, when it is one of them) and the place's default (a namespace's
    name, :data:`HERE`, or None when they may not save where the place's files go)."""

    shared: tuple[NamespaceRecord, ...]
    default: str | None


class UploadService:
    """Indexes attachments; every outcome (even a crash) ends as a stored status, an audit row
    and a message."""

    def __init__(
        self,
        *,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        ingestion: IngestionService,
        resolver: ContextResolver,
        audit: AuditStore,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._ingestion = ingestion
        self._resolver = resolver
        self._audit = audit

    async def claim(self, message: IncomingMessage) -> bool:
        """True when this delivery of a message's files is to be indexed: the first, or a
        redelivery after its claimant died (``IdentityStore.claim_event``); False otherwise."""
        return await self._identity.claim_event(message.platform.value, _upload_event(message))

    async def finished(self, message: IncomingMessage) -> None:
        """Every file of a claimed message is handled (indexed or refused)."""
        await self._identity.complete_event(message.platform.value, _upload_event(message))

    def precheck(self, file: IncomingFile) -> str | None:
        """Why a file will be refused, judged from its name and size before downloading it."""
        try:
            self._ingestion.precheck(file.filename, file.size)
        except UnsupportedFile as exc:
            return exc.user_message
        return None

    async def target(self, ctx: ConversationContext) -> NamespaceRecord:
        """Where a file dropped in this place goes: the channel's upload namespace, else the
        conversation's own files (readable only there)."""
        chosen = await self._knowledge.upload_namespace(ctx.channel.id)
        if chosen is not None:
            return chosen
        return await self._knowledge.ensure_conversation_namespace(
            ctx.place.knowledge.id, ctx.channel.id
        )

    async def ingest(
        self, message: IncomingMessage, file: IncomingFile, data: bytes, reply: Status
    ) -> UploadOutcome:
        try:
            ctx = await self._resolver.resolve(message)
        except NotEnabled as exc:
            return UploadOutcome(file.filename, False, exc.user_message)
        namespace = await self.target(ctx)
        upload_id = await self._knowledge.create_upload(
            UploadInput(
                original_filename=file.filename[:512],
                user_id=ctx.user.id,
                platform_file_id=file.file_id,
                size_bytes=len(data),
                mime_type=file.mime_type,
            )
        )
        uploader = Uploader(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            channel_id=ctx.channel.id,
            thread_key=ctx.session.thread_key,
            author=message.author_name or message.author_id,
            platform=message.platform.value,
            is_admin=message.author_is_admin,
            file_id=file.file_id,
            message_id=message.message_id,
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
                # replaces the earlier upload of the same name (its uploader's) in the namespace
                source_url=file.url,
                mime_type=file.mime_type,
                progress=progress,
            )
        except LorekeeperError as exc:
            await self._failed(ctx, upload_id, file, namespace, exc.reason)
            return UploadOutcome(file.filename, False, exc.user_message, namespace=namespace.label)
        except Exception as exc:
            log.exception("upload of %s failed", file.filename)
            await self._failed(
                ctx, upload_id, file, namespace, f"internal error ({type(exc).__name__})"
            )
            return UploadOutcome(
                file.filename,
                False,
                UPLOAD_FAILED.format(name=file.filename),
                namespace=namespace.label,
            )
        # finish_upload links the document only if it still exists (a newer version may have
        # replaced it meanwhile)
        await self._knowledge.finish_upload(upload_id, document_id=result.document.id, error=None)
        await self._audit_indexed(ctx, file, namespace, result)
        return _indexed(
            file.filename, namespace, result, await self._share_choices(ctx, namespace, result)
        )

    async def _share_choices(
        self, ctx: ConversationContext, namespace: NamespaceRecord, result: IngestResult
    ) -> tuple[str, ...]:
        if not namespace.is_conversation or result.superseded_by is not None:
            return ()
        # promotion stays within the workspace: a Discord DM reads other workspaces' namespaces
        shared = [
            ns.name
            for ns in ctx.namespaces
            if not ns.is_conversation and ns.workspace_id == ctx.place.knowledge.id
        ]
        return tuple(shared[:SHARE_CHOICES])

    async def _failed(
        self,
        ctx: ConversationContext,
        upload_id: uuid.UUID,
        file: IncomingFile,
        namespace: NamespaceRecord,
        reason: str,
    ) -> None:
        await self._knowledge.finish_upload(upload_id, document_id=None, error=reason)
        await self.audit(ctx, "upload", "failed", file.filename, namespace, detail=reason)

    async def _audit_indexed(
        self,
        ctx: ConversationContext,
        file: IncomingFile,
        namespace: NamespaceRecord,
        result: IngestResult,
    ) -> None:
        outcome = "duplicate" if result.duplicate else "ok"
        await self.audit(
            ctx, "upload", outcome, file.filename, namespace, document_id=result.document.id
        )
        for old in result.replaced:
            await self.audit(
                ctx,
                "replace",
                "ok",
                file.filename,
                namespace,
                document_id=old,
                detail=f"replaced by {result.document.id}",
            )

    async def audit(
        self,
        ctx: ConversationContext,
        command: str,
        outcome: str,
        filename: str,
        namespace: NamespaceRecord,
        *,
        document_id: uuid.UUID | None = None,
        detail: str | None = None,
    ) -> None:
        """One audit row for something done to a document in a conversation."""
        await self._audit.record(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            actor=ctx.user.external_id,
            command=command,
            arguments={
                "filename": filename[:512],
                "namespace": namespace.name,
                "channel": ctx.channel.external_id,
                "document_id": str(document_id) if document_id else None,
            },
            outcome=outcome,
            detail=detail,
        )

    async def save_thread(
        self,
        message: IncomingMessage,
        posts: Sequence[ThreadPost],
        *,
        permalink: str,
        root_id: str,
        into: str | None = None,
    ) -> UploadOutcome:
        """Save a thread's people's ``posts`` as a document in the namespace ``into`` names
        (a value of :meth:`save_choices`; None: where this place's files go).

        ``message`` is the request (its author the person saving, ``author_is_admin`` filled
        in). Whether they may save there is decided here again, as for the choices: a dialog's
        answer is only a wish. The thread's ``permalink`` is the document's link and its
        identity, so saving again replaces the earlier version; ``root_id`` is its platform
        message id, so deleting the thread's root deletes the document."""
        try:
            ctx = await self._resolver.resolve(message)
        except NotEnabled as exc:
            return UploadOutcome("the thread", False, exc.user_message)
        namespace = await self._save_target(ctx, message.author_is_admin, into)
        if namespace is None:
            await self._audit.record(
                workspace_id=ctx.workspace.id,
                user_id=ctx.user.id,
                actor=ctx.user.external_id,
                command="save-thread",
                arguments={"namespace": into, "channel": ctx.channel.external_id},
                outcome="refused",
                detail="not an admin or the namespace's owner",
            )
            return UploadOutcome("the thread", False, SAVE_THREAD_REFUSED)
        saved = render_thread(posts)
        data = saved.markdown.encode()
        file = IncomingFile(root_id, saved.filename, len(data), "text/markdown", permalink)
        uploader = Uploader(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            channel_id=ctx.channel.id,
            thread_key=ctx.session.thread_key,
            author=message.author_name or message.author_id,
            platform=message.platform.value,
            # an admin or the namespace's owner (checked above) replaces whoever saved it last
            is_admin=True,
            message_id=root_id,
        )
        try:
            result = await self._ingestion.ingest(
                data,
                saved.filename,
                namespace=namespace,
                uploader=uploader,
                session_id=ctx.session.id,
                source_url=permalink,
                identity=permalink,
                mime_type="text/markdown",
            )
        except LorekeeperError as exc:
            await self.audit(
                ctx, "save-thread", "failed", file.filename, namespace, detail=exc.reason
            )
            return UploadOutcome(file.filename, False, exc.user_message, namespace=namespace.label)
        await self._audit_indexed(ctx, file, namespace, result)
        return _indexed(file.filename, namespace, result)

    async def save_choices(self, message: IncomingMessage, *, limit: int) -> SaveChoices:
        """Where the author of ``message`` (``author_is_admin`` filled in) may save a thread of
        its place, for a dialog of at most ``limit`` choices: an admin into every shared
        namespace of the place's knowledge, anyone else into the ones they own, and either
        into the conversation's own files (readable only where the thread already is). The
        place's upload namespace comes first, then the conversation's files, then the rest by
        name; the place's default is chosen when it is offered. Nowhere: a refusal."""
        try:
            ctx = await self._resolver.resolve(message)
        except NotEnabled as exc:
            return SaveChoices(refusal=exc.user_message)
        where = await self._destinations(ctx, message.author_is_admin)
        if where is None:
            return SaveChoices(refusal=SAVE_THREAD_REFUSED, suggest=not ctx.place.is_direct)
        named = [SaveChoice(ns.name, ns.name) for ns in where.shared]
        first = 1 if where.default not in (None, HERE) else 0
        ordered = [*named[:first], SaveChoice(HERE, HERE_LABEL), *named[first:]]
        return SaveChoices(tuple(ordered[:limit]), chosen=where.default)

    async def _destinations(self, ctx: ConversationContext, is_admin: bool) -> _Destinations | None:
        """Where the person of ``ctx`` may save a thread (see :meth:`save_choices`); None:
        nowhere (neither an admin nor an owner)."""
        upload = await self._knowledge.upload_namespace(ctx.channel.id)
        listed = await self._knowledge.list_namespaces(ctx.place.knowledge.id)
        candidates = [upload] if upload is not None else []
        candidates += [ns for ns, _ in listed if upload is None or ns.id != upload.id]
        shared = tuple(ns for ns in candidates if is_admin or ns.owner_id == ctx.user.id)
        if not (shared or is_admin):
            return None
        if upload is None:
            return _Destinations(shared, HERE)
        offered = bool(shared) and shared[0].id == upload.id
        return _Destinations(shared, upload.name if offered else None)

    async def _save_target(
        self, ctx: ConversationContext, is_admin: bool, into: str | None
    ) -> NamespaceRecord | None:
        """The namespace ``into`` names (None: the place's default) if the person of ``ctx``
        may save a thread there, else None."""
        where = await self._destinations(ctx, is_admin)
        chosen = into or (where.default if where is not None else None)
        if where is None or chosen is None:
            return None
        if chosen == HERE:
            return await self._knowledge.ensure_conversation_namespace(
                ctx.place.knowledge.id, ctx.channel.id
            )
        return next((ns for ns in where.shared if ns.name == chosen), None)

    async def load(
        self,
        source: bytes | Path,
        filename: str,
        *,
        namespace: NamespaceRecord,
        workspace_id: uuid.UUID,
        actor: str,
        identity: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """An operator's load into a namespace (``lorekeeper ingest``): indexed as an admin's,
        versioned by ``identity`` (an edited file replaces its own older version only) and
        audited like a chat upload. Raises what ingestion raises, after auditing it."""
        uploader = Uploader(
            workspace_id=workspace_id, author=actor, platform="console", is_admin=True
        )
        arguments = {"filename": filename[:512], "namespace": namespace.name, "source": identity}
        try:
            result = await self._ingestion.ingest(
                source,
                filename,
                namespace=namespace,
                uploader=uploader,
                source_url=identity,
                identity=identity,
                progress=progress,
            )
        except LorekeeperError as exc:
            await self._audit.record(
                workspace_id=namespace.workspace_id,
                user_id=None,
                actor=actor,
                command="ingest",
                arguments=arguments,
                outcome="failed",
                detail=exc.reason,
            )
            raise
        for command, document_id in [
            ("ingest", result.document.id),
            *(("replace", old) for old in result.replaced),
        ]:
            await self._audit.record(
                workspace_id=namespace.workspace_id,
                user_id=None,
                actor=actor,
                command=command,
                arguments={**arguments, "document_id": str(document_id)},
                outcome="duplicate" if result.duplicate else "ok",
            )
        return result

    async def deleted_on_platform(
        self,
        platform: str,
        *,
        file_id: str | None = None,
        message_id: str | None = None,
        workspace: str | None = None,
    ) -> int:
        """A platform deleted a file (or the message that carried files): delete the documents
        made from it, with their chunks and vectors, however old they are."""
        docs = await self._knowledge.documents_from_platform(
            platform, file_id=file_id, message_id=message_id, workspace=workspace
        )
        return await self._delete_from_platform(platform, docs, "deleted on the platform")

    async def removed_on_platform(
        self,
        platform: str,
        *,
        message_id: str,
        kept_file_ids: Sequence[str],
        workspace: str | None = None,
    ) -> int:
        """A message was edited and now carries only ``kept_file_ids``: delete the documents
        made from the files it no longer carries (a thread saved under its id is no file of
        it and stays)."""
        docs = await self._knowledge.documents_from_platform(
            platform, message_id=message_id, workspace=workspace
        )
        kept = set(kept_file_ids)
        gone = [
            d for d in docs if d.platform_file_id is not None and d.platform_file_id not in kept
        ]
        return await self._delete_from_platform(platform, gone, "removed from its message")

    async def place_deleted_on_platform(
        self,
        platform: str,
        *,
        workspace: str,
        channel_id: str,
        thread_id: str | None = None,
        surviving_message_id: str | None = None,
    ) -> int:
        """A channel (``thread_id`` None: with its threads) or one thread of it was deleted:
        delete the documents uploaded there. ``surviving_message_id``: a message the deletion
        left where it was (the message a thread was started from stays in its channel); its
        files stay."""
        docs = await self._knowledge.documents_from_place(
            platform,
            workspace=workspace,
            channel_id=channel_id,
            thread_id=thread_id,
            sparing_message_id=surviving_message_id,
        )
        detail = "its thread was deleted" if thread_id else "its channel was deleted"
        return await self._delete_from_platform(platform, docs, f"{detail} on the platform")

    async def _delete_from_platform(
        self, platform: str, docs: Sequence[DocumentRecord], detail: str
    ) -> int:
        for doc in docs:
            await self._ingestion.delete_document(doc.id)
            await self._audit_platform_delete(platform, doc, detail)
        return len(docs)

    async def _audit_platform_delete(self, platform: str, doc: DocumentRecord, detail: str) -> None:
        ns = await self._knowledge.namespace_by_id(doc.namespace_id)
        await self._audit.record(
            workspace_id=ns.workspace_id if ns else None,
            user_id=None,
            actor=platform,
            command="delete",
            arguments={
                "filename": doc.title,
                "namespace": ns.name if ns else None,
                "document_id": str(doc.id),
                "platform_file_id": doc.platform_file_id,
            },
            outcome="ok",
            detail=detail,
        )


def _upload_event(message: IncomingMessage) -> str:
    return f"upload:{message.event_id}"


def _indexed(
    filename: str,
    namespace: NamespaceRecord,
    result: IngestResult,
    share_with: tuple[str, ...] = (),
) -> UploadOutcome:
    """The outcome of a file that ingestion took (indexed, a duplicate, or replaced)."""
    return UploadOutcome(
        filename,
        True,
        _message(filename, namespace, result),
        result.chunks,
        result.duplicate,
        namespace.label,
        len(result.replaced),
        result.document.id,
        share_with,
    )


def _message(filename: str, namespace: NamespaceRecord, result: IngestResult) -> str:
    """What the chat says about an indexed file (every adapter posts these words as they are)."""
    chunks = count(result.chunks, "chunk")
    here = namespace.is_conversation
    if result.duplicate:
        where = "here" if here else f"in {namespace.name}"
        return f"{filename} is already indexed {where} ({chunks})."
    if here:
        text = f"Indexed {filename}: {chunks}. Only this conversation can see it."
    else:
        text = f"Indexed {filename} into {namespace.name}: {chunks}."
    if result.superseded_by:
        return text + f" A newer {filename}, uploaded at the same time, then replaced it."
    if len(result.replaced) == 1:
        text += f" It replaced the earlier version of {filename}."
    elif result.replaced:
        text += f" It replaced {len(result.replaced)} earlier versions of {filename}."
    if result.others_kept:
        text += (
            f" Someone else's {filename} stays as it is: only its uploader or an admin can "
            "replace it, so this one is a separate document."
        )
    return text
