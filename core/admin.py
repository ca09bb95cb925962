"""AdminService: the `/lore` command, one meaning on every platform.

Adapters turn their slash command into an :class:`AdminCommand` (the text after `/lore`, the
caller, and whether the platform says the caller is an admin) and render the
:class:`CommandResult`. Changing subcommands and usage are for admins only; refusals and every
admin action are written to the audit log.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.answer import AnswerService
from core.context import ContextResolver
from core.db.audit import AuditStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import ChannelRecord, UserRecord, WorkspaceRecord
from core.db.usage import UsageStore
from core.documents import Documents, Viewer
from core.errors import LorekeeperError, NotEnabled
from core.ingestion.service import IngestionService
from core.places import Place
from core.quota import QuotaService
from core.reports import ReportService, UsageReport, window
from core.types import Answer, IncomingMessage, Platform, Progress

HELP = """\
*Lorekeeper commands*
`/lore ask <question>`: answer privately
`/lore namespace list` | `info NAME`: the knowledge collections
`/lore docs list [namespace]`: documents here (or in a namespace)
`/lore docs promote ID NAMESPACE`: share a file dropped here with a namespace (uploader, admins)
`/lore docs delete ID`: delete a document (its uploader or an admin)
`/lore quota show`: today's token use and limits
Admins only:
`/lore usage [today|7d|30d] [by user|channel|namespace|model|operation] [ids]`: tokens and cost
`/lore namespace create NAME [description]` | `delete NAME`
`/lore namespace bind NAME [#channel]` | `unbind NAME`: which namespaces a channel searches
`/lore namespace uploads NAME [#channel]`: where files dropped in a channel are indexed
`/lore quota set user|workspace|user-uploads|workspace-uploads LIMIT`: daily token limits"""

MAX_DAILY_LIMIT = 10**12
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CHANNEL = re.compile(r"^<?#([A-Za-z0-9]+)(?:\|[^>]*)?>?$")
ADMIN_ONLY = {
    ("usage", None),
    ("namespace", "create"),
    ("namespace", "delete"),
    ("namespace", "bind"),
    ("namespace", "unbind"),
    ("namespace", "uploads"),
    ("quota", "set"),
}
# Not admin-only, but audited like admin commands: they change what people can read.
AUDITED = {("docs", "delete"), ("docs", "promote")}
QUOTA_SCOPES = ("user", "workspace", "user-uploads", "workspace-uploads")


@dataclass(frozen=True, slots=True)
class AdminCommand:
    platform: Platform
    workspace_id: str
    channel_id: str
    user_id: str
    text: str
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
    text: str
    ok: bool = True
    ephemeral: bool = True
    answer: Answer | None = None
    report: UsageReport | None = None
    chart_png: bytes | None = None  # a bar chart of ``report`` for adapters to attach


@dataclass(frozen=True, slots=True)
class _Call:
    cmd: AdminCommand
    place: Place
    user: UserRecord
    args: list[str]
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


class _SilentReply:
    async def thinking(self, namespaces: object) -> None: ...
    async def stream(self, text_so_far: str) -> None: ...
    async def progress(self, progress: Progress) -> None: ...


Handler = Callable[["AdminService", _Call], Awaitable[CommandResult]]


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
        sessions: async_sessionmaker[AsyncSession],
        answers: AnswerService,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._ingestion = ingestion
        self._usage = usage
        self._quota = quota
        self._resolver = resolver
        self._audit = AuditStore(sessions)
        self._reports = ReportService(sessions)
        self._answers = answers
        self._documents = Documents(
            knowledge=knowledge, ingestion=ingestion, places=resolver.places
        )

    async def execute(self, cmd: AdminCommand) -> CommandResult:
        """Run one `/lore` command; every failure becomes a message, never an exception."""
        try:
            words = shlex.split(cmd.text)
        except ValueError:
            words = cmd.text.split()
        if not words or words[0].lower() == "help":
            return CommandResult(HELP)
        verb = words[0].lower()
        sub = (
            words[1].lower() if len(words) > 1 and verb in ("namespace", "docs", "quota") else None
        )
        try:
            place = await self._place(cmd)
        except NotEnabled as exc:
            return CommandResult(exc.user_message, ok=False)
        user = await self._identity.user(
            place.workspace.id, cmd.user_id, display_name=cmd.user_name
        )
        args = words[2:] if sub else words[1:]
        is_admin = cmd.is_platform_admin or user.role == "admin"
        call = _Call(cmd, place, user, args, is_admin)
        handler = _HANDLERS.get((verb, sub))
        if handler is None:
            return CommandResult(f"I don't know `{cmd.text.strip()[:60]}`.\n\n{HELP}", ok=False)
        admin_only = (verb, sub) in ADMIN_ONLY or (verb, None) in ADMIN_ONLY
        audited = admin_only or (verb, sub) in AUDITED
        if admin_only and not is_admin:
            await self._log(call, verb, sub, "refused", "not an admin")
            return CommandResult("Only workspace admins can do that.", ok=False)
        try:
            result = await handler(self, call)
        except LorekeeperError as exc:
            await self._log(call, verb, sub, "failed", exc.reason)
            return CommandResult(exc.user_message, ok=False)
        if audited:
            await self._log(call, verb, sub, "ok" if result.ok else "refused", None)
        return result

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
        self, call: _Call, verb: str, sub: str | None, outcome: str, detail: str | None
    ) -> None:
        await self._audit.record(
            workspace_id=call.workspace.id,
            user_id=call.user.id,
            actor=call.cmd.user_id,
            command=f"{verb} {sub}" if sub else verb,
            arguments={"args": call.args},
            outcome=outcome,
            detail=detail,
        )

    # --- handlers ---------------------------------------------------------------------

    async def _ask(self, call: _Call) -> CommandResult:
        question = " ".join(call.args).strip()
        if not question:
            return CommandResult("Ask what? Try `/lore ask how do I reset my password?`", ok=False)
        cmd = call.cmd
        message = IncomingMessage(
            platform=cmd.platform,
            workspace_id=cmd.workspace_id,
            channel_id=cmd.channel_id,
            thread_id=f"cmd-{cmd.event_id or uuid.uuid4().hex}",
            author_id=cmd.user_id,
            text=question,
            event_id=f"cmd:{cmd.event_id or uuid.uuid4().hex}",
            received_at=cmd.received_at,
            author_name=cmd.user_name,
            is_direct=cmd.is_direct,
            place_private=cmd.place_private,
            dm_workspaces=cmd.dm_workspaces,
        )
        answer = await self._answers.answer(message, _SilentReply())
        return CommandResult(answer.text, answer=answer)

    async def _usage_report(self, call: _Call) -> CommandResult:
        period, by = "7d", "day"
        args = [a.lower() for a in call.args]
        ids = "ids" in args
        args = [a for a in args if a != "ids"]
        if args and args[0] not in ("by",):
            period = args.pop(0)
        if args[:1] == ["by"] and len(args) == 2:
            by = args[1]
        elif args:
            return CommandResult(
                "Usage: `/lore usage [today|7d|30d] [by user|channel|namespace|model|operation]"
                " [ids]`",
                ok=False,
            )
        try:
            since, until = window(period, call.cmd.received_at)
            report = await self._reports.usage(
                call.workspace.id, since=since, until=until, by=by, ids=ids
            )
        except ValueError as exc:
            return CommandResult(f"{exc}.", ok=False)
        text = f"Usage {period} by {by}:\n```\n{report.table()}\n```"
        chart = await self._reports.chart(report) if report.rows else None
        return CommandResult(text, report=report, chart_png=chart)

    async def _ns_list(self, call: _Call) -> CommandResult:
        rows = await self._documents.listed_namespaces(call.viewer)
        if not rows:
            return CommandResult(
                "No namespaces yet. An admin can run `/lore namespace create NAME`."
            )
        bound = await self._knowledge.channel_namespaces(call.channel.id)
        uploads = await self._knowledge.upload_namespace(call.channel.id)
        marks = {n.id: " (this channel)" for n in bound}
        if uploads is not None:
            marks[uploads.id] = " (this channel, uploads go here)"
        lines = [
            f"• *{ns.name}* ({count} documents){marks.get(ns.id, '')}"
            f"{': ' + ns.description if ns.description else ''}"
            for ns, count in rows
        ]
        return CommandResult("Namespaces:\n" + "\n".join(lines))

    async def _ns_create(self, call: _Call) -> CommandResult:
        name = _name(call.args)
        description = " ".join(call.args[1:]) or None
        await self._knowledge.create_namespace(
            call.place.knowledge.id, name, description=description
        )
        return CommandResult(
            f"Created namespace *{name}*. Bind it to a channel with `/lore namespace bind {name}`."
        )

    async def _ns_delete(self, call: _Call) -> CommandResult:
        ns = await self._knowledge.namespace(call.place.knowledge.id, _name(call.args))
        await self._ingestion.delete_namespace(ns)
        return CommandResult(f"Deleted namespace *{ns.name}* with its documents.")

    async def _ns_bind(self, call: _Call) -> CommandResult:
        ns = await self._knowledge.namespace(call.place.knowledge.id, _name(call.args))
        channel = await self._target_channel(call)
        await self._knowledge.bind(channel.id, ns.id)
        return CommandResult(f"<#{channel.external_id}> now searches *{ns.name}*.")

    async def _ns_unbind(self, call: _Call) -> CommandResult:
        ns = await self._knowledge.namespace(call.place.knowledge.id, _name(call.args))
        channel = await self._target_channel(call)
        if not await self._knowledge.unbind(channel.id, ns.id):
            return CommandResult(
                f"<#{channel.external_id}> was not bound to *{ns.name}*.", ok=False
            )
        return CommandResult(f"<#{channel.external_id}> no longer searches *{ns.name}*.")

    async def _ns_uploads(self, call: _Call) -> CommandResult:
        ns = await self._knowledge.namespace(call.place.knowledge.id, _name(call.args))
        channel = await self._target_channel(call)
        await self._knowledge.set_upload_namespace(channel.id, ns.id)
        return CommandResult(
            f"Files dropped in <#{channel.external_id}> are now indexed into *{ns.name}* "
            "(the channel searches it too)."
        )

    async def _target_channel(self, call: _Call) -> ChannelRecord:
        if len(call.args) > 1:
            match = _CHANNEL.match(call.args[1])
            if match is None:
                raise LorekeeperError(f"I don't recognise the channel {call.args[1][:40]}.")
            return await self._identity.channel(call.workspace.id, match.group(1))
        return call.channel

    async def _ns_info(self, call: _Call) -> CommandResult:
        ns = await self._documents.namespace(call.viewer, _name(call.args))
        docs = await self._knowledge.documents([ns.id])
        channels = await self._documents.channels(call.viewer, ns)
        indexed = [d for d in docs if d.status == "indexed"]
        failed = [d for d in docs if d.status == "failed"]
        lines = [
            f"*{ns.name}*" + (f": {ns.description}" if ns.description else ""),
            f"{len(indexed)} documents, {sum(d.chunk_count for d in indexed)} chunks"
            + (f", {len(failed)} failed" if failed else ""),
            "Channels: " + (", ".join(f"#{c.name or c.external_id}" for c in channels) or "none"),
        ]
        return CommandResult("\n".join(lines))

    async def _docs_list(self, call: _Call) -> CommandResult:
        name = _name(call.args) if call.args else None
        namespaces, docs = await self._documents.listing(call.viewer, name)
        if not docs:
            return CommandResult("No documents in " + ", ".join(n.label for n in namespaces) + ".")
        labels = {n.id: n.label for n in namespaces}
        lines = [
            f"`{d.id}` {d.title} ({labels.get(d.namespace_id, '?')}, {d.status}, "
            f"{d.chunk_count} chunks)" + (f": {d.error}" if d.error else "")
            for d in docs[:50]
        ]
        more = f"\n…and {len(docs) - 50} more" if len(docs) > 50 else ""
        return CommandResult("\n".join(lines) + more)

    async def _docs_delete(self, call: _Call) -> CommandResult:
        doc_id = _document_id(call.args, "delete ID")
        doc = await self._documents.delete(call.viewer, doc_id)
        return CommandResult(f"Deleted {doc.title}.")

    async def _docs_promote(self, call: _Call) -> CommandResult:
        doc_id = _document_id(call.args, "promote ID NAMESPACE")
        done = await self._documents.promote(call.viewer, doc_id, _name(call.args[1:]))
        title, where = done.document.title, done.namespace.name
        if done.result.duplicate:
            return CommandResult(
                f"{title} is already in *{where}*; this conversation's copy is gone."
            )
        text = f"Shared {title} with *{where}*: everyone who can read {where} can now ask about it."
        if done.result.replaced:
            text += f" It replaced the earlier version of {title} there."
        return CommandResult(text)

    async def _quota_show(self, call: _Call) -> CommandResult:
        return CommandResult(await self._quota.status(call.workspace.id, call.user.id))

    async def _quota_set(self, call: _Call) -> CommandResult:
        if (
            len(call.args) != 2
            or call.args[0] not in QUOTA_SCOPES
            or not call.args[1].replace(",", "").isdigit()
            or len(call.args[1]) > 16
        ):
            return CommandResult(
                f"Usage: `/lore quota set {'|'.join(QUOTA_SCOPES)} LIMIT` (tokens per day, "
                f"up to {MAX_DAILY_LIMIT:,}).",
                ok=False,
            )
        limit = int(call.args[1].replace(",", ""))
        if limit > MAX_DAILY_LIMIT:
            return CommandResult(
                f"A daily limit can be at most {MAX_DAILY_LIMIT:,} tokens.", ok=False
            )
        scope = call.args[0]
        await self._usage.set_workspace_limits(call.workspace.id, **{_LIMIT_FIELDS[scope]: limit})
        return CommandResult(f"Daily {scope.replace('-', ' ')} limit set to {limit:,} tokens.")


_LIMIT_FIELDS = {
    "user": "user_daily_tokens",
    "workspace": "workspace_daily_tokens",
    "user-uploads": "user_daily_upload_tokens",
    "workspace-uploads": "workspace_daily_upload_tokens",
}


def _document_id(args: list[str], usage: str) -> uuid.UUID:
    try:
        return uuid.UUID(args[0])
    except (IndexError, ValueError):
        raise LorekeeperError(
            f"Usage: `/lore docs {usage}` (the id from `/lore docs list`)."
        ) from None


def _name(args: list[str]) -> str:
    if not args:
        raise LorekeeperError("Which namespace? Give its name.")
    name = args[0].lower()
    if not _NAME.match(name):
        raise LorekeeperError("A namespace name is lowercase letters, digits, - and _ (up to 64).")
    return name


_HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("ask", None): AdminService._ask,
    ("usage", None): AdminService._usage_report,
    ("namespace", "list"): AdminService._ns_list,
    ("namespace", "create"): AdminService._ns_create,
    ("namespace", "delete"): AdminService._ns_delete,
    ("namespace", "bind"): AdminService._ns_bind,
    ("namespace", "unbind"): AdminService._ns_unbind,
    ("namespace", "uploads"): AdminService._ns_uploads,
    ("namespace", "info"): AdminService._ns_info,
    ("docs", "list"): AdminService._docs_list,
    ("docs", "delete"): AdminService._docs_delete,
    ("docs", "promote"): AdminService._docs_promote,
    ("quota", "show"): AdminService._quota_show,
    ("quota", "set"): AdminService._quota_set,
}
