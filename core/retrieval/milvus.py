"""The ``VectorStore`` port on Milvus: embedded milvus-lite (a ``.db`` file) or a Milvus server.

Hybrid search is a dense (cosine) leg and a BM25 leg that Milvus computes from the chunk text,
fused by reciprocal-rank fusion (``core.retrieval.fusion``). Every search is filtered by
workspace and namespaces (``core.retrieval.milvus_filters``); the collection, its rows and the
copy of an older one are ``core.retrieval.milvus_schema``'s.

milvus-lite 2.5.1 defects this code steers around: a partition-key field breaks every filter
(so tenant ids are plain fields), ``WeightedRanker`` ranks BM25 hits backwards (so RRF),
and two processes on one file corrupt it (so one process serves it to every other:
``core.retrieval.lite_server``).

The two legs run as two plain searches fused here (the same RRF as Milvus' ``RRFRanker``):
lite's ``hybrid_search`` costs ~13 ms more than its two legs together at 100k chunks
(``bench/retrieval_latency.py``). The dense leg's cosine comes back with each hit, so
the caller needs no second call for similarity.

On milvus-lite, a BM25 search of a collection that has never held a row fails ("NaN or Inf":
no corpus statistics yet), and both pymilvus and the lite server print that failure (a traceback
on stderr, an assertion on stdout: into the terminal chat). So the BM25 leg is not sent until the
collection is known to hold rows (a count, repeated only while it is empty).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from core.batching import Coalescer
from core.retrieval.base import VectorHit, VectorRecord
from core.retrieval.connection import CONCURRENT_CALLS, MilvusConnection, is_server_uri
from core.retrieval.fusion import fuse_rrf
from core.retrieval.milvus_client import EMPTY_BM25, open_client
from core.retrieval.milvus_filters import (
    batches,
    canonical_uuid,
    id_equals,
    id_in,
    tenant_filter,
)
from core.retrieval.milvus_schema import (
    COPY_FIELDS,
    DENSE_METRIC,
    SCHEMA_VERSION,
    ChunkSchema,
    migrate_legacy,
    row_keys,
    unit,
)
from core.retrieval.priority import QueriesFirst

T = TypeVar("T")

MODES = ("hybrid", "dense", "bm25")
# Milvus caps offset + limit of one query/search at 16384.
_MAX_LIMIT = 16384
SEARCH_BATCH = 64  # queries per coalesced search (Milvus allows 16384)
UPSERT_STEP = 16  # rows per upsert call while questions are asked: what one may wait behind
BULK_STEP = 256  # rows per upsert call when nobody asked for QUIET_SECONDS (bulk loads)
QUIET_SECONDS = 5.0
_ID_FIELDS: list[str] = []  # the primary key (chunk_id) comes back with every hit anyway
_OUTPUT_FIELDS = ["chunk_id", "document_id", "namespace_id", "text"]


class MilvusVectorStore:
    """Chunks in one Milvus collection; call ``open()`` before use and ``close()`` after.

    ``uri`` is a local file path (milvus-lite, served over loopback by the one process that
    holds the file, to every process: ``core.retrieval.lite_server``) or an ``http(s)://``
    server URI. ``candidates`` is how deep each leg of a hybrid search reaches
    before fusion, ``rrf_k`` the RRF constant, ``index_type`` the dense index ("FLAT" is exact;
    milvus-lite also knows "IVF_FLAT" and "AUTOINDEX"), ``nlist`` / ``nprobe`` the IVF_FLAT
    clusters built and searched (recall grows with ``nprobe / nlist``), ``analyzer`` the BM25
    text analyzer parameters of a new collection (``milvus_schema.DEFAULT_ANALYZER`` unless
    given, e.g. ``{"type": "english"}``); a collection keeps the analyzer it was created with.
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
        self._schema = ChunkSchema(dimension, index_type, nlist, analyzer)
        self._legacy_collection = collection
        self._collection = f"{collection}_v{SCHEMA_VERSION}"
        self._token = token
        self._candidates = candidates
        self._rrf_k = rrf_k
        self._nprobe = nprobe
        self._searches: Coalescer[
            tuple[str, str, int, tuple[str, ...]], tuple[str, list[float]], list[list[VectorHit]]
        ] = Coalescer(self._search_many, max_batch=SEARCH_BATCH)
        self._connection = MilvusConnection(uri, self._connect, concurrency=CONCURRENT_CALLS)
        # Searches go before upsert steps (``upsert``).
        self._writes = QueriesFirst()
        self._last_search = float("-inf")  # time.monotonic() of the latest search
        # Whether the collection is known to hold rows (then its BM25 statistics exist).
        self._has_rows = False

    @property
    def is_server(self) -> bool:
        """Whether the store is a Milvus server named by URI (else an embedded file)."""
        return is_server_uri(self._uri)

    @property
    def _client(self) -> Any:
        return self._connection.client

    async def open(self) -> None:
        """Connect and create the collection if needed. On an embedded file: to the server of
        the process that holds it, or, when none does, serving it from this process."""
        await self._connection.open()

    async def close(self) -> None:
        """Disconnect (after the calls in flight) and stop serving the file. Safe twice."""
        await self._connection.close()

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace chunks by ``chunk_id``. Text over 64 KiB is cut on a UTF-8 boundary.

        Questions first: the rows go in steps, one step at a time across every upload, each
        started only while no search is waiting (milvus-lite serves one request at a time, so
        a search would otherwise queue behind a whole document). A step is ``UPSERT_STEP``
        rows while people are asking (a search in the last ``QUIET_SECONDS``), ``BULK_STEP``
        when nobody is: each call costs milvus-lite ~20 ms whatever its size, so 20,000 rows
        take 33 s in steps of 16 and 8 s in steps of 256 (``bench/retrieval_latency.py``)."""
        rows = [self._schema.row(r) for r in records]
        start = 0
        while start < len(rows):
            asked = time.monotonic() - self._last_search < QUIET_SECONDS
            batch = rows[start : start + (UPSERT_STEP if asked else BULK_STEP)]
            start += len(batch)
            async with self._writes.document():
                await self._call(lambda c, b=batch: c.upsert(self._collection, b))  # type: ignore[misc]
            self._has_rows = True

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
        depth = min(max(limit, self._candidates), _MAX_LIMIT) if mode == "hybrid" else limit
        fields = _ID_FIELDS if ids_only else _OUTPUT_FIELDS
        key = (mode, expr, depth, tuple(fields))
        self._last_search = time.monotonic()
        async with self._writes.query():
            legs = await self._searches.submit(key, (query_text, unit(query_vector)))
        if mode != "hybrid":
            return legs[0][:limit]
        return fuse_rrf(legs, k=self._rrf_k, limit=limit)

    async def _search_many(
        self, key: tuple[str, str, int, tuple[str, ...]], queries: list[tuple[str, list[float]]]
    ) -> list[list[list[VectorHit]]]:
        """One Milvus search per leg for every query of ``queries`` (same filter, same depth):
        questions that arrive while a search is in flight go out together, as one search with
        many query vectors (measured with bench/concurrency.py)."""
        mode, expr, depth, fields = key
        texts = [text for text, _ in queries]
        vectors = [vector for _, vector in queries]
        return await self._call(
            lambda c: self._legs(c, mode, texts, vectors, expr, depth, list(fields))
        )

    def _legs(
        self,
        client: Any,
        mode: str,
        texts: list[str],
        vectors: list[list[float]],
        expr: str,
        depth: int,
        fields: list[str],
    ) -> list[list[list[VectorHit]]]:
        """Per query, the dense and/or BM25 leg, each best first (one thread, one leg after the
        other: lite serves one search at a time, so running them side by side gained nothing)."""
        legs: list[list[list[VectorHit]]] = [[] for _ in texts]
        if mode in ("hybrid", "dense"):
            found = self._leg(client, "dense", vectors, expr, depth, fields)
            for out, hits in zip(legs, found, strict=True):
                out.append([_hit(h, similarity=True) for h in hits])
        if mode in ("hybrid", "bm25"):
            found = [[] for _ in texts]
            if self._holds_rows(client):
                try:
                    found = self._leg(client, "bm25", texts, expr, depth, fields)
                except Exception as exc:
                    # Still possible, rarely: rows counted but not yet searchable (another
                    # process's, on a server). There is nothing to match yet.
                    if EMPTY_BM25 not in str(exc):
                        raise
            for out, hits in zip(legs, found, strict=True):
                out.append([_hit(h) for h in hits])
        return legs

    def _holds_rows(self, client: Any) -> bool:
        """Whether the collection holds rows: asked of Milvus only until it first does (rows
        may come from another process on a server). A BM25 search of a collection that never
        held one fails on milvus-lite (see the module's docstring)."""
        if not self._has_rows:
            rows = client.query(self._collection, filter="", output_fields=["count(*)"])
            self._has_rows = bool(rows) and int(rows[0]["count(*)"]) > 0
        return self._has_rows

    def _leg(
        self, client: Any, mode: str, data: list[Any], expr: str, limit: int, fields: list[str]
    ) -> list[Any]:
        results = client.search(
            self._collection,
            data=data,
            anns_field="dense" if mode == "dense" else "sparse",
            filter=expr,
            limit=limit,
            output_fields=fields,
            search_params=self._search_params(mode),
        )
        found = list(results) if results else []
        return found + [[] for _ in range(len(data) - len(found))]

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        """Remove every chunk of these documents."""
        ids = [canonical_uuid(d, "document id") for d in document_ids]
        for batch in batches(ids):
            await self._delete_where(id_in("document_id", batch))

    async def move_document(self, document_id: str, *, workspace_id: str, namespace_id: str) -> int:
        """Give every chunk of a document another workspace and namespace (a promotion);
        returns how many chunks moved."""
        target = {
            "workspace_id": canonical_uuid(workspace_id, "workspace id"),
            "namespace_id": canonical_uuid(namespace_id, "namespace id"),
        }
        expr = id_equals("document_id", document_id, "document id")
        return await self._call(lambda c: self._rewrite(c, expr, target))

    async def move_namespace(
        self, namespace_id: str, *, workspace_id: str, into: str | None = None
    ) -> int:
        """Give every chunk of a namespace another owning workspace (and, with ``into``,
        another namespace: a merge); returns how many chunks moved. Safe to repeat."""
        target = {"workspace_id": canonical_uuid(workspace_id, "workspace id")}
        if into is not None:
            target["namespace_id"] = canonical_uuid(into, "namespace id")
        expr = id_equals("namespace_id", namespace_id, "namespace id")
        return await self._call(lambda c: self._rewrite(c, expr, target))

    async def delete_namespace(self, namespace_id: str) -> None:
        """Remove every chunk of one namespace."""
        await self._delete_where(id_equals("namespace_id", namespace_id, "namespace id"))

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id."""
        ids = [canonical_uuid(c, "chunk id") for c in chunk_ids]
        for batch in batches(ids):
            await self._call(lambda c, b=batch: c.delete(self._collection, ids=b))  # type: ignore[misc]

    async def chunk_ids(self, *, document_ids: Sequence[str] | None = None) -> set[str]:
        """All chunk ids held (optionally only these documents'), however many there are."""
        if document_ids is None:
            filters = ['chunk_id != ""']
        else:
            ids = [canonical_uuid(d, "document id") for d in document_ids]
            filters = [id_in("document_id", b) for b in batches(ids)]
        found: set[str] = set()
        for expr in filters:
            found |= await self._call(lambda c, e=expr: self._iterate_ids(c, e))  # type: ignore[misc]
        return found

    async def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored dense vectors of these chunks (for similarity scores)."""
        ids = [canonical_uuid(c, "chunk id") for c in chunk_ids]
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
        return await self._connection.call(fn)

    async def _delete_where(self, expr: str) -> None:
        await self._call(lambda c: c.delete(self._collection, filter=expr))

    def _connect(self, uri: str) -> Any:
        """A client of ``uri`` (the store's server, or the embedded file's) with the
        collection ready."""
        client = open_client(uri, embedded=not self.is_server, token=self._token)
        try:
            self._schema.ensure(client, self._collection)
            client.load_collection(self._collection)
            migrate_legacy(client, self._legacy_collection, self._collection)
        except BaseException:
            client.close()
            raise
        return client

    def _rewrite(self, client: Any, expr: str, values: dict[str, str]) -> int:
        """Upsert the rows matching ``expr`` with ``values`` (and their keys) changed."""
        it = client.query_iterator(
            self._collection, batch_size=500, filter=expr, output_fields=COPY_FIELDS
        )
        done = 0
        try:
            while batch := it.next():
                rows = [{f: row[f] for f in COPY_FIELDS} | values for row in batch]
                for row in rows:
                    row.update(row_keys(row))
                client.upsert(self._collection, rows)
                done += len(rows)
        finally:
            it.close()
        return done

    def _search_params(self, mode: str) -> dict[str, Any]:
        if mode == "bm25":
            return {"metric_type": "BM25", "params": {}}
        return {"metric_type": DENSE_METRIC, "params": {"nprobe": self._nprobe}}

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


def _hit(raw: Any, *, similarity: bool = False) -> VectorHit:
    entity = raw.get("entity") or {}
    distance = float(raw.get("distance", 0.0))
    return VectorHit(
        chunk_id=str(entity.get("chunk_id", raw.get("id"))),
        document_id=str(entity.get("document_id", "")),
        namespace_id=str(entity.get("namespace_id", "")),
        text=str(entity.get("text", "")),
        score=distance,
        similarity=distance if similarity else None,
    )
