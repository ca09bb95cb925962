"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db.engine import create_engine, session_factory
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_reachable, postgres_url

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    dbs = SqliteDatabases(tmp_path_factory.mktemp("sqlite-template"))
    dbs.setup()
    return dbs


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    url = postgres_url()
    with ThreadPoolExecutor(max_workers=1) as pool:
        problem = pool.submit(asyncio.run, postgres_reachable(url)).result()
    if problem is not None:
        if os.environ.get("LOREKEEPER_SKIP_POSTGRES") == "1" and os.environ.get("CI") != "true":
            pytest.skip(f"PostgreSQL unreachable and LOREKEEPER_SKIP_POSTGRES=1: {problem}")
        pytest.fail(
            f"PostgreSQL at {url} is unreachable ({problem}); start it or set TEST_POSTGRES_URL",
            pytrace=False,
        )
    dbs = PostgresDatabases(url)
    dbs.setup()
    yield dbs
    dbs.teardown()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A freshly migrated database of each kind, private to the test."""
    if request.param == "sqlite":
        dbs: SqliteDatabases = request.getfixturevalue("sqlite_databases")
        yield dbs.create(tmp_path / "test.db")
        return
    pg: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name, url = await pg.create()
    try:
        yield url
    finally:
        await pg.drop(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once for the whole run."""
    from core.retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()
