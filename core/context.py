"""Resolve an incoming message to its rows: workspace, user, channel, session, namespaces."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import zip_longest

from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import (
    ChannelRecord,
    DocumentRecord,
    NamespaceRecord,
    SessionRecord,
    UserRecord,
    WorkspaceRecord,
)
from core.enums import DocumentStatus
from core.generation.summary import matches
from core.organisation import Organisation
from core.places import Place, Places
from core.types import IncomingMessage

STARTER = "Summarise {title}"  # a suggested question about one document


def strictest_threshold(namespaces: Sequence[NamespaceRecord]) -> float | None:
    """The strictest answer threshold configured on these namespaces (None: none is)."""
    values = [
        float(n.config["answer_threshold"])
        for n in namespaces
        if n.config.get("answer_threshold") is not None
    ]
    return max(values) if values else None


@dataclass(frozen=True, slots=True)
class ConversationContext:
    workspace: WorkspaceRecord
    user: UserRecord
    channel: ChannelRecord
    session: SessionRecord
    namespaces: tuple[NamespaceRecord, ...]
    thread_documents: tuple[uuid.UUID, ...]
    embedding_model: str
    place: Place

    @property
    def namespace_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.namespaces)

    @property
    def namespace_labels(self) -> tuple[str, ...]:
        """The searched namespaces as people read them: the shared ones by name (the place's
        own files go without saying), or "the files shared here" when there are none."""
        shared = tuple(n.name for n in self.namespaces if not n.is_conversation)
        return shared or tuple(n.label for n in self.namespaces)

    @property
    def workspace_ids(self) -> tuple[uuid.UUID, ...]:
        """The workspaces whose knowledge is searched (a DM may read several)."""
        return tuple(dict.fromkeys(n.workspace_id for n in self.namespaces)) or (self.workspace.id,)

    @property
    def primary_namespace(self) -> uuid.UUID | None:
        return self.namespaces[0].id if self.namespaces else None

    @property
    def threshold(self) -> float | None:
        return strictest_threshold(self.namespaces)

    @property
    def owned(self) -> NamespaceRecord | None:
        """The searched namespace whose owner is asked about a question here (never in a DM:
        the owner could not see it); None when none has an owner."""
        if self.place.is_direct:
            return None
        return next((n for n in self.namespaces if n.owner_id is not None), None)

    @property
    def prompt(self) -> str | None:
        for n in self.namespaces:
            if n.config.get("prompt"):
                return str(n.config["prompt"])
        return None


class ContextResolver:
    """Resolves a message to its rows and to the namespaces its place may read
    (``core.places``)."""

    def __init__(
        self,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        *,
        embedding_model: str,
        places: Places | None = None,
        organisation: Organisation | None = None,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._embedding_model = embedding_model
        self.places = places or Places(identity, knowledge)
        # None: every workspace owns its own knowledge (``core.organisation``)
        self._organisation = organisation

    async def resolve(self, message: IncomingMessage) -> ConversationContext:
        place = await self.place(message)
        user = await self._identity.user(
            place.workspace.id, message.author_id, display_name=message.author_name
        )
        session = await self._identity.session(
            place.workspace.id, place.channel.id, message.thread_id, title=message.text[:80] or None
        )
        namespaces = await self.places.readable(place)
        docs = [] if session.is_new else await self._knowledge.session_documents(session.id)
        return ConversationContext(
            place.workspace,
            user,
            place.channel,
            session,
            tuple(namespaces),
            tuple(docs),
            self._embedding_model,
            place,
        )

    async def place(self, message: IncomingMessage) -> Place:
        """The workspace and channel rows of a message's place (privacy noted when the
        message says it), with who owns its knowledge and, for a DM beside a channel, that
        channel's place; ``NotEnabled`` for a workspace outside the organisation."""
        place = await self._place(message)
        viewing = message.viewing_channel_id
        if not message.is_direct or not viewing or viewing == message.channel_id:
            return place
        viewed = await self.place_of(message.platform.value, message.workspace_id, viewing)
        return replace(place, viewing=viewed)

    async def starters(self, message: IncomingMessage, *, limit: int = 4) -> tuple[str, ...]:
        """Suggested first questions for a conversation starting in ``message``'s place, from
        the namespaces it reads: the prompts an admin set on one, else requests about its
        newest documents."""
        namespaces = await self.places.readable(await self.place(message))
        untitled = [ns.id for ns in namespaces if not ns.prompts]
        docs = (
            await self._knowledge.documents(untitled, status=DocumentStatus.INDEXED)
            if untitled
            else []
        )
        newest: dict[uuid.UUID, list[str]] = {}
        for doc in reversed(docs):
            newest.setdefault(doc.namespace_id, []).append(STARTER.format(title=doc.title))
        each = [list(ns.prompts) or newest.get(ns.id, []) for ns in namespaces]
        taking_turns = (p for turn in zip_longest(*each) for p in turn if p)
        return tuple(dict.fromkeys(taking_turns))[:limit]

    async def document_titled(self, ctx: ConversationContext, title: str) -> DocumentRecord | None:
        """The indexed document readable in ``ctx`` that ``title`` names (the newest when
        several do), or None."""
        ns_ids = [n.id for n in ctx.namespaces]
        docs = await self._knowledge.documents(ns_ids, status=DocumentStatus.INDEXED)
        named = [d for d in docs if matches(title, d.title)]
        return named[-1] if named else None

    async def _place(self, message: IncomingMessage) -> Place:
        return await self.place_of(
            message.platform.value,
            message.workspace_id,
            message.channel_id,
            workspace_name=message.workspace_name,
            channel_name=message.channel_name,
            is_private=message.place_private,
            is_direct=message.is_direct,
            dm_workspaces=message.dm_workspaces,
        )

    async def place_of(
        self,
        platform: str,
        workspace_id: str,
        channel_id: str,
        *,
        workspace_name: str | None = None,
        channel_name: str | None = None,
        is_private: bool | None = None,
        is_direct: bool = False,
        dm_workspaces: Sequence[str] = (),
    ) -> Place:
        ws = await self._identity.workspace(platform, workspace_id, name=workspace_name)
        channel = await self._identity.channel(ws.id, channel_id, name=channel_name)
        channel = await self.places.note(channel, True if is_direct else is_private)
        homes: tuple[WorkspaceRecord, ...] = ()
        if is_direct:
            homes = tuple(
                [await self._identity.workspace(platform, w) for w in dm_workspaces]
                if dm_workspaces
                else [ws]
            )
        if self._organisation is None:
            return Place(ws, channel, is_direct=is_direct, dm_owners=homes)
        owner, dm_owners = await self._organisation.owners(ws, homes=homes)
        return Place(ws, channel, is_direct=is_direct, owner=owner, dm_owners=dm_owners)
