"""AdminService: runs one `/lore` command, with one meaning on every platform.

Adapters parse their platform's command into a request for a command of
:data:`core.commands.REGISTRY` (typed arguments, never markup to re-parse), hand it over in an
:class:`AdminCommand` with the caller and whether the platform says the caller is an admin,
and render the :class:`CommandResult`. Admin-only commands are refused to everyone else;
refusals, failures and every admin action are written to the audit log.
"""

from __future__ import annotations

import logging

from core.answer import AnswerService
from core.commands import REGISTRY, AdminCommand, Call, CommandResult, Registry, Tools
from core.commands.arguments import Invalid, Invocation, Unknown
from core.commands.definition import Command
from core.commands.rich import Code, RichText, line, rich, verbatim
from core.context import ContextResolver
from core.db.audit import AuditStore
from core.db.autoanswer import AutoAnswerStore
from core.db.digests import DigestStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import UserRecord
from core.db.usage import UsageStore
from core.documents import Documents
from core.enums import UserRole
from core.errors import LorekeeperError, NotEnabled
from core.gaps import GapService
from core.ingestion.service import IngestionService
from core.places import Place
from core.quota import QuotaService
from core.reports import ReportService
from core.wording import COMMAND_FAILED

NOT_ADMIN = "Only workspace admins can do that."
log = logging.getLogger(__name__)

__all__ = ["AdminCommand", "AdminService", "CommandResult"]


class AdminService:
    def __init__(
        self,
        *,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        ingestion: IngestionService,
        usage: UsageStore,
        quota: QuotaService,
        resolver: ContextResolver,
        audit: AuditStore,
        reports: ReportService,
        answers: AnswerService,
        registry: Registry = REGISTRY,
        gaps: GapService | None = None,
        digests: DigestStore | None = None,
        autoanswer: AutoAnswerStore | None = None,
    ) -> None:
        self._identity = identity
        self._resolver = resolver
        self._audit = audit
        self._registry = registry
        self._tools = Tools(
            identity=identity,
            knowledge=knowledge,
            ingestion=ingestion,
            usage=usage,
            quota=quota,
            reports=reports,
            answers=answers,
            documents=Documents(knowledge=knowledge, ingestion=ingestion, places=resolver.places),
            registry=registry,
            gaps=gaps,
            digests=digests,
            autoanswer=autoanswer,
        )

    @property
    def registry(self) -> Registry:
        return self._registry

    async def execute(self, cmd: AdminCommand) -> CommandResult:
        """Run one `/lore` command; every failure becomes a message, never an exception."""
        try:
            return await self._execute(cmd)
        except Exception:
            log.exception("/lore %s failed", _name(cmd))
            return CommandResult(verbatim(COMMAND_FAILED), ok=False)

    async def _execute(self, cmd: AdminCommand) -> CommandResult:
        request = cmd.request
        if not isinstance(request, Unknown) and request.command.handler is None:
            return CommandResult(self._registry.help())
        try:
            place = await self._place(cmd)
        except NotEnabled as exc:
            return CommandResult(verbatim(exc.user_message), ok=False)
        user = await self._identity.user(
            place.workspace.id, cmd.user_id, display_name=cmd.user_name
        )
        is_admin = cmd.is_platform_admin or user.role == UserRole.ADMIN
        if isinstance(request, Unknown):
            return CommandResult(self._unknown(request.text), ok=False)
        command = request.command
        if command.admin_only and not is_admin:
            await self._log(cmd, place, user, command, "refused", "not an admin", request)
            return CommandResult(rich(NOT_ADMIN), ok=False)
        if isinstance(request, Invalid):
            await self._log(cmd, place, user, command, "failed", "invalid arguments", request)
            return CommandResult(request.message, ok=False)
        return await self._run(Call(cmd, request, place, user, is_admin))

    async def _run(self, call: Call) -> CommandResult:
        command = call.invocation.command
        assert command.handler is not None
        try:
            result = await command.handler(self._tools, call)
        except LorekeeperError as exc:
            await self._log(
                call.cmd, call.place, call.user, command, "failed", exc.reason, call.invocation
            )
            return CommandResult(verbatim(exc.user_message), ok=False)
        if command.admin_only or command.audited:
            outcome = "ok" if result.ok else "refused"
            await self._log(
                call.cmd, call.place, call.user, command, outcome, None, call.invocation
            )
        return result

    def _unknown(self, text: str) -> RichText:
        said = RichText((line("I don't know ", Code(text[:60]), "."), line()))
        return said + self._registry.help()

    async def _place(self, cmd: AdminCommand) -> Place:
        return await self._resolver.place_of(
            cmd.platform.value,
            cmd.workspace_id,
            cmd.channel_id,
            channel_name=cmd.channel_name,
            is_private=cmd.place_private,
            is_direct=cmd.is_direct,
            dm_workspaces=cmd.dm_workspaces,
        )

    async def _log(
        self,
        cmd: AdminCommand,
        place: Place,
        user: UserRecord,
        command: Command,
        outcome: str,
        detail: str | None,
        request: Invocation | Invalid,
    ) -> None:
        args = request.audit() if isinstance(request, Invocation) else list(request.given)
        await self._audit.record(
            workspace_id=place.workspace.id,
            user_id=user.id,
            actor=cmd.user_id,
            command=command.name,
            arguments={"args": args},
            outcome=outcome,
            detail=detail,
        )


def _name(cmd: AdminCommand) -> str:
    """The command's name for a log line (never its arguments: they may be a user's words)."""
    request = cmd.request
    return "(unknown)" if isinstance(request, Unknown) else " ".join(request.command.path)
