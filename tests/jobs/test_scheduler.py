"""The scheduler and the one-runner lock: real APScheduler, real databases."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import BACKFILL, JobSpec, ScheduleConfig, Scheduler
from core.db.access import Database
from core.db.engine import create_engine
from core.db.knowledge import KnowledgeStore
from core.db.usage import UsageStore
from core.ingestion.service import IngestionService
from core.jobs.lock import AdvisoryLock
from core.jobs.retention import Retention
from core.jobs.rollup import UsageRollup
from core.jobs.runner import JobRunner
from tests.jobs.data import NOW, usage, world


async def _until(predicate, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_failing_job_logs_its_traceback_and_the_others_keep_running(engine, caplog) -> None:
    ticks: list[int] = []

    async def boom() -> dict[str, int]:
        raise RuntimeError("disk on fire")

    async def tick() -> dict[str, int]:
        ticks.append(1)
        return {"ticks": len(ticks)}

    every = IntervalTrigger(seconds=0.2, timezone=UTC)
    scheduler = Scheduler(
        [JobSpec("boom", boom, every), JobSpec("tick", tick, every)],
        runner=JobRunner(AdvisoryLock(engine)),
    )
    caplog.set_level(logging.INFO, logger="core.jobs.runner")
    await scheduler.start()
    try:
        await _until(lambda: Counter(r.job for r in scheduler.history)["boom"] >= 3)
        await _until(lambda: len(ticks) >= 3)
        assert scheduler.running
    finally:
        await scheduler.shutdown()
    failed = [r for r in scheduler.history if r.job == "boom"]
    assert {r.status for r in failed} == {"failed"} and failed[0].error == "RuntimeError"
    assert {r.status for r in scheduler.history if r.job == "tick"} == {"ok"}
    tracebacks = [r for r in caplog.records if r.exc_info and "boom" in r.getMessage()]
    assert tracebacks and "disk on fire" in str(tracebacks[0].exc_info[1])
    assert any("job tick: ticks=" in r.getMessage() for r in caplog.records)
    assert not scheduler.running


async def test_two_schedulers_on_one_postgres_database_run_each_job_once(
    postgres_databases,
) -> None:
    name, url = await postgres_databases.create()
    engines = [create_engine(url), create_engine(url)]
    try:
        database = Database(engines[0])
        w = await world(database)
        yesterday = datetime.now(UTC) - timedelta(days=1)
        await UsageStore(database).record_many([usage(w, yesterday) for _ in range(5)])
        calls: Counter[str] = Counter()
        schedulers = []
        when = datetime.now(UTC) + timedelta(seconds=1)
        for engine in engines:
            own = Database(engine)
            retention, rollup = Retention(own), UsageRollup(own)

            async def run_retention(retention=retention) -> dict[str, int]:
                calls["retention"] += 1
                return (await retention.run()).counts()

            async def run_rollup(rollup=rollup) -> dict[str, int]:
                calls["rollup"] += 1
                return await rollup.daily()

            jobs = [
                JobSpec("retention", run_retention, DateTrigger(when)),
                JobSpec("rollup", run_rollup, DateTrigger(when)),
            ]
            runner = JobRunner(AdvisoryLock(engine), min_hold_seconds=1.0)
            schedulers.append(Scheduler(jobs, runner=runner))
        for scheduler in schedulers:
            await scheduler.start()
        await _until(lambda: sum(len(s.history) for s in schedulers) == 4)
        for scheduler in schedulers:
            await scheduler.shutdown()
        outcomes = Counter((r.job, r.status) for s in schedulers for r in s.history)
        assert outcomes == {
            ("retention", "ok"): 1,
            ("retention", "skipped"): 1,
            ("rollup", "ok"): 1,
            ("rollup", "skipped"): 1,
        }
        assert calls == {"retention": 1, "rollup": 1}
    finally:
        for engine in engines:
            await engine.dispose()
        await postgres_databases.drop(name)


async def test_advisory_lock_excludes_other_processes_per_job(postgres_databases) -> None:
    name, url = await postgres_databases.create()
    a, b = create_engine(url), create_engine(url)
    try:
        async with AdvisoryLock(a).hold("rollup") as held:
            assert held
            async with AdvisoryLock(b).hold("rollup") as other:
                assert not other
            async with AdvisoryLock(b).hold("retention") as different:
                assert different
        async with AdvisoryLock(b).hold("rollup") as after:
            assert after
    finally:
        await a.dispose()
        await b.dispose()
        await postgres_databases.drop(name)


async def test_sqlite_lock_is_always_granted(tmp_path, sqlite_databases) -> None:
    engine = create_engine(sqlite_databases.create(tmp_path / "x.db"))
    try:
        lock = AdvisoryLock(engine)
        async with lock.hold("rollup") as one, lock.hold("rollup") as two:
            assert one and two
    finally:
        await engine.dispose()


async def test_standard_schedule_backfills_on_start_and_runs_jobs_by_hand(engine, database) -> None:
    w = await world(database)
    await UsageStore(database).record_many([usage(w, NOW - timedelta(days=d)) for d in (1, 2, 3)])
    ingestion = IngestionService(
        knowledge=KnowledgeStore(database), usage=UsageStore(database), embedder=None, vectors=None
    )
    scheduler = Scheduler.standard(
        database,
        ingestion=ingestion,
        lock=AdvisoryLock(engine),
        config=ScheduleConfig(retention_hour_utc=5, min_hold_seconds=0),
        clock=lambda: NOW,
    )
    assert scheduler.job_names() == ["retention", "rollup", "reconcile", "recover-ingestion"]
    await scheduler.start()
    try:
        await _until(lambda: any(r.job == BACKFILL for r in scheduler.history))
        backfill = next(r for r in scheduler.history if r.job == BACKFILL)
        assert backfill.status == "ok" and backfill.counts["days"] == 3
        recovered = await scheduler.run_now("recover-ingestion")
        assert recovered.status == "ok" and recovered.counts == {"stuck_documents_failed": 0}
        retention = await scheduler.run_now("retention")
        assert retention.status == "ok" and "messages" in retention.counts
    finally:
        await scheduler.shutdown()


async def test_shutdown_lets_a_running_job_finish(engine) -> None:
    started, done = asyncio.Event(), []

    async def slow() -> dict[str, int]:
        started.set()
        await asyncio.sleep(0.3)
        done.append(1)
        return {"slept": 1}

    scheduler = Scheduler(
        [JobSpec("slow", slow, DateTrigger(datetime.now(UTC)))],
        runner=JobRunner(AdvisoryLock(engine)),
    )
    await scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    await scheduler.shutdown(grace_seconds=5)
    assert done == [1] and [r.status for r in scheduler.history] == ["ok"]
