"""Real test databases: SQLite files and PostgreSQL databases, built by the migrations.

The schema is migrated once into a template (a SQLite file, a PostgreSQL template database)
and each test gets its own copy, so tests are isolated and fast.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from core.db import migrate

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        conn = await asyncpg.connect(_dsn(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


class PostgresDatabases:
    """Creates per-test databases from a migrated template; drops them afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.template = f"lk_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(_dsn(self.url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _admin_sync(self, sql: str) -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, self._admin(sql)).result()

    def setup(self) -> None:
        self._admin_sync(f'CREATE DATABASE "{self.template}"')
        migrate.upgrade(self.url_for(self.template))

    def teardown(self) -> None:
        self._admin_sync(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    async def create(self) -> tuple[str, str]:
        name = f"lk_t_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name, self.url_for(name)

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SqliteDatabases:
    """Copies a migrated template file for each test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"

    def setup(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(f"sqlite+aiosqlite:///{self.template}")

    def create(self, target: Path) -> str:
        shutil.copyfile(self.template, target)
        return f"sqlite+aiosqlite:///{target}"
