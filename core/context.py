"""Resolve an incoming message to its rows: workspace, user, channel, session, namespaces."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.namespaces import DEFAULT_NAMESPACE
from core.db.records import (
    ChannelRecord,
    NamespaceRecord,
    SessionRecord,
    UserRecord,
    WorkspaceRecord,
)
from core.types import IncomingMessage

NAMESPACE_TTL = 30.0


@dataclass(frozen=True, slots=True)
class ConversationContext:
    workspace: WorkspaceRecord
    user: UserRecord
    channel: ChannelRecord
    session: SessionRecord
    namespaces: tuple[NamespaceRecord, ...]
    thread_documents: tuple[uuid.UUID, ...]
    embedding_model: str

    @property
    def namespace_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.namespaces)

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
    """A channel searches its bound namespaces, or its workspace's default one when unbound."""

    def __init__(
        self, identity: IdentityStore, knowledge: KnowledgeStore, *, embedding_model: str
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._embedding_model = embedding_model
        # channel -> (expiry, store generation, namespaces). Changes made in this process
        # show at once (the generation moves); other processes' within NAMESPACE_TTL.
        self._namespaces: dict[uuid.UUID, tuple[float, int, list[NamespaceRecord]]] = {}

    async def resolve(self, message: IncomingMessage) -> ConversationContext:
        ws = await self._identity.workspace(
            message.platform.value, message.workspace_id, name=message.workspace_name
        )
        user = await self._identity.user(ws.id, message.author_id, display_name=message.author_name)
        channel = await self._identity.channel(ws.id, message.channel_id, name=message.channel_name)
        session = await self._identity.session(
            ws.id, channel.id, message.thread_id, title=message.text[:80] or None
        )
        namespaces = await self.channel_namespaces(ws.id, channel.id)
        docs = [] if session.is_new else await self._knowledge.session_documents(session.id)
        return ConversationContext(
            ws, user, channel, session, tuple(namespaces), tuple(docs), self._embedding_model
        )

    async def channel_namespaces(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID
    ) -> list[NamespaceRecord]:
        generation = self._knowledge.generation
        cached = self._namespaces.get(channel_id)
        if cached is not None and cached[0] > time.monotonic() and cached[1] == generation:
            return cached[2]
        found = await self._load_namespaces(workspace_id, channel_id)
        if len(self._namespaces) > 10_000:
            self._namespaces.clear()
        self._namespaces[channel_id] = (time.monotonic() + NAMESPACE_TTL, generation, found)
        return found

    async def _load_namespaces(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID
    ) -> list[NamespaceRecord]:
        bound = await self._knowledge.channel_namespaces(channel_id)
        if bound:
            return bound
        return [await self._knowledge.ensure_namespace(workspace_id, DEFAULT_NAMESPACE)]
