"""Resolve an incoming message to its rows: workspace, user, channel, session, namespaces."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import (
    ChannelRecord,
    NamespaceRecord,
    SessionRecord,
    UserRecord,
    WorkspaceRecord,
)
from core.organisation import Organisation
from core.places import Place, Places
from core.types import IncomingMessage


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
        """The strictest answer threshold configured on the searched namespaces."""
        values = [
            float(n.config["answer_threshold"])
            for n in self.namespaces
            if n.config.get("answer_threshold") is not None
        ]
        return max(values) if values else None

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
        message says it), with who owns its knowledge; ``NotEnabled`` for a workspace outside
        the organisation."""
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
