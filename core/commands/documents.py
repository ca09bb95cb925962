"""`/lore docs ...`: list the documents here, delete one, share a conversation's file."""

from __future__ import annotations

import uuid

from core.commands.arguments import Invalid, Invocation, bind
from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import Code, Line, RichText, Strong, line

GROUP = ("docs", "Documents in a namespace")
LISTED = 50


async def list_documents(tools: Tools, call: Call) -> CommandResult:
    namespaces, docs = await tools.documents.listing(call.viewer, call.text("namespace"))
    if not docs:
        where = ", ".join(n.label for n in namespaces)
        return CommandResult(RichText((line(f"No documents in {where}."),)))
    labels = {n.id: n.label for n in namespaces}
    lines: list[Line] = [
        line(
            Code(str(d.id)),
            f" {d.title} ({labels.get(d.namespace_id, '?')}, {d.status}, {d.chunk_count} chunks)"
            + (f": {d.error}" if d.error else ""),
        )
        for d in docs[:LISTED]
    ]
    if len(docs) > LISTED:
        lines.append(line(f"…and {len(docs) - LISTED} more"))
    return CommandResult(RichText(tuple(lines)))


async def delete(tools: Tools, call: Call) -> CommandResult:
    doc = await tools.documents.delete(call.viewer, call.document_id())
    return CommandResult(RichText((line(f"Deleted {doc.title}."),)))


async def promote(tools: Tools, call: Call) -> CommandResult:
    done = await tools.documents.promote(
        call.viewer, call.document_id(), call.text("namespace") or ""
    )
    title, where = done.document.title, done.namespace.name
    if done.result.duplicate:
        return CommandResult(
            RichText(
                (
                    line(
                        f"{title} is already in ",
                        Strong(where),
                        "; this conversation's copy is gone.",
                    ),
                )
            )
        )
    parts: list[str | Strong] = [
        f"Shared {title} with ",
        Strong(where),
        f": everyone who can read {where} can now ask about it.",
    ]
    if done.result.replaced:
        parts.append(f" It replaced the earlier version of {title} there.")
    return CommandResult(RichText((line(*parts),)))


ID = Param("id", Kind.DOCUMENT, "The document's id (from /lore docs list)", required=True)
PROMOTE = Command(
    ("docs", "promote"),
    "share a file dropped here with a namespace (its uploader or admins)",
    promote,
    (ID, Param("namespace", Kind.NAMESPACE, "The namespace to share it with", required=True)),
    audited=True,
)
COMMANDS = (
    Command(
        ("docs", "list"),
        "documents here (or in a namespace)",
        list_documents,
        (Param("namespace", Kind.NAMESPACE, "The namespace (default: what this channel reads)"),),
    ),
    PROMOTE,
    Command(
        ("docs", "delete"),
        "delete a document (its uploader or an admin)",
        delete,
        (ID,),
        audited=True,
    ),
)


def promotion(document_id: uuid.UUID, namespace: str) -> Invocation | Invalid:
    """`/lore docs promote`, as a "Share with NAMESPACE" button stands for it."""
    return bind(PROMOTE, {"id": document_id, "namespace": namespace})
