"""The ``VectorStore`` port on Milvus: embedded milvus-lite (a ``.db`` file) or a Milvus server.

Hybrid search is a dense (cosine) leg and a BM25 leg that Milvus computes from the chunk text,
fused by reciprocal-rank fusion. Every search is filtered by workspace and namespaces.

milvus-lite 2.5.1 defects this code steers around: a partition-key field breaks every filter
(so tenant ids are plain fields), ``WeightedRanker`` ranks BM25 hits backwards (so RRF),
and two processes on one file corrupt it (so one process serves it to every other:
``core.retrieval.lite_server``).

Measured on milvus-lite at 100k chunks (docs/benchmarks.md, "Search latency"), two choices:

- Searches filter on INT64 keys (``workspace_key``, ``namespace_key``, ``document_key``: 64
  bits of a hash of the UUID) instead of the VARCHAR ids, which lite compares row by row (~8 ms
  per leg). A hash collision cannot leak across tenants: the retriever keeps only chunks whose
  SQL row belongs to the asking workspace.
- Vectors are stored unit-length and the dense index uses inner product (IP), which is then
  the cosine: lite's COSINE FLAT search normalised every candidate at search time (dense leg
  ~8 ms -> ~4 ms at 100k).
- The two legs run as two plain searches fused here (the same RRF as Milvus' ``RRFRanker``):
  lite's ``hybrid_search`` cost ~13 ms more than its two legs together. The dense leg's cosine
  comes back with each hit, so the caller needs no second call for similarity.

On milvus-lite, a BM25 search of a collection that has never held a row fails ("NaN or Inf":
no corpus statistics yet), and both pymilvus and the lite server print that failure (a traceback
on stderr, an assertion on stdout: into the terminal chat). So the BM25 leg is not sent until the
collection is known to hold rows (a count, repeated only while it is empty).

Collections of the first schema (VARCHAR ids only, named ``<collection>``) are copied into the
current one (``<collection>_v2``) on ``open()`` and then dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from core.batching import Coalescer
from core.retrieval.base import VectorHit, VectorRecord
from core.retrieval.connection import CONCURRENT_CALLS, MilvusConnection, is_server_uri
from core.retrieval.priority import QueriesFirst

T = TypeVar("T")

log = logging.getLogger(__name__)

TEXT_MAX_BYTES = 65535
ID_MAX_LENGTH = 64
MODES = ("hybrid", "dense", "bm25")
# Milvus caps offset + limit of one query/search at 16384.
_MAX_LIMIT = 16384
_ID_BATCH = 1000
SEARCH_BATCH = 64  # queries per coalesced search (Milvus allows 16384)
UPSERT_STEP = 16  # rows per upsert call while questions are asked: what one may wait behind
BULK_STEP = 256  # rows per upsert call when nobody asked for QUIET_SECONDS (bulk loads)
QUIET_SECONDS = 5.0
_ID_FIELDS: list[str] = []  # the primary key (chunk_id) comes back with every hit anyway
_OUTPUT_FIELDS = ["chunk_id", "document_id", "namespace_id", "text"]
# Milvus' "standard" analyzer (Unicode word breaks, lower case) plus accent folding, so that
# "creme brulee" typed in a question meets "crème brûlée" in a document. Collections created
# with the plain standard analyzer keep it (their queries are analysed the same way).
DEFAULT_ANALYZER: dict[str, Any] = {
    "tokenizer": "standard",
    "filter": ["lowercase", "asciifolding"],
}
SCHEMA_VERSION = 2
LITE_GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 2**31 - 1,  # never, in practice
    "grpc.keepalive_permit_without_calls": False,
}
DENSE_METRIC = "IP"  # on unit vectors: the cosine
_KEYS = {
    "workspace_id": "workspace_key",
    "namespace_id": "namespace_key",
    "document_id": "document_key",
}
_COPY_FIELDS = ["chunk_id", "workspace_id", "namespace_id", "document_id", "text", "dense"]


class MilvusVectorStore:
    """Chunks in one Milvus collection; call ``open()`` before use and ``close()`` after.

    ``uri`` is a local file path (milvus-lite, served over loopback by the one process that
    holds the file, to every process: ``core.retrieval.lite_server``) or an ``http(s)://``
    server URI. ``candidates`` is how deep each leg of a hybrid search reaches
    before fusion, ``rrf_k`` the RRF constant, ``index_type`` the dense index ("FLAT" is exact;
    milvus-lite also knows "IVF_FLAT" and "AUTOINDEX"), ``nlist`` / ``nprobe`` the IVF_FLAT
    clusters built and searched (recall grows with ``nprobe / nlist``), ``analyzer`` the BM25
    text analyzer parameters (``DEFAULT_ANALYZER`` unless given, e.g. ``{"type": "english"}``)
    of a new collection; a collection keeps the analyzer it was created with.
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
        self._legacy_collection = collection
        self._collection = f"{collection}_v{SCHEMA_VERSION}"
        self._token = token
        self._candidates = candidates
        self._rrf_k = rrf_k
        self._index_type = index_type
        self._nlist = nlist
        self._nprobe = nprobe
        self._searches: Coalescer[
            tuple[str, str, int, tuple[str, ...]], tuple[str, list[float]], list[list[VectorHit]]
        ] = Coalescer(self._search_many, max_batch=SEARCH_BATCH)
        self._analyzer = analyzer
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
        take 33 s in steps of 16 and 7 s in steps of 256 (docs/benchmarks.md)."""
        rows = [self._row(r) for r in records]
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
        many query vectors (docs/benchmarks.md, "Session 13")."""
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
                    if _EMPTY_BM25 not in str(exc):
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
        ids = [_uuid(d, "document id") for d in document_ids]
        for batch in _batches(ids):
            await self._delete_where(f"document_id in {_list_literal(batch)}")

    async def move_document(self, document_id: str, *, workspace_id: str, namespace_id: str) -> int:
        """Give every chunk of a document another workspace and namespace (a promotion);
        returns how many chunks moved."""
        target = {
            "workspace_id": _uuid(workspace_id, "workspace id"),
            "namespace_id": _uuid(namespace_id, "namespace id"),
        }
        expr = f'document_id == "{_uuid(document_id, "document id")}"'
        return await self._call(lambda c: self._rewrite(c, expr, target))

    async def move_namespace(
        self, namespace_id: str, *, workspace_id: str, into: str | None = None
    ) -> int:
        """Give every chunk of a namespace another owning workspace (and, with ``into``,
        another namespace: a merge); returns how many chunks moved. Safe to repeat."""
        target = {"workspace_id": _uuid(workspace_id, "workspace id")}
        if into is not None:
            target["namespace_id"] = _uuid(into, "namespace id")
        expr = f'namespace_id == "{_uuid(namespace_id, "namespace id")}"'
        return await self._call(lambda c: self._rewrite(c, expr, target))

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
        return await self._connection.call(fn)

    async def _delete_where(self, expr: str) -> None:
        await self._call(lambda c: c.delete(self._collection, filter=expr))

    def _connect(self, uri: str) -> Any:
        """A client of ``uri`` (the store's server, or the embedded file's) with the
        collection ready."""
        _pymilvus()
        from pymilvus import MilvusClient

        kwargs: dict[str, Any] = {"uri": uri}
        if self._token and self.is_server:
            kwargs["token"] = self._token
        if not self.is_server:
            # pymilvus pings every 10 s even with no call in flight; milvus-lite's gRPC server
            # allows that rarely and answers with a GOAWAY ("too_many_pings") that gRPC prints
            # to stderr, into the terminal chat. A loopback channel needs no keepalive at all.
            kwargs["grpc_options"] = LITE_GRPC_OPTIONS
            # its own channel: after a hand-over no call may reuse one to a stopped server
            kwargs["dedicated"] = True
            _LOOPBACK.add(uri.removeprefix("http://"))
        client = MilvusClient(**kwargs)
        try:
            if not client.has_collection(self._collection):
                self._create_once(client)
            client.load_collection(self._collection)
            if client.has_collection(self._legacy_collection):
                self._migrate(client)
        except BaseException:
            client.close()
            raise
        return client

    def _create_once(self, client: Any) -> None:
        """Create the collection, unless another process sharing the server just did."""
        try:
            self._create_collection(client)
        except Exception:
            if not client.has_collection(self._collection):
                raise

    def _create_collection(self, client: Any) -> None:
        _pymilvus()
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        for name, key in _KEYS.items():
            schema.add_field(name, DataType.VARCHAR, max_length=ID_MAX_LENGTH)
            schema.add_field(key, DataType.INT64)
        text_opts: dict[str, Any] = {
            "enable_analyzer": True,
            "analyzer_params": self._analyzer or DEFAULT_ANALYZER,
        }
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
            "dense", index_type=self._index_type, metric_type=DENSE_METRIC, params=dense_params
        )
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(self._collection, schema=schema, index_params=index)

    def _migrate(self, client: Any) -> None:
        """Copy a first-schema collection into this one, then drop it (safe to re-run: rows
        are upserted by chunk id, and the old collection goes only after the last batch)."""
        legacy = self._legacy_collection
        fields = {f["name"] for f in client.describe_collection(legacy).get("fields", [])}
        if "chunk_id" not in fields or "dense" not in fields or "namespace_key" in fields:
            return  # not ours, or already current: leave it alone
        client.load_collection(legacy)
        it = client.query_iterator(legacy, batch_size=500, filter="", output_fields=_COPY_FIELDS)
        copied = 0
        try:
            while batch := it.next():
                rows = [{f: row[f] for f in _COPY_FIELDS} for row in batch]
                for row in rows:
                    row["dense"] = unit(row["dense"])
                    row.update(_keys(row))
                client.upsert(self._collection, rows)
                copied += len(rows)
        finally:
            it.close()
        client.flush(self._collection)
        client.drop_collection(legacy)
        log.info("milvus: copied %d chunks from %s into %s", copied, legacy, self._collection)

    def _rewrite(self, client: Any, expr: str, values: dict[str, str]) -> int:
        """Upsert the rows matching ``expr`` with ``values`` (and their keys) changed."""
        it = client.query_iterator(
            self._collection, batch_size=500, filter=expr, output_fields=_COPY_FIELDS
        )
        done = 0
        try:
            while batch := it.next():
                rows = [{f: row[f] for f in _COPY_FIELDS} | values for row in batch]
                for row in rows:
                    row.update(_keys(row))
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

    def _row(self, record: VectorRecord) -> dict[str, Any]:
        if len(record.vector) != self._dimension:
            raise ValueError(
                f"vector of chunk {record.chunk_id} has {len(record.vector)} dimensions, "
                f"the store {self._dimension}"
            )
        row: dict[str, Any] = {
            "chunk_id": _uuid(record.chunk_id, "chunk id"),
            "workspace_id": _uuid(record.workspace_id, "workspace id"),
            "namespace_id": _uuid(record.namespace_id, "namespace id"),
            "document_id": _uuid(record.document_id, "document id"),
            "text": truncate_utf8(record.text, TEXT_MAX_BYTES),
            "dense": unit(record.vector),
        }
        row.update(_keys(row))
        return row


