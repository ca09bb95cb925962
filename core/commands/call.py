"""One run of a command: who asked where (:class:`AdminCommand`), what a handler sees
(:class:`Call`), the services it may use (:class:`Tools`), and what it returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.answer import AnswerService
from core.commands.arguments import ChannelArg, Invocation, Request, UserArg, Value
from core.commands.registry import Registry
from core.commands.rich import RichText, plain_text
from core.db.autoanswer import AutoAnswerStore
from core.db.digests import DigestStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import ChannelRecord, UserRecord, WorkspaceRecord
from core.db.usage import UsageStore
from core.documents import Documents, Viewer
from core.gaps import GapService
from core.ingestion.service import IngestionService
from core.places import Place
from core.quota import QuotaService
from core.reports import ReportService, UsageReport
from core.types import Answer, Platform


@dataclass(frozen=True, slots=True)
class AdminCommand:
    """A `/lore` command as an adapter hands it to core: the parsed ``request``, the caller,
    and whether the platform says the caller is an admin."""

    platform: Platform
    workspace_id: str
    channel_id: str
    user_id: str
    request: Request
    is_platform_admin: bool = False
    user_name: str | None = None
    channel_name: str | None = None
    event_id: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    is_direct: bool = False
    place_private: bool | None = None  # as in IncomingMessage
    dm_workspaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command says (``body``), and for `ask` the answer, for `usage` the report and
    its bar chart (``chart_png``, for adapters to attach)."""

    body: RichText
    ok: bool = True
    ephemeral: bool = True
    answer: Answer | None = None
    report: UsageReport | None = None
    chart_png: bytes | None = None

    @property
    def text(self) -> str:
        """The body as plain text (a terminal's rendering)."""
        return plain_text(self.body)


@dataclass(frozen=True, slots=True)
class Tools:
    """The services and stores command handlers use."""

    identity: IdentityStore
    knowledge: KnowledgeStore
    ingestion: IngestionService
    usage: UsageStore
    quota: QuotaService
    reports: ReportService
    answers: AnswerService
    documents: Documents
    registry: Registry
    gaps: GapService | None = None
    digests: DigestStore | None = None
    autoanswer: AutoAnswerStore | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler knows: the command as sent, its place and caller, typed arguments."""

    cmd: AdminCommand
    invocation: Invocation
    place: Place
    user: UserRecord
    is_admin: bool

    @property
    def workspace(self) -> WorkspaceRecord:
        return self.place.workspace

    @property
    def channel(self) -> ChannelRecord:
        return self.place.channel

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.place, self.user, self.is_admin)

    def text(self, name: str) -> str | None:
        """A text, namespace or choice argument (None when absent)."""
        return self.invocation.text(name)

    def arg(self, name: str) -> Value | None:
        return self.invocation.args.get(name)

    def document_id(self, name: str = "id") -> uuid.UUID:
        value = self.invocation.args[name]
        assert isinstance(value, uuid.UUID)
        return value

    def channel_arg(self, name: str = "channel") -> ChannelArg | None:
        value = self.invocation.args.get(name)
        return value if isinstance(value, ChannelArg) else None

    def user_arg(self, name: str = "user") -> UserArg | None:
        value = self.invocation.args.get(name)
        return value if isinstance(value, UserArg) else None
