"""`/lore namespace ...`: list, info, and the admins' create, delete, bind, unbind, uploads."""

from __future__ import annotations

from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import ChannelRef, Code, Line, RichText, Strong, UserRef, line, rich
from core.db.records import ChannelRecord, NamespaceRecord
from core.enums import DocumentStatus

GROUP = ("namespace", "Knowledge collections")
NAME = Param("name", Kind.NAMESPACE, "The namespace", required=True)
CHANNEL = Param("channel", Kind.CHANNEL, "The channel (default: this one)")


def _ref(channel: ChannelRecord) -> ChannelRef:
    return ChannelRef(channel.external_id, channel.name)


async def _namespace(tools: Tools, call: Call) -> NamespaceRecord:
    return await tools.knowledge.namespace(call.place.knowledge.id, call.text("name") or "")


async def _target_channel(tools: Tools, call: Call) -> ChannelRecord:
    named = call.channel_arg()
    if named is None:
        return call.channel
    return await tools.identity.channel(call.workspace.id, named.id)


async def list_namespaces(tools: Tools, call: Call) -> CommandResult:
    rows = await tools.documents.listed_namespaces(call.viewer)
    if not rows:
        return CommandResult(
            rich("No namespaces yet. An admin can run `/lore namespace create NAME`.")
        )
    bound = await tools.knowledge.channel_namespaces(call.channel.id)
    uploads = await tools.knowledge.upload_namespace(call.channel.id)
    marks = {n.id: " (this channel)" for n in bound}
    if uploads is not None:
        marks[uploads.id] = " (this channel, uploads go here)"
    lines: list[Line] = [line("Namespaces:")]
    for ns, count in rows:
        about = f": {ns.description}" if ns.description else ""
        lines.append(
            line("• ", Strong(ns.name), f" ({count} documents){marks.get(ns.id, '')}{about}")
        )
    return CommandResult(RichText(tuple(lines)))


async def info(tools: Tools, call: Call) -> CommandResult:
    ns = await tools.documents.namespace(call.viewer, call.text("name") or "")
    docs = await tools.knowledge.documents([ns.id])
    channels = await tools.documents.channels(call.viewer, ns)
    indexed = [d for d in docs if d.status == DocumentStatus.INDEXED]
    failed = [d for d in docs if d.status == DocumentStatus.FAILED]
    where: list[str | ChannelRef] = ["Channels: "]
    for i, channel in enumerate(channels):
        where += [", ", _ref(channel)] if i else [_ref(channel)]
    return CommandResult(
        RichText(
            (
                line(Strong(ns.name), f": {ns.description}" if ns.description else ""),
                line(
                    f"{len(indexed)} documents, {sum(d.chunk_count for d in indexed)} chunks"
                    + (f", {len(failed)} failed" if failed else "")
                ),
                line(*where) if channels else line("Channels: none"),
                *await _settings(tools, ns),
            )
        )
    )


async def _settings(tools: Tools, ns: NamespaceRecord) -> list[Line]:
    """Owner, retention and suggested prompts (`/lore namespace owner|prompts`, `retention`)."""
    owner = await tools.identity.address(ns.owner_id) if ns.owner_id else None
    days = ns.retention_days
    out = [
        line("Owner: ", UserRef(owner.user)) if owner else line("Owner: none"),
        line(f"Conversations kept: {days} days" if days else "Conversations kept: the default"),
    ]
    if ns.prompts:
        out.append(line("Suggested prompts:"))
        out += [line("• ", p) for p in ns.prompts]
    return out


async def create(tools: Tools, call: Call) -> CommandResult:
    name = call.text("name") or ""
    await tools.knowledge.create_namespace(
        call.place.knowledge.id, name, description=call.text("description")
    )
    return CommandResult(
        RichText(
            (
                line(
                    "Created namespace ",
                    Strong(name),
                    ". Bind it to a channel with ",
                    Code(f"/lore namespace bind {name}"),
                    ".",
                ),
            )
        )
    )


async def delete(tools: Tools, call: Call) -> CommandResult:
    ns = await _namespace(tools, call)
    await tools.ingestion.delete_namespace(ns)
    return CommandResult(
        RichText((line("Deleted namespace ", Strong(ns.name), " with its documents."),))
    )


async def bind(tools: Tools, call: Call) -> CommandResult:
    ns = await _namespace(tools, call)
    channel = await _target_channel(tools, call)
    await tools.knowledge.bind(channel.id, ns.id)
    return CommandResult(RichText((line(_ref(channel), " now searches ", Strong(ns.name), "."),)))


async def unbind(tools: Tools, call: Call) -> CommandResult:
    ns = await _namespace(tools, call)
    channel = await _target_channel(tools, call)
    if not await tools.knowledge.unbind(channel.id, ns.id):
        return CommandResult(
            RichText((line(_ref(channel), " was not bound to ", Strong(ns.name), "."),)),
            ok=False,
        )
    return CommandResult(
        RichText((line(_ref(channel), " no longer searches ", Strong(ns.name), "."),))
    )


async def uploads(tools: Tools, call: Call) -> CommandResult:
    ns = await _namespace(tools, call)
    channel = await _target_channel(tools, call)
    await tools.knowledge.set_upload_namespace(channel.id, ns.id)
    return CommandResult(
        RichText(
            (
                line(
                    "Files dropped in ",
                    _ref(channel),
                    " are now indexed into ",
                    Strong(ns.name),
                    " (the channel searches it too).",
                ),
            )
        )
    )


COMMANDS = (
    Command(("namespace", "list"), "the knowledge collections", list_namespaces),
    Command(("namespace", "info"), "the documents and channels of a namespace", info, (NAME,)),
    Command(
        ("namespace", "create"),
        "create a namespace",
        create,
        (NAME, Param("description", Kind.TEXT, "What it holds")),
        admin_only=True,
    ),
    Command(
        ("namespace", "delete"),
        "delete a namespace and its documents",
        delete,
        (NAME,),
        admin_only=True,
    ),
    Command(
        ("namespace", "bind"),
        "make a channel search a namespace",
        bind,
        (NAME, CHANNEL),
        admin_only=True,
    ),
    Command(
        ("namespace", "unbind"),
        "stop a channel searching a namespace",
        unbind,
        (NAME, CHANNEL),
        admin_only=True,
    ),
    Command(
        ("namespace", "uploads"),
        "index files dropped in a channel into a namespace",
        uploads,
        (NAME, CHANNEL),
        admin_only=True,
    ),
)
