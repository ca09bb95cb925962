"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.access import Database
from core.db.engine import create_engine
from core.retrieval.embedder import default_cache_dir
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_reachable, postgres_url

if TYPE_CHECKING:
    from core.ingestion.service import IngestionService

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Bots started in subprocesses (a fresh data directory each) share one built int8 model
# instead of building it again per test.
os.environ.setdefault("EMBEDDING_CACHE_DIR", str(default_cache_dir()))


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
def database(engine: AsyncEngine) -> Database:
    return Database(engine)


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once for the whole run."""
    from core.retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def ingestion_service(
    database, embedder, vectors, *, usage=None, indexing=None
) -> IngestionService:
    """An IngestionService with small chunks and limits (one per simulated process)."""
    from core.db.knowledge import KnowledgeStore
    from core.db.usage import UsageStore
    from core.ingestion.extract import ExtractLimits
    from core.ingestion.service import IngestionService

    return IngestionService(
        knowledge=KnowledgeStore(database),
        usage=usage or UsageStore(database),
        embedder=embedder,
        vectors=vectors,
        limits=ExtractLimits(max_bytes=200_000, max_chars=100_000),
        chunk_size=400,
        chunk_overlap=80,
        indexing=indexing,
    )


@pytest.fixture
async def world(database, tmp_path, embedder):
    """Ingestion on real milvus-lite: namespaces a1, a2 (workspace a) and b1 (workspace b)."""
    from core.db.identity import IdentityStore
    from core.db.knowledge import KnowledgeStore
    from core.retrieval.milvus import MilvusVectorStore
    from core.retrieval.retriever import Retriever

    vectors = MilvusVectorStore(str(tmp_path / "m.db"), dimension=embedder.dimension)
    await vectors.open()
    knowledge = KnowledgeStore(database)
    service = ingestion_service(database, embedder, vectors)
    ids = IdentityStore(database)
    ws_a = await ids.workspace("slack", "TA")
    ws_b = await ids.workspace("slack", "TB")
    ns = {
        "a1": await knowledge.ensure_namespace(ws_a.id, "one"),
        "a2": await knowledge.ensure_namespace(ws_a.id, "two"),
        "b1": await knowledge.ensure_namespace(ws_b.id, "one"),
    }
    retriever = Retriever(embedder=embedder, vectors=vectors, knowledge=knowledge)
    yield service, knowledge, vectors, retriever, ns, {"a": ws_a, "b": ws_b}, database
    await service.close()
    await vectors.close()
