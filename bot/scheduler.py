"""The job scheduler: APScheduler's AsyncIOScheduler, started and stopped with the bot.

Jobs (UTC): retention daily at ``retention_hour_utc``, the usage rollup at 00:15 for the day
before (and, on start, every day missed while the bot was down), SQL/Milvus reconciliation
daily an hour after retention, failing ingestion stuck in ``processing`` every few minutes,
and (``GAP_DIGEST=weekly``) the gap digest to the owners who want it on Mondays at 09:00; with
``ScheduleConfig.every``, each job at that interval instead, at the same instants in every
process (intervals counted from the Unix epoch). Every job coalesces missed runs into one,
never runs twice at once, runs in one process when several share PostgreSQL (``JobRunner`` +
``AdvisoryLock``), and logs its counts and duration; a failing job logs its traceback and the
scheduler carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.db.access import Database
from core.digest import GapDigest
from core.ingestion.service import IngestionService
from core.jobs.clock import Clock, system_clock
from core.jobs.lock import JobLock
from core.jobs.retention import Retention, RetentionPolicy
from core.jobs.rollup import UsageRollup
from core.jobs.runner import JobFunction, JobRun, JobRunner
from core.observability import Metrics

log = logging.getLogger(__name__)

BACKFILL = "rollup-backfill"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A named job and when it runs."""

    name: str
    run: JobFunction
    trigger: BaseTrigger


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    retention_hour_utc: int = 3
    rollup_minute_utc: int = 15
    recover_every_minutes: float = 5.0
    stuck_after: timedelta = timedelta(minutes=30)
    misfire_grace_seconds: int = 3600
    min_hold_seconds: float = 30.0
    every: timedelta | None = None  # every job at this interval instead (drills, tests)


def standard_jobs(
    *,
    retention: Retention,
    rollup: UsageRollup,
    ingestion: IngestionService,
    config: ScheduleConfig | None = None,
) -> list[JobSpec]:
    """The bot's four jobs with their UTC triggers."""
    cfg = config or ScheduleConfig()

    async def run_retention() -> dict[str, int]:
        return (await retention.run()).counts()

    async def reconcile() -> dict[str, int]:
        return asdict(await ingestion.reconcile())

    async def recover() -> dict[str, int]:
        return {"stuck_documents_failed": await ingestion.recover(stuck_after=cfg.stuck_after)}

    if cfg.every is not None:
        # from the epoch: every process fires at the same instants, so one runs the job
        interval = IntervalTrigger(
            seconds=cfg.every.total_seconds(), start_date=datetime(1970, 1, 1, tzinfo=UTC)
        )
        runs = [("retention", run_retention), ("rollup", rollup.daily)]
        runs += [("reconcile", reconcile), ("recover-ingestion", recover)]
        return [JobSpec(name, run, interval) for name, run in runs]
    hour = cfg.retention_hour_utc
    return [
        JobSpec("retention", run_retention, CronTrigger(hour=hour, minute=0, timezone=UTC)),
        JobSpec(
            "rollup",
            rollup.daily,
            CronTrigger(hour=0, minute=cfg.rollup_minute_utc, timezone=UTC),
        ),
        JobSpec("reconcile", reconcile, CronTrigger(hour=(hour + 1) % 24, minute=0, timezone=UTC)),
        JobSpec(
            "recover-ingestion",
            recover,
            IntervalTrigger(minutes=cfg.recover_every_minutes, timezone=UTC),
        ),
    ]


def gap_digest_job(digest: GapDigest, config: ScheduleConfig) -> JobSpec:
    """The weekly gap digest: Mondays at 09:00 UTC (or at ``config.every``)."""
    trigger: BaseTrigger = CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=UTC)
    if config.every is not None:
        trigger = IntervalTrigger(
            seconds=config.every.total_seconds(), start_date=datetime(1970, 1, 1, tzinfo=UTC)
        )
    return JobSpec("gap-digest", digest.run, trigger)


class Scheduler:
    """Owns the AsyncIOScheduler; ``start()`` inside the running loop, ``shutdown()`` to stop.

    ``on_start`` jobs (the rollup backfill) run once, right after start, through the same runner.
    """

    def __init__(
        self,
        jobs: Sequence[JobSpec],
        *,
        runner: JobRunner,
        on_start: Sequence[tuple[str, JobFunction]] = (),
        misfire_grace_seconds: int = 3600,
        history: int = 200,
    ) -> None:
        self._jobs = {job.name: job for job in jobs}
        self._on_start = list(on_start)
        self._runner = runner
        self._grace = misfire_grace_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[JobRun]] = set()
        self.history: deque[JobRun] = deque(maxlen=history)

    @classmethod
    def standard(
        cls,
        db: Database,
        *,
        ingestion: IngestionService,
        lock: JobLock,
        config: ScheduleConfig | None = None,
        policy: RetentionPolicy | None = None,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
        digest: GapDigest | None = None,
    ) -> Scheduler:
        """The production schedule: the four jobs (and the gap digest, when given), and the
        rollup backfill on start."""
        cfg = config or ScheduleConfig()
        rollup = UsageRollup(db, clock=clock)
        jobs = standard_jobs(
            retention=Retention(db, policy=policy, clock=clock),
            rollup=rollup,
            ingestion=ingestion,
            config=cfg,
        )
        if digest is not None:
            jobs.append(gap_digest_job(digest, cfg))
        return cls(
            jobs,
            runner=JobRunner(
                lock, clock=clock, min_hold_seconds=cfg.min_hold_seconds, metrics=metrics
            ),
            on_start=[(BACKFILL, rollup.backfill)],
            misfire_grace_seconds=cfg.misfire_grace_seconds,
        )

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def job_names(self) -> list[str]:
        return list(self._jobs)

    async def start(self) -> None:
        """Schedule every job and run the on-start jobs in the background."""
        if self.running:
            return
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self._grace,
            },
        )
        for job in self._jobs.values():
            scheduler.add_job(self._fire, job.trigger, args=[job.name], id=job.name, name=job.name)
        scheduler.start()
        self._scheduler = scheduler
        for name, function in self._on_start:
            self._track(self._runner.run(name, function))
        log.info("scheduler started: %s", ", ".join(self._jobs))

    async def run_now(self, name: str) -> JobRun:
        """Run one job immediately (same lock and logging as a scheduled run)."""
        return await self._fire(name)

    async def _fire(self, name: str) -> JobRun:
        task = self._track(self._runner.run(name, self._jobs[name].run))
        return await asyncio.shield(task)

    def _track(self, coro: Coroutine[Any, Any, JobRun]) -> asyncio.Task[JobRun]:
        task = asyncio.ensure_future(coro)
        self._running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[JobRun]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.history.append(task.result())

    async def shutdown(self, *, grace_seconds: float = 30.0) -> None:
        """Stop scheduling; running jobs may finish for ``grace_seconds``, then are cancelled."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        pending = list(self._running)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace_seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        log.info("scheduler stopped")