_EMPTY_BM25 = "NaN or Inf"
_PYMILVUS_LOCK = threading.Lock()
_pymilvus_ready = False
_LOOPBACK: set[str] = set()  # host:port of the embedded stores' servers


class _QuietEmptyBm25(logging.Filter):
    """Drops pymilvus' error log (with its traceback) of the empty-collection BM25 failure,
    which the store handles."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _EMPTY_BM25 not in record.getMessage()


class _QuietHandover(logging.Filter):
    """Drops pymilvus' logs (with their tracebacks) of a failure to reach an embedded store's
    server: its owner went away, and the store reconnects (``core.retrieval.connection``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not any(address in text for address in _LOOPBACK)


class _QuietIteratorTs(logging.Filter):
    """Drops pymilvus' warning that milvus-lite gives iterators no server timestamp (the
    client's is used, which is right for one server); it would print into the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


def _pymilvus() -> None:
    """Import pymilvus with a milvus-lite MILVUS_URI out of the environment for the while, and
    silence its log of the failure ``_legs`` handles.

    pymilvus parses MILVUS_URI when it is imported and refuses anything but a server address;
    ours may be a file path, which the settings have already read. It goes back afterwards, so
    a second ``load_settings`` in the process (``lorekeeper demo`` ingests, then chats) still
    finds it."""
    global _pymilvus_ready
    with _PYMILVUS_LOCK:
        if not _pymilvus_ready:
            uri = os.environ.get("MILVUS_URI")
            hide = "pymilvus" not in sys.modules and uri is not None
            hide = hide and not is_server_uri(str(uri))
            if hide:
                del os.environ["MILVUS_URI"]
            try:
                import pymilvus  # noqa: F401
            finally:
                if hide and uri is not None:
                    os.environ["MILVUS_URI"] = uri
            logging.getLogger("pymilvus.decorators").addFilter(_QuietEmptyBm25())
            for name in ("pymilvus.decorators", "pymilvus.client.connection_manager"):
                logging.getLogger(name).addFilter(_QuietHandover())
            logging.getLogger("pymilvus.orm.iterator").addFilter(_QuietIteratorTs())
            _pymilvus_ready = True


def tenant_filter(
    workspace_id: str | Sequence[str],
    namespace_ids: Sequence[str],
    document_ids: Sequence[str] | None = None,
) -> str | None:
    """The boolean expression of one search, or None when it can match nothing.

    Every id is parsed as a UUID and turned into its integer key, so no caller-supplied
    character ever reaches the expression.
    """
    if not namespace_ids or (document_ids is not None and not document_ids):
        return None
    workspaces = [workspace_id] if isinstance(workspace_id, str) else list(workspace_id)
    if not workspaces:
        return None
    ws = sorted({id_key(_uuid(w, "workspace id")) for w in workspaces})
    ns = sorted({id_key(_uuid(n, "namespace id")) for n in namespace_ids})
    # The most selective term first, and "==" for one value: lite evaluates left to right,
    # and "k == v" measured cheaper than "k in [v]" (docs/benchmarks.md, "Search latency").
    expr = _key_term("namespace_key", ns) + " and " + _key_term("workspace_key", ws)
    if document_ids is not None:
        docs = sorted({id_key(_uuid(d, "document id")) for d in document_ids})
        expr = _key_term("document_key", docs) + " and " + expr
    return expr


def _key_term(field: str, keys: list[int]) -> str:
    return f"{field} == {keys[0]}" if len(keys) == 1 else f"{field} in {keys}"


def id_key(canonical_uuid: str) -> int:
    """The INT64 search key of a UUID: 64 bits of its BLAKE2b hash, signed."""
    digest = hashlib.blake2b(uuid.UUID(canonical_uuid).bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def fuse_rrf(
    legs: Sequence[Sequence[VectorHit]], *, k: int, limit: int | None = None
) -> list[VectorHit]:
    """Reciprocal-rank fusion, as Milvus' ``RRFRanker(k)``: each hit scores the sum over the
    legs of ``1 / (k + rank)`` (rank from 1), best first; ties keep the first leg's order. The
    dense leg's cosine stays on the fused hit as its ``similarity``. The best ``limit`` hits
    (all without one)."""
    fused: dict[str, VectorHit] = {}
    scores: dict[str, float] = {}
    for leg in legs:
        for rank, hit in enumerate(leg, start=1):
            key = hit.chunk_id
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            seen = fused.get(key)
            if seen is None or (seen.similarity is None and hit.similarity is not None):
                fused[key] = hit
    out = []
    for key in sorted(scores, key=scores.__getitem__, reverse=True)[:limit]:  # stable
        h = fused[key]  # built directly: dataclasses.replace costs twice as much per hit
        out.append(
            VectorHit(h.chunk_id, h.document_id, h.namespace_id, h.text, scores[key], h.similarity)
        )
    return out


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    values = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(values))
    return (values / norm if norm else values).tolist()  # type: ignore[no-any-return]


def _keys(row: dict[str, Any]) -> dict[str, int]:
    return {key: id_key(str(row[name])) for name, key in _KEYS.items()}


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
