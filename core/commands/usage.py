"""`/lore usage` (admins) and `/lore quota ...`: tokens used, their cost, daily limits."""

from __future__ import annotations

from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import Preformatted, RichText, line, verbatim
from core.reports import DIMENSIONS, window

GROUP = ("quota", "Daily token use and limits")
MAX_DAILY_LIMIT = 10**12
PERIODS = ("today", "7d", "30d")
QUOTA_SCOPES = ("user", "workspace", "user-uploads", "workspace-uploads")
_LIMIT_FIELDS = {
    "user": "user_daily_tokens",
    "workspace": "workspace_daily_tokens",
    "user-uploads": "user_daily_upload_tokens",
    "workspace-uploads": "workspace_daily_upload_tokens",
}


async def usage(tools: Tools, call: Call) -> CommandResult:
    period, by = call.text("period") or "7d", call.text("by") or "day"
    try:
        since, until = window(period, call.cmd.received_at)
        report = await tools.reports.usage(
            call.workspace.id, since=since, until=until, by=by, ids=bool(call.arg("ids"))
        )
    except ValueError as exc:
        return CommandResult(RichText((line(f"{exc}."),)), ok=False)
    body = RichText((line(f"Usage {period} by {by}:"), Preformatted(report.table())))
    chart = await tools.reports.chart(report) if report.rows else None
    return CommandResult(body, report=report, chart_png=chart)


async def show(tools: Tools, call: Call) -> CommandResult:
    status = await tools.quota.status(call.workspace.id, call.user.id)
    return CommandResult(verbatim(status))


async def set_limit(tools: Tools, call: Call) -> CommandResult:
    scope = call.text("scope") or ""
    limit = call.arg("limit")
    assert isinstance(limit, int)
    if limit > MAX_DAILY_LIMIT:
        return CommandResult(
            RichText((line(f"A daily limit can be at most {MAX_DAILY_LIMIT:,} tokens."),)),
            ok=False,
        )
    await tools.usage.set_workspace_limits(call.workspace.id, **{_LIMIT_FIELDS[scope]: limit})
    return CommandResult(
        RichText((line(f"Daily {scope.replace('-', ' ')} limit set to {limit:,} tokens."),))
    )


USAGE = Command(
    ("usage",),
    "tokens and cost",
    usage,
    (
        Param("period", Kind.CHOICE, "Which days", choices=PERIODS, strict=False),
        Param(
            "by",
            Kind.CHOICE,
            "One row per",
            choices=tuple(DIMENSIONS),
            keyword="by",
            strict=False,
        ),
        Param("ids", Kind.FLAG, "Show platform ids beside names"),
    ),
    admin_only=True,
)
COMMANDS = (
    USAGE,
    Command(("quota", "show"), "today's token use and limits", show),
    Command(
        ("quota", "set"),
        "set a daily token limit",
        set_limit,
        (
            Param("scope", Kind.CHOICE, "Whose limit", required=True, choices=QUOTA_SCOPES),
            Param(
                "limit",
                Kind.INTEGER,
                "Tokens per day",
                required=True,
                minimum=0,
                maximum=MAX_DAILY_LIMIT,
            ),
        ),
        admin_only=True,
        note=f"tokens per day, up to {MAX_DAILY_LIMIT:,}",
    ),
)
