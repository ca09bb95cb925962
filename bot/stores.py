"""The database half of the composition root, for commands that embed nothing.

`namespaces`, `usage` and `jobs run rollup|retention` read and write SQL only. They build these
stores instead of the whole container, and so never import the services, the LLM client or the
embedding model's libraries. The vector store is opened only if a call needs it (the
organisation adopting an older workspace's namespaces moves their vectors).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot import process
from bot.settings import Settings
from core.db.access import Database
from core.db.adoption import AdoptionStore
from core.db.engine import PoolOptions, create_engine, parse_database_url
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.usage import UsageStore
from core.errors import ConfigError
from core.organisation import Membership, Organisation
from core.retrieval.base import Embedder, VectorHit, VectorRecord, VectorStore
from core.retrieval.connection import is_server_uri
from core.retrieval.milvus import MilvusVectorStore

log = logging.getLogger(__name__)


def open_database(settings: Settings) -> Database:
    """The database the settings name (connections open on first use)."""
    engine = create_engine(
        settings.database_url,
        pool=PoolOptions(
            size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pre_ping=settings.db_pool_pre_ping,
            recycle_seconds=settings.db_pool_recycle,
        ),
    )
    return Database(engine)


def embedder_for(settings: Settings) -> Embedder:
    """The configured embedding model (nothing is loaded until it embeds)."""
    from core.retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        trace=settings.embedding_trace,
        cache_dir=settings.model_cache_dir,
    )


def vector_store(settings: Settings, *, dimension: int) -> MilvusVectorStore:
    uri = settings.milvus_uri
    if not is_server_uri(uri):
        uri = str(Path(uri).expanduser())
    return MilvusVectorStore(
        uri,
        dimension=dimension,
        collection=settings.milvus_collection,
        token=settings.secret("milvus_token"),
    )


async def open_vectors(
    vectors: MilvusVectorStore, settings: Settings, *, embedder: Embedder | None = None
) -> None:
    """Open the store (with ``embedder``, loading its model meanwhile: a command about to embed
    waits for the longer of the two, not both). A Milvus server that can't be reached is one
    line naming MILVUS_URI."""
    warming = None if embedder is None else asyncio.ensure_future(embedder.embed_query("warm"))
    try:
        await _open(vectors, settings)
    except BaseException:
        if warming is not None:
            warming.cancel()
        raise
    if warming is not None:
        try:
            await warming
        except BaseException:
            await vectors.close()
            raise


async def _open(vectors: MilvusVectorStore, settings: Settings) -> None:
    await asyncio.to_thread(process.import_vector_client)  # a worker: it takes a while
    try:
        await vectors.open()
    except Exception as exc:
        # pymilvus is imported by now if the failure is its own
        milvus_error = getattr(sys.modules.get("pymilvus.exceptions"), "MilvusException", None)
        if not vectors.is_server or milvus_error is None or not isinstance(exc, milvus_error):
            raise
        reason = getattr(exc, "message", "") or str(exc)
        raise ConfigError(
            f"MILVUS_URI: can't connect to the Milvus server at {_shown(settings.milvus_uri)}"
            f" ({reason})"
        ) from None


def _shown(uri: str) -> str:
    """The URI without any credentials in it."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def membership(settings: Settings) -> Membership:
    return Membership(
        tenancy=settings.tenancy,
        slack_teams=frozenset(settings.slack_team_ids),
        discord_guilds=settings.organisation_guilds,
    )


def data_location(settings: Settings) -> str:
    """Where this install keeps its data, as a person would look for it."""
    url = parse_database_url(settings.database_url)
    if url.drivername.startswith("sqlite"):
        database = Path(url.database or "").expanduser().resolve()
        folder = settings.data_dir.expanduser().resolve()
        if database.parent == folder:
            return f"the data folder {folder}"
        return f"the database {database}"
    return f"the database {url.render_as_string(hide_password=True)}"


@dataclass
class Stores:
    """The SQL stores and the organisation over them; ``close()`` releases them."""

    settings: Settings
    database: Database
    identity: IdentityStore
    knowledge: KnowledgeStore
    usage: UsageStore
    organisation: Organisation
    vectors: OnDemandVectors

    async def close(self) -> None:
        await self.vectors.close()
        await self.database.dispose()


def open_stores(settings: Settings) -> Stores:
    database = open_database(settings)
    identity, knowledge = IdentityStore(database), KnowledgeStore(database)
    vectors = OnDemandVectors(settings)
    organisation = Organisation(
        identity, knowledge, AdoptionStore(database), vectors, membership(settings)
    )
    return Stores(
        settings=settings,
        database=database,
        identity=identity,
        knowledge=knowledge,
        usage=UsageStore(database),
        organisation=organisation,
        vectors=vectors,
    )


class OnDemandVectors(VectorStore):
    """The configured vector store, opened by the first call that needs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: MilvusVectorStore | None = None
        self._opening = asyncio.Lock()  # two first calls at once open one store

    async def _open(self) -> MilvusVectorStore:
        async with self._opening:
            if self._store is None:
                dimension = embedder_for(self._settings).dimension
                store = vector_store(self._settings, dimension=dimension)
                await _open(store, self._settings)
                self._store = store
            return self._store

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        await (await self._open()).upsert(records)

    async def search(
        self,
        *,
        query_text: str,
        query_vector: Sequence[float],
        workspace_id: str | Sequence[str],
        namespace_ids: Sequence[str],
        document_ids: Sequence[str] | None = None,
        limit: int = 5,
        mode: str = "hybrid",
        ids_only: bool = False,
    ) -> list[VectorHit]:
        return await (await self._open()).search(
            query_text=query_text,
            query_vector=query_vector,
            workspace_id=workspace_id,
            namespace_ids=namespace_ids,
            document_ids=document_ids,
            limit=limit,
            mode=mode,
            ids_only=ids_only,
        )

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        await (await self._open()).delete_documents(document_ids)

    async def move_document(self, document_id: str, *, workspace_id: str, namespace_id: str) -> int:
        store = await self._open()
        return await store.move_document(
            document_id, workspace_id=workspace_id, namespace_id=namespace_id
        )

    async def move_namespace(
        self, namespace_id: str, *, workspace_id: str, into: str | None = None
    ) -> int:
        store = await self._open()
        return await store.move_namespace(namespace_id, workspace_id=workspace_id, into=into)

    async def delete_namespace(self, namespace_id: str) -> None:
        await (await self._open()).delete_namespace(namespace_id)

    async def chunk_ids(self, *, document_ids: Sequence[str] | None = None) -> set[str]:
        return await (await self._open()).chunk_ids(document_ids=document_ids)

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        await (await self._open()).delete_chunks(chunk_ids)

    async def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        return await (await self._open()).dense_vectors(chunk_ids)
