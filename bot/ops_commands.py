"""`lorekeeper usage` and `lorekeeper jobs run`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.container import retention_policy
from bot.notifiers import platform_notifiers
from bot.runtime import container, stores
from bot.stores import data_location
from core.db.access import Database
from core.db.types import utcnow
from core.jobs.lock import AdvisoryLock
from core.jobs.retention import Retention, RetentionPolicy
from core.jobs.rollup import UsageRollup
from core.jobs.runner import JobFunction, JobRunner
from core.reports import ReportService, window

if TYPE_CHECKING:
    from bot.container import Container

EXIT_CODES = {"ok": 0, "failed": 1, "skipped": 3}
GAP_DIGEST = "gap-digest"  # the scheduler's name for the job, so both take the same lock


async def usage_command(args: argparse.Namespace) -> int:
    by = args.by or "day"
    try:
        since, until = window(f"{args.days}d", utcnow())
    except ValueError:
        print("lorekeeper usage: --days is between 1 and 3660", file=sys.stderr)
        return 2
    async with stores(args.env_file) as c:
        reports = ReportService(c.database)
        workspace_id = None
        if args.workspace:
            workspace_id = await reports.find_workspace(args.workspace)
            if workspace_id is None:
                print(f"lorekeeper usage: no single workspace '{args.workspace}'", file=sys.stderr)
                return 1
        report = await reports.usage(workspace_id, since=since, until=until, by=by, ids=args.ids)
        scope = f"workspace {args.workspace}" if args.workspace else "all workspaces"
        print(f"Usage of {scope}, last {args.days} day(s) by {by} (UTC):")
        print(report.table())
        if not report.rows:
            print(f"No usage recorded in {data_location(c.settings)}.")
        if args.chart:
            path = Path(args.chart)
            path.write_bytes(await reports.chart(report))
            print(f"chart written to {path}")
    return 0


def _sql_job(db: Database, name: str, day: date | None, policy: RetentionPolicy) -> JobFunction:
    if name == "retention":

        async def retention() -> dict[str, int]:
            return (await Retention(db, policy=policy).run()).counts()

        return retention
    rollup = UsageRollup(db)
    if day is None:
        return rollup.daily

    async def one_day() -> dict[str, int]:
        return {"days": 1, "rows": await rollup.rollup_day(day)}

    return one_day


def _reconcile(c: Container) -> JobFunction:
    async def reconcile() -> dict[str, int]:
        return asdict(await c.ingestion.reconcile())

    return reconcile


async def jobs_command(args: argparse.Namespace) -> int:
    day = None
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            print("lorekeeper jobs: --date is YYYY-MM-DD", file=sys.stderr)
            return 2
        if args.job != "rollup":
            print("lorekeeper jobs: --date applies to the rollup only", file=sys.stderr)
            return 2
    if args.job == "reconcile":  # the vector store and the embedding model: the container
        async with container(args.env_file, offline_llm=True) as c:
            run = await JobRunner(AdvisoryLock(c.database.engine)).run(args.job, _reconcile(c))
    elif args.job == GAP_DIGEST:  # the embedder groups the gaps; DMs through each platform
        async with (
            container(args.env_file, offline_llm=True) as c,
            platform_notifiers(c.settings, c.digest),
        ):
            run = await JobRunner(AdvisoryLock(c.database.engine)).run(args.job, c.digest.run)
    else:
        async with stores(args.env_file) as s:
            policy = retention_policy(s.settings, sqlite=s.database.is_sqlite)
            job = _sql_job(s.database, args.job, day, policy)
            run = await JobRunner(AdvisoryLock(s.database.engine)).run(args.job, job)
    print(run.summary())
    return EXIT_CODES[run.status]
