"""Runs one job under its lock, times it, logs its counts, and never lets it escape."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.jobs.clock import Clock, system_clock
from core.jobs.lock import JobLock
from core.observability import Metrics, NullMetrics

log = logging.getLogger(__name__)

JobFunction = Callable[[], Awaitable[Mapping[str, int]]]
"""A job: does its work and returns counts (rows deleted, days rolled up, ...)."""

Status = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class JobRun:
    """One attempt at a job: ``skipped`` when another process held its lock."""

    job: str
    status: Status
    started_at: datetime
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items()) or "nothing to do"
        if self.status == "ok":
            return f"{self.job}: {counts} in {self.seconds:.2f}s"
        if self.status == "skipped":
            return f"{self.job}: skipped, another process is running it"
        return f"{self.job}: failed after {self.seconds:.2f}s ({self.error})"


class JobRunner:
    """Takes the job's lock, runs it, and reports a ``JobRun``; failures are logged, not raised.

    ``min_hold_seconds`` keeps the lock at least that long after the start, so a process whose
    clock fires a little later still finds the job taken and skips it.
    """

    def __init__(
        self,
        lock: JobLock,
        *,
        clock: Clock = system_clock,
        min_hold_seconds: float = 0.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._min_hold = min_hold_seconds
        self._metrics = metrics or NullMetrics()

    async def run(self, name: str, job: JobFunction) -> JobRun:
        """Run ``job`` once if no other process is running it."""
        started_at = self._clock()
        started = time.perf_counter()
        async with self._lock.hold(name) as held:
            if not held:
                log.info("job %s skipped: running in another process", name)
                return JobRun(name, "skipped", started_at, 0.0)
            outcome = await self._attempt(name, job, started_at, started)
            self._metrics.job_run(name, ok=outcome.status == "ok", seconds=outcome.seconds)
            rest = self._min_hold - (time.perf_counter() - started)
            if rest > 0:
                await asyncio.sleep(rest)
            return outcome

    async def _attempt(
        self, name: str, job: JobFunction, started_at: datetime, started: float
    ) -> JobRun:
        try:
            counts = dict(await job())
        except Exception as exc:  # one job's failure must not stop the scheduler
            seconds = time.perf_counter() - started
            log.exception("job %s failed after %.2fs", name, seconds)
            return JobRun(name, "failed", started_at, seconds, error=type(exc).__name__)
        run = JobRun(name, "ok", started_at, time.perf_counter() - started, counts)
        log.info("job %s", run.summary())
        return run
