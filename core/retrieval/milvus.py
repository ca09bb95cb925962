"""The ``VectorStore`` port on Milvus: embedded milvus-lite (a ``.db`` file) or a Milvus server.

Hybrid search is a dense (cosine) leg and a BM25 leg that Milvus computes from the chunk text,
fused by reciprocal-rank fusion. Every search is filtered by workspace and namespaces.

milvus-lite 2.5.1 defects this code steers around: a partition-key field breaks every filter
(so tenant ids are plain VARCHAR fields), ``WeightedRanker`` ranks BM25 hits backwards (so RRF),
and two processes on one file corrupt it (so ``StoreLock``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.retrieval.base import VectorHit, VectorRecord
from core.retrieval.lock import StoreLock

T = TypeVar("T")

TEXT_MAX_BYTES = 65535
ID_MAX_LENGTH = 64
MODES = ("hybrid", "dense", "bm25")
# Milvus caps offset + limit of one query/search at 16384.
_MAX_LIMIT = 16384
_ID_BATCH = 1000
CONCURRENT_CALLS = 4
_OUTPUT_FIELDS = ["chunk_id", "document_id", "namespace_id", "text"]


class MilvusVectorStore:
    """Chunks in one Milvus collection; call ``open()`` before use and ``close()`` after.

    ``uri`` is a local file path (milvus-lite; locked to this process with ``StoreLock``) or an
    ``http(s)://`` server URI. ``candidates`` is how deep each leg of a hybrid search reaches
    before fusion, ``rrf_k`` the RRF constant, ``index_type`` the dense index ("FLAT" is exact;
    milvus-lite also knows "IVF_FLAT" and "AUTOINDEX"), ``nlist`` / ``nprobe`` the IVF_FLAT
    clusters built and searched (recall grows with ``nprobe / nlist``), ``analyzer`` the BM25
    text analyzer parameters (Milvus' built-in "standard" one unless given, e.g.
    ``{"type": "english"}``).
    """

    def __init__(
        self,
        uri: str,
        *,
        dimension: int,
        collection: str = "lorekeeper_chunks",
        token: str | None = None,
        candidates: int = 50,
        rrf_k: int = 60,
        index_type: str = "FLAT",
        nlist: int = 1024,
        nprobe: int = 32,
        analyzer: dict[str, Any] | None = None,
    ) -> None:
        if dimension < 1:
            raise ValueError("dimension must be positive")
        self._uri = uri
        self._dimension = dimension
        self._collection = collection
        self._token = token
        self._candidates = candidates
        self._rrf_k = rrf_k
        self._index_type = index_type
        self._nlist = nlist
        self._nprobe = nprobe
        self._analyzer = analyzer
        self._client: Any = None
        self._lock: StoreLock | None = None
        # A few calls in flight at once (gRPC is thread-safe); close() waits for all of them.
        self._calls = asyncio.Semaphore(CONCURRENT_CALLS)

    @property
    def is_server(self) -> bool:
        return self._uri.startswith(("http://", "https://"))

    async def open(self) -> None:
        """Connect (taking the file lock for milvus-lite) and create the collection if needed."""
        if self._client is not None:
            return
        if not self.is_server:
            path = Path(self._uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = StoreLock(path)
            lock.acquire()
            self._lock = lock
        try:
            self._client = await asyncio.to_thread(self._connect)
        except BaseException:
            self._release_lock()
            raise

    async def close(self) -> None:
        """Disconnect and release the file lock. Safe to call twice."""
        client, self._client = self._client, None
        try:
            if client is not None:
                for _ in range(CONCURRENT_CALLS):
                    await self._calls.acquire()
                try:
                    await asyncio.to_thread(client.close)
                finally:
                    for _ in range(CONCURRENT_CALLS):
                        self._calls.release()
        finally:
            self._release_lock()

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace chunks by ``chunk_id``. Text over 64 KiB is cut on a UTF-8 boundary."""
        rows = [self._row(r) for r in records]
        for start in range(0, len(rows), _ID_BATCH):
            batch = rows[start : start + _ID_BATCH]
            await self._call(lambda c, b=batch: c.upsert(self._collection, b))  # type: ignore[misc]

    async def search(
        self,
        *,
        query_text: str,
        query_vector: Sequence[float],
        workspace_id: str,
        namespace_ids: Sequence[str],
        document_ids: Sequence[str] | None = None,
        limit: int = 5,
        mode: str = "hybrid",
    ) -> list[VectorHit]:
        """Top ``limit`` chunks of these namespaces. Ids must be UUIDs (else ``ValueError``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        expr = tenant_filter(workspace_id, namespace_ids, document_ids)
        if expr is None or limit < 1:
            return []
        limit = min(limit, _MAX_LIMIT)
        if mode == "hybrid" and not query_text.strip():
            mode = "dense"
        if mode == "bm25" and not query_text.strip():
            return []
        vector = [float(x) for x in query_vector]
        try:
            results = await self._search(mode, query_text, vector, expr, limit)
        except Exception as exc:
            # Milvus Lite's BM25 has no corpus statistics while a collection (or its first
            # segment) is empty, and fails with "NaN or Inf": there is nothing to match yet.
            if mode == "dense" or "NaN or Inf" not in str(exc):
                raise
            if mode == "bm25":
                return []
            results = await self._search("dense", query_text, vector, expr, limit)
        return [_hit(h) for h in (results[0] if results else [])]

    async def _search(
        self, mode: str, query_text: str, vector: list[float], expr: str, limit: int
    ) -> Any:
        if mode == "hybrid":
            return await self._call(lambda c: self._hybrid(c, query_text, vector, expr, limit))
        data: list[Any] = [vector] if mode == "dense" else [query_text]
        field = "dense" if mode == "dense" else "sparse"
        return await self._call(
            lambda c: c.search(
                self._collection,
                data=data,
                anns_field=field,
                filter=expr,
                limit=limit,
                output_fields=_OUTPUT_FIELDS,
                search_params=self._search_params(mode),
            )
        )

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        """Remove every chunk of these documents."""
        ids = [_uuid(d, "document id") for d in document_ids]
        for batch in _batches(ids):
            await self._delete_where(f"document_id in {_list_literal(batch)}")

    async def delete_namespace(self, namespace_id: str) -> None:
        """Remove every chunk of one namespace."""
        await self._delete_where(f'namespace_id == "{_uuid(namespace_id, "namespace id")}"')

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id."""
        ids = [_uuid(c, "chunk id") for c in chunk_ids]
        for batch in _batches(ids):
            await self._call(lambda c, b=batch: c.delete(self._collection, ids=b))  # type: ignore[misc]

    async def chunk_ids(self, *, document_ids: Sequence[str] | None = None) -> set[str]:
        """All chunk ids held (optionally only these documents'), however many there are."""
        if document_ids is None:
            filters = ['chunk_id != ""']
        else:
            ids = [_uuid(d, "document id") for d in document_ids]
            filters = [f"document_id in {_list_literal(b)}" for b in _batches(ids)]
        found: set[str] = set()
        for expr in filters:
            found |= await self._call(lambda c, e=expr: self._iterate_ids(c, e))  # type: ignore[misc]
        return found

    async def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored dense vectors of these chunks (for similarity scores)."""
        ids = [_uuid(c, "chunk id") for c in chunk_ids]
        if not ids:
            return {}
        rows = await self._call(
            lambda c: c.get(self._collection, ids=ids, output_fields=["chunk_id", "dense"])
        )
        return {str(r["chunk_id"]): [float(x) for x in r["dense"]] for r in rows}

    async def flush(self) -> None:
        """Seal buffered inserts so that they are searched through the index (after bulk loads)."""
        await self._call(lambda c: c.flush(self._collection))

    async def count(self) -> int:
        """Chunks held (for tests and benchmarks)."""
        rows = await self._call(
            lambda c: c.query(self._collection, filter="", output_fields=["count(*)"])
        )
        return int(rows[0]["count(*)"])

    # -- internals ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[[Any], T]) -> T:
        client = self._client
        if client is None:
            raise RuntimeError("MilvusVectorStore is not open; await open() first")
        async with self._calls:
            return await asyncio.to_thread(fn, client)

    async def _delete_where(self, expr: str) -> None:
        await self._call(lambda c: c.delete(self._collection, filter=expr))

    def _connect(self) -> Any:
        from pymilvus import MilvusClient

        kwargs: dict[str, Any] = {"uri": self._uri}
        if self._token:
            kwargs["token"] = self._token
        client = MilvusClient(**kwargs)
        try:
            if not client.has_collection(self._collection):
                self._create_collection(client)
            client.load_collection(self._collection)
        except BaseException:
            client.close()
            raise
        return client

    def _create_collection(self, client: Any) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        for name in ("workspace_id", "namespace_id", "document_id"):
            schema.add_field(name, DataType.VARCHAR, max_length=ID_MAX_LENGTH)
        text_opts: dict[str, Any] = {"enable_analyzer": True}
        if self._analyzer is not None:
            text_opts["analyzer_params"] = self._analyzer
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, **text_opts)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self._dimension)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        dense_params = {"nlist": self._nlist} if self._index_type == "IVF_FLAT" else {}
        index.add_index(
            "dense", index_type=self._index_type, metric_type="COSINE", params=dense_params
        )
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(self._collection, schema=schema, index_params=index)

    def _hybrid(self, client: Any, text: str, vector: list[float], expr: str, limit: int) -> Any:
        from pymilvus import AnnSearchRequest, RRFRanker

        depth = min(max(limit, self._candidates), _MAX_LIMIT)
        dense = AnnSearchRequest(
            data=[vector],
            anns_field="dense",
            param=self._search_params("dense"),
            limit=depth,
            expr=expr,
        )
        sparse = AnnSearchRequest(
            data=[text],
            anns_field="sparse",
            param=self._search_params("bm25"),
            limit=depth,
            expr=expr,
        )
        return client.hybrid_search(
            self._collection,
            [dense, sparse],
            RRFRanker(self._rrf_k),
            limit=limit,
            output_fields=_OUTPUT_FIELDS,
        )

    def _search_params(self, mode: str) -> dict[str, Any]:
        if mode == "bm25":
            return {"metric_type": "BM25", "params": {}}
        return {"metric_type": "COSINE", "params": {"nprobe": self._nprobe}}

    def _iterate_ids(self, client: Any, expr: str) -> set[str]:
        it = client.query_iterator(
            self._collection, batch_size=1000, filter=expr, output_fields=["chunk_id"]
        )
        found: set[str] = set()
        try:
            while batch := it.next():
                found.update(str(row["chunk_id"]) for row in batch)
        finally:
            it.close()
        return found

    def _row(self, record: VectorRecord) -> dict[str, Any]:
        if len(record.vector) != self._dimension:
            raise ValueError(
                f"vector of chunk {record.chunk_id} has {len(record.vector)} dimensions, "
                f"the store {self._dimension}"
            )
        return {
            "chunk_id": _uuid(record.chunk_id, "chunk id"),
            "workspace_id": _uuid(record.workspace_id, "workspace id"),
            "namespace_id": _uuid(record.namespace_id, "namespace id"),
            "document_id": _uuid(record.document_id, "document id"),
            "text": truncate_utf8(record.text, TEXT_MAX_BYTES),
            "dense": [float(x) for x in record.vector],
        }

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


def tenant_filter(
    workspace_id: str, namespace_ids: Sequence[str], document_ids: Sequence[str] | None = None
) -> str | None:
    """The boolean expression of one search, or None when it can match nothing.

    Every id is parsed as a UUID and written back in canonical form, so no caller-supplied
    character ever reaches the expression.
    """
    if not namespace_ids or (document_ids is not None and not document_ids):
        return None
    ws = _uuid(workspace_id, "workspace id")
    ns = sorted({_uuid(n, "namespace id") for n in namespace_ids})
    expr = f'workspace_id == "{ws}" and namespace_id in {_list_literal(ns)}'
    if document_ids is not None:
        docs = sorted({_uuid(d, "document id") for d in document_ids})
        expr += f" and document_id in {_list_literal(docs)}"
    return expr


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"invalid {what}: not a UUID") from None


def _list_literal(ids: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in ids) + "]"


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _ID_BATCH] for i in range(0, len(ids), _ID_BATCH)]


def _hit(raw: Any) -> VectorHit:
    entity = raw.get("entity") or {}
    return VectorHit(
        chunk_id=str(entity.get("chunk_id", raw.get("id"))),
        document_id=str(entity.get("document_id", "")),
        namespace_id=str(entity.get("namespace_id", "")),
        text=str(entity.get("text", "")),
        score=float(raw.get("distance", 0.0)),
    )
