"""`lorekeeper run`: the long-running bot. Starts in order, stops in reverse on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bot import process
from bot.container import Container, build, retention_policy
from bot.health import HealthServer
from bot.observability import PrometheusMetrics, configure_logging
from bot.runtime import prepare_database, warm_up_model
from bot.scheduler import ScheduleConfig, Scheduler
from bot.settings import Settings, load_settings
from core.jobs.lock import AdvisoryLock

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30  # all platforms together; deploy/ gives the process 75 s to stop
Runner = Callable[[Container, Settings, asyncio.Event], Coroutine[Any, Any, None]]


def _platforms(args: argparse.Namespace) -> dict[str, Runner]:
    runners: dict[str, Runner] = {}
    if args.slack:
        from bot.slack_runner import run_slack

        runners["slack"] = lambda c, s, stop: run_slack(c, s, stop=stop)
    if args.discord:
        from bot.discord_runner import run_discord

        runners["discord"] = lambda c, s, stop: run_discord(c, s, stop=stop)
    return runners


def _checks(
    container: Container, tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event
) -> dict[str, Callable[[], Awaitable[bool]]]:
    async def database() -> bool:
        async with container.database.read() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def milvus() -> bool:
        await container.vectors.count()
        return True

    async def accepting() -> bool:
        return not stop.is_set()  # not ready once shutdown began: the balancer stops routing

    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        "accepting": accepting,
        "database": database,
        "milvus": milvus,
    }
    for name, task in tasks.items():

        async def alive(task: asyncio.Task[None] = task) -> bool:
            return not task.done()

        checks[name] = alive
    return checks


async def serve(
    container: Container,
    settings: Settings,
    runners: dict[str, Runner],
    *,
    metrics: PrometheusMetrics,
    stop: asyncio.Event,
) -> int:
    """Run until ``stop`` is set (or a platform fails), then shut down in reverse order."""
    schedule = ScheduleConfig(
        retention_hour_utc=settings.retention_hour_utc,
        every=timedelta(seconds=settings.job_interval_seconds)
        if settings.job_interval_seconds
        else None,
    )
    # only ingestions stuck for long: a younger one may be running in another replica or CLI
    recovered = await container.ingestion.recover(stuck_after=schedule.stuck_after)
    if recovered:
        log.warning("marked %d interrupted ingestion(s) as failed", recovered)
    scheduler = Scheduler.standard(
        container.database,
        ingestion=container.ingestion,
        lock=AdvisoryLock(container.database.engine),
        config=schedule,
        policy=retention_policy(settings, sqlite=container.database.is_sqlite),
        metrics=metrics,
        # owners opt in with `/lore digest on`; each platform's runner registers its DMs
        digest=container.digest if settings.gap_digest == "weekly" else None,
    )
    tasks: dict[str, asyncio.Task[None]] = {
        name: asyncio.create_task(run(container, settings, stop), name=name)
        for name, run in runners.items()
    }
    health = HealthServer(
        port=settings.http_port, registry=metrics.registry, checks=_checks(container, tasks, stop)
    )
    await health.start()
    await scheduler.start()
    process.freeze_heap()  # everything built at start-up lives until exit
    warm_up = asyncio.create_task(warm_up_model(container), name="warm-up")
    code = 0
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({waiter, *tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception() is not None:
            log.error("platform %s stopped", task.get_name(), exc_info=task.exception())
            code = 1
    stop.set()
    log.info("shutting down: finishing answers in flight")
    if tasks:
        finished, late = await asyncio.wait(tasks.values(), timeout=DRAIN_SECONDS)
        for task in late:
            log.warning("%s did not stop within %d s; cancelling", task.get_name(), DRAIN_SECONDS)
            task.cancel()
        if any(not t.cancelled() and t.exception() is not None for t in finished):
            code = 1
    warm_up.cancel()
    await scheduler.shutdown()
    await health.stop()
    await container.close()
    waiter.cancel()
    return code


async def run_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    configure_logging(
        level=settings.log_level,
        json_logs=settings.log_json,
        secrets=settings.secret_values(),
    )
    if not (args.slack or args.discord):
        print("lorekeeper run: choose --slack and/or --discord")
        return 2
    missing = [
        name
        for flag, name, field in (
            (args.slack, "SLACK_BOT_TOKEN", "slack_bot_token"),
            (args.discord, "DISCORD_TOKEN", "discord_token"),
        )
        if flag and not settings.secret(field)
    ]
    if (
        args.slack
        and not settings.secret("slack_app_token")
        and not settings.secret("slack_signing_secret")
    ):
        missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
    if missing:
        print(f"lorekeeper run: {', '.join(missing)} not set")
        return 2
    if args.discord:
        process.point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    await prepare_database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    metrics = PrometheusMetrics()
    container = await build(settings, metrics=metrics)
    return await serve(container, settings, _platforms(args), metrics=metrics, stop=stop)
