"""Documents as people see them from a place: what they may list, delete and share.

Admins see and manage every namespace of their workspace. Everyone else sees only what the
place they are in may read (``core.places``), never the name of a private channel, and manages
only the documents they uploaded themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from core.db.knowledge import KnowledgeStore
from core.db.records import ChannelRecord, DocumentRecord, NamespaceRecord, UserRecord
from core.enums import DocumentStatus
from core.errors import DocumentNotFound, LorekeeperError, NamespaceNotFound, NotAllowed
from core.ingestion.service import IngestionService, IngestResult, Uploader
from core.places import Place, Places

NOT_YOURS = "Only the person who shared that file, or an admin, can do that."


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, and from where."""

    place: Place
    user: UserRecord
    is_admin: bool


@dataclass(frozen=True, slots=True)
class Promotion:
    """A conversation's file shared with a namespace."""

    document: DocumentRecord
    namespace: NamespaceRecord
    result: IngestResult


class Documents:
    """Visibility-aware listing, deletion and sharing of documents."""

    def __init__(
        self, *, knowledge: KnowledgeStore, ingestion: IngestionService, places: Places
    ) -> None:
        self._knowledge = knowledge
        self._ingestion = ingestion
        self._places = places

    async def namespace(self, viewer: Viewer, name: str) -> NamespaceRecord:
        """A namespace by name; one the viewer may not read from here does not exist for them."""
        ns = await self._knowledge.namespace(viewer.place.knowledge.id, name)
        if viewer.is_admin or await self._places.may_read(viewer.place, ns):
            return ns
        raise NamespaceNotFound(name)

    async def listed_namespaces(self, viewer: Viewer) -> list[tuple[NamespaceRecord, int]]:
        """Namespaces with their document counts: every one for an admin; for others, all but
        those bound only to private channels (unless this place reads them)."""
        rows = await self._knowledge.list_namespaces(viewer.place.knowledge.id)
        if viewer.is_admin:
            return rows
        readable = {ns.id for ns in await self._places.readable(viewer.place)}
        public = await self._places.public_namespace_ids(viewer.place.knowledge)
        bound = {ns_id for ns_id, _ in await self._knowledge.bindings(viewer.place.knowledge.id)}
        return [
            (ns, n) for ns, n in rows if ns.id in readable or ns.id in public or ns.id not in bound
        ]

    async def channels(self, viewer: Viewer, ns: NamespaceRecord) -> list[ChannelRecord]:
        """The channels bound to ``ns`` that the viewer may see named (admins: all)."""
        channels = await self._knowledge.namespace_channels(ns.id)
        if viewer.is_admin:
            return channels
        return [ch for ch in channels if not await self._places.is_private(ch)]

    async def listing(
        self, viewer: Viewer, name: str | None
    ) -> tuple[list[NamespaceRecord], list[DocumentRecord]]:
        """The documents of one namespace, or of everything this place reads."""
        if name is not None:
            namespaces = [await self.namespace(viewer, name)]
        else:
            namespaces = await self._places.readable(viewer.place)
        return namespaces, await self._knowledge.documents([n.id for n in namespaces])

    async def owned(self, viewer: Viewer, document_id: uuid.UUID) -> DocumentRecord:
        """A document of the viewer's workspace that they may manage (their own, or any for an
        admin); others' documents they cannot read do not exist for them."""
        doc = await self._knowledge.document(document_id)
        ns = await self._knowledge.namespace_by_id(doc.namespace_id) if doc else None
        if doc is None or ns is None or ns.workspace_id != viewer.place.knowledge.id:
            raise DocumentNotFound(str(document_id))
        if viewer.is_admin or doc.uploaded_by == viewer.user.id:
            return doc
        if await self._places.may_read(viewer.place, ns):
            raise NotAllowed(NOT_YOURS)
        raise DocumentNotFound(str(document_id))

    async def delete(self, viewer: Viewer, document_id: uuid.UUID) -> DocumentRecord:
        doc = await self.owned(viewer, document_id)
        await self._ingestion.delete_document(doc.id)
        return doc

    async def promote(self, viewer: Viewer, document_id: uuid.UUID, name: str) -> Promotion:
        """Share a conversation's file with a namespace the viewer may read from here (an
        admin: any namespace of the workspace)."""
        doc = await self.owned(viewer, document_id)
        source = await self._knowledge.namespace_by_id(doc.namespace_id)
        if source is None or not source.is_conversation:
            where = source.name if source else "a namespace"
            raise LorekeeperError(f"{doc.title} is already shared: it is in {where}.")
        if doc.status != DocumentStatus.INDEXED:
            raise LorekeeperError(f"{doc.title} is not indexed ({doc.status}); share it again.")
        target = await self.namespace(viewer, name)
        uploader = Uploader(
            workspace_id=viewer.place.workspace.id,
            user_id=viewer.user.id,
            is_admin=viewer.is_admin,
        )
        result = await self._ingestion.move_document(doc, target, uploader=uploader)
        return Promotion(doc, target, result)


def shared_only(namespaces: Sequence[NamespaceRecord]) -> list[NamespaceRecord]:
    return [ns for ns in namespaces if not ns.is_conversation]
