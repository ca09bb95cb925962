"""One organisation, every entry point: which workspaces belong, and who owns the knowledge.

An install serves one organisation (``TENANCY=organisation``, the default): its namespaces,
documents and conversations' files are owned by one organisation workspace and shared by every
workspace that belongs (its Slack team or teams, its Discord servers, the terminal). A namespace
filled from the CLI can be bound to a Slack channel and to a Discord channel, and both answer
from it. A workspace that does not belong is told "not enabled here" and never sees, binds or
lists the organisation's namespaces.

With ``TENANCY=workspace`` every workspace is its own tenant and owns its namespaces (strict
isolation between workspaces, for installs that serve several separate tenants).

A workspace that owned namespaces before it joined (an existing database) is adopted on first
use: each of its namespaces is merged into the organisation's namespace of the same name, or
changes owner when there is none; bindings, documents and usage rows come along.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.db.adoption import AdoptionStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import NamespaceRecord, WorkspaceRecord
from core.errors import NotEnabled
from core.retrieval.base import VectorStore

log = logging.getLogger(__name__)

ORGANISATION = "organisation"
WORKSPACE = "workspace"
ORG_PLATFORM = "org"
ORG_ID = "default"
DM_PREFIX = "dm-"  # Discord DMs are workspaces of their own, one per person


@dataclass(frozen=True, slots=True)
class Membership:
    """Which workspaces belong. An empty list for a platform admits its every workspace (a
    Slack app only hears the team it is installed in; Discord servers should be listed)."""

    tenancy: str = ORGANISATION
    slack_teams: frozenset[str] = field(default_factory=frozenset)
    discord_guilds: frozenset[str] = field(default_factory=frozenset)

    def belongs(self, platform: str, external_id: str) -> bool:
        if self.tenancy == WORKSPACE or platform == "console":
            return True
        if platform == "slack":
            return not self.slack_teams or external_id in self.slack_teams
        if platform == "discord" and not external_id.startswith(DM_PREFIX):
            return not self.discord_guilds or external_id in self.discord_guilds
        return False


class Organisation:
    """Maps a workspace to the workspace that owns its knowledge (adopting it on first use)."""

    def __init__(
        self,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        adoption: AdoptionStore,
        vectors: VectorStore,
        membership: Membership,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._adoption = adoption
        self._vectors = vectors
        self.membership = membership
        self._adopted: set[uuid.UUID] = set()
        self._adopting = asyncio.Lock()

    @property
    def shared(self) -> bool:
        return self.membership.tenancy == ORGANISATION

    def belongs(self, workspace: WorkspaceRecord) -> bool:
        return self.membership.belongs(workspace.platform, workspace.external_id)

    async def owner(self, workspace: WorkspaceRecord) -> WorkspaceRecord:
        """The workspace that owns ``workspace``'s knowledge; ``NotEnabled`` when it does not
        belong to the organisation."""
        if not self.shared:
            return workspace
        if not self.belongs(workspace):
            raise NotEnabled()
        org = await self.workspace()
        if not self._adopted:  # first use: every workspace that belongs joins now
            await self._adopt_all(org)
        if workspace.id not in self._adopted:
            await self._adopt(workspace, org)
        return org

    async def owners(
        self, workspace: WorkspaceRecord, *, homes: Sequence[WorkspaceRecord] = ()
    ) -> tuple[WorkspaceRecord, tuple[WorkspaceRecord, ...]]:
        """For a place in ``workspace``: who owns its knowledge, and (for a DM, whose
        ``homes`` are the workspaces it belongs to) whose public knowledge it reads.
        ``NotEnabled`` when none of them belongs to the organisation."""
        if not self.shared:
            return workspace, tuple(homes)
        if self.belongs(workspace):
            org = await self.owner(workspace)
        elif homes and any(self.belongs(w) for w in homes):
            org = await self.workspace()
        else:
            raise NotEnabled()
        for home in homes:
            if self.belongs(home):
                await self.owner(home)  # its namespaces join before the DM reads them
        return org, (org,) if homes else ()

    async def workspace(self) -> WorkspaceRecord:
        """The organisation's own workspace row (made on first use)."""
        return await self._identity.workspace(ORG_PLATFORM, ORG_ID, name="organisation")

    async def _adopt_all(self, org: WorkspaceRecord) -> None:
        self._adopted.add(org.id)
        for workspace in await self._identity.workspaces():
            if workspace.platform != ORG_PLATFORM and self.belongs(workspace):
                await self._adopt(workspace, org)

    async def _adopt(self, workspace: WorkspaceRecord, org: WorkspaceRecord) -> None:
        async with self._adopting:
            if workspace.id in self._adopted or workspace.id == org.id:
                self._adopted.add(workspace.id)
                return
            for namespace in await self._adoption.owned(workspace.id):
                await self._adopt_namespace(namespace, org)
            self._adopted.add(workspace.id)

    async def _adopt_namespace(self, ns: NamespaceRecord, org: WorkspaceRecord) -> None:
        """Vectors first, then SQL: a crash in between leaves the namespace to be adopted
        again (every step is safe to repeat), never a vector the SQL does not point at."""
        target = None if ns.is_conversation else await self._knowledge.find(org.id, ns.name)
        if target is None:
            await self._vectors.move_namespace(str(ns.id), workspace_id=str(org.id))
            await self._adoption.reassign(ns.id, org.id)
            log.info("namespace %s joined the organisation", ns.name)
        else:
            for doc in await self._adoption.duplicates(ns.id, target.id):
                await self._knowledge.delete_document(doc)
                await self._vectors.delete_documents([str(doc)])
            await self._vectors.move_namespace(
                str(ns.id), workspace_id=str(org.id), into=str(target.id)
            )
            await self._adoption.merge(ns.id, target.id)
            log.info("namespace %s merged into the organisation's", ns.name)
        self._knowledge.generation += 1
