"""`/lore gaps`: the questions nobody could answer, grouped by meaning (admins, and namespace
owners for their namespaces)."""

from __future__ import annotations

from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import ChannelRef, Code, Line, Link, Part, RichText, Strong, line, rich
from core.db.records import NamespaceRecord
from core.errors import NotAllowed
from core.gaps import GapGroup, GapReport
from core.reports import window

PERIODS = ("today", "7d", "30d")
SHOWN = 15  # groups in a chat reply (the CLI shows them all)
MAX_QUESTION = 200
NOT_OWNER = "Only admins and the namespace's owner can see its gaps."
NO_GAPS = "Gap reports are not available here."
NOT_OWNER_DIGEST = "Only namespace owners and admins can get the weekly digest."
DIGEST_STATES = ("on", "off")


async def gaps(tools: Tools, call: Call) -> CommandResult:
    if tools.gaps is None:
        return CommandResult(rich(NO_GAPS), ok=False)
    period, name = call.text("period") or "7d", call.text("namespace")
    if period not in PERIODS and name is None:  # `/lore gaps hr`
        period, name = "7d", period
    if period not in PERIODS:
        return CommandResult(rich("The period is `today`, `7d` or `30d`."), ok=False)
    scope = await _scope(tools, call, name)
    since, until = window(period, call.cmd.received_at)
    report = await tools.gaps.report(
        since=since,
        until=until,
        workspace_id=call.workspace.id if scope is None else None,
        namespaces=scope,
    )
    return CommandResult(render(report, period))


async def _scope(tools: Tools, call: Call, name: str | None) -> list[NamespaceRecord] | None:
    """The namespaces the caller asks about (None: the whole workspace, for an admin)."""
    if name is not None:
        ns = await tools.knowledge.namespace(call.place.knowledge.id, name.lower())
        if not call.is_admin and ns.owner_id != call.user.id:
            raise NotAllowed(NOT_OWNER, reason="not the namespace's owner")
        return [ns]
    if call.is_admin:
        return None
    owned = (await tools.knowledge.owned_namespaces(call.user.id)).get(call.user.id, [])
    if not owned:
        raise NotAllowed(NOT_OWNER, reason="owns no namespace")
    return owned


def render(report: GapReport, period: str) -> RichText:
    """The report as rich text: one line per group, most asked first."""
    where = f" in {', '.join(report.namespaces)}" if report.namespaces else ""
    if not report.groups:
        return RichText((line(f"No unanswered questions{where} ({period})."),))
    lines: list[Line] = [
        line(
            Strong(f"Unanswered questions{where} ({period})"),
            f": {report.questions} asked, {len(report.groups)} topics",
        )
    ]
    lines += [_row(g) for g in report.groups[:SHOWN]]
    if len(report.groups) > SHOWN:
        lines.append(
            line(f"… and {len(report.groups) - SHOWN} more (", Code("lorekeeper gaps"), ").")
        )
    return RichText(tuple(lines))


def _row(group: GapGroup) -> Line:
    question = group.question[:MAX_QUESTION]
    unasked = f", {group.unasked} without a mention" if group.unasked else ""
    parts: list[Part] = [
        "• ",
        Strong(question),
        f" ({group.count}x{unasked}, last {group.last_asked:%b %d}",
    ]
    for i, place in enumerate(group.places[:3]):
        parts += [", " if i else " in ", ChannelRef(place.id, place.name)]
    parts.append(")")
    if group.link:
        parts += [" ", Link(group.link, "thread")]
    return line(*parts)


async def digest(tools: Tools, call: Call) -> CommandResult:
    """Turn the caller's weekly digest on or off (no argument: say whether it is on)."""
    if tools.digests is None or tools.gaps is None:
        return CommandResult(rich(NO_GAPS), ok=False)
    owned = (await tools.knowledge.owned_namespaces(call.user.id)).get(call.user.id, [])
    if not owned and not call.is_admin:
        raise NotAllowed(NOT_OWNER_DIGEST, reason="owns no namespace")
    state = call.text("state")
    if state is None:
        on = await tools.digests.enabled(call.user.id)
        return CommandResult(RichText((line(*_digest_state(on)),)))
    await tools.digests.set_enabled(call.user.id, state == "on")
    said = _digest_state(state == "on")
    if state == "on" and not owned:
        said += [" You own no namespace yet, so there is nothing to send."]
    return CommandResult(RichText((line(*said),)))


def _digest_state(on: bool) -> list[Part]:
    if on:
        return [
            "Your weekly digest is on: each Monday a direct message lists the questions nobody "
            "could answer in the namespaces you own (none when there were none).",
        ]
    return ["Your weekly digest is off. Turn it on with ", Code("/lore digest on"), "."]


COMMANDS = (
    Command(
        ("gaps",),
        "questions nobody could answer, grouped (admins and namespace owners)",
        gaps,
        (
            Param("period", Kind.CHOICE, "Which days", choices=PERIODS, strict=False),
            Param("namespace", Kind.NAMESPACE, "One namespace (default: all you may see)"),
        ),
    ),
    Command(
        ("digest",),
        "a weekly direct message with your namespaces' gaps (namespace owners)",
        digest,
        (Param("state", Kind.CHOICE, "Turn it on or off", choices=DIGEST_STATES),),
        audited=True,
    ),
)
