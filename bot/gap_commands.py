"""`lorekeeper gaps`: the questions nobody could answer, grouped by meaning."""

from __future__ import annotations

import argparse
import json
import sys

from bot.runtime import container, knowledge_owner
from core.db.types import utcnow
from core.gaps import GapReport
from core.reports import ReportService, window


async def gaps_command(args: argparse.Namespace) -> int:
    try:
        since, until = window(f"{args.days}d", utcnow())
    except ValueError:
        print("lorekeeper gaps: --days is between 1 and 3660", file=sys.stderr)
        return 2
    async with container(args.env_file) as c:
        workspace_id = None
        if args.workspace:
            workspace_id = await ReportService(c.database).find_workspace(args.workspace)
            if workspace_id is None:
                print(f"lorekeeper gaps: no single workspace '{args.workspace}'", file=sys.stderr)
                return 1
        namespaces = None
        if args.namespace:
            owner = await knowledge_owner(c)
            namespaces = [await c.knowledge.namespace(owner.id, args.namespace)]
        report = await c.gaps.report(
            since=since, until=until, workspace_id=workspace_id, namespaces=namespaces
        )
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(_table(report, args.days))
    return 0


def _table(report: GapReport, days: int) -> str:
    where = f" in {', '.join(report.namespaces)}" if report.namespaces else ""
    if not report.groups:
        return f"No unanswered questions{where} in the last {days} day(s)."
    out = [
        f"Unanswered questions{where}, last {days} day(s) (UTC): "
        f"{report.questions} asked, {len(report.groups)} topics"
    ]
    for g in report.groups:
        places = ", ".join(f"#{p.name or p.id}" for p in g.places)
        out.append(f"{g.count:>4}x  {g.last_asked:%Y-%m-%d %H:%M}  {_clean(g.question)}")
        out.append(f"       in {places}" + (f"  {g.link}" if g.link else ""))
        if g.unasked:
            out.append(f"       {g.unasked} asked without a mention (autoanswer left it alone)")
        out += [f"       also: {_clean(w)}" for w in g.wordings]
    return "\n".join(out)


def _clean(text: str) -> str:
    """One line without terminal control characters (the words are users')."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]
