"""The Milvus collection of chunks: its fields and indexes, the row of a record, and the copy of
a first-schema collection into the current one.

Vectors are stored unit-length and the dense index uses inner product (IP), which is then the
cosine: milvus-lite's COSINE FLAT search normalises every candidate at search time, which
doubles the dense leg (~8 ms against ~4 ms at 100k chunks, ``bench/retrieval_latency.py``).
Each id has an INT64 key beside it for filtering (``core.retrieval.milvus_filters``).

Collections of the first schema (VARCHAR ids only, named ``<collection>``) are copied into the
current one (``<collection>_v2``) when the store connects, and then dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.retrieval.base import VectorRecord
from core.retrieval.milvus_client import import_pymilvus
from core.retrieval.milvus_filters import canonical_uuid, id_key

log = logging.getLogger(__name__)

TEXT_MAX_BYTES = 65535
ID_MAX_LENGTH = 64
SCHEMA_VERSION = 2
DENSE_METRIC = "IP"  # on unit vectors: the cosine
# Milvus' "standard" analyzer (Unicode word breaks, lower case) plus accent folding, so that
# "creme brulee" typed in a question meets "crème brûlée" in a document. Collections created
# with the plain standard analyzer keep it (their queries are analysed the same way).
DEFAULT_ANALYZER: dict[str, Any] = {
    "tokenizer": "standard",
    "filter": ["lowercase", "asciifolding"],
}
KEYS = {
    "workspace_id": "workspace_key",
    "namespace_id": "namespace_key",
    "document_id": "document_key",
}
# The stored fields of a row (the keys and the BM25 vector are derived from them).
COPY_FIELDS = ["chunk_id", "workspace_id", "namespace_id", "document_id", "text", "dense"]


@dataclass(frozen=True, slots=True)
class ChunkSchema:
    """The collection a store creates: ``dimension`` of the dense vectors, ``index_type`` of
    their index ("FLAT", "IVF_FLAT" with ``nlist`` clusters, "AUTOINDEX"), and ``analyzer``
    of the BM25 text (``DEFAULT_ANALYZER`` unless given)."""

    dimension: int
    index_type: str = "FLAT"
    nlist: int = 1024
    analyzer: dict[str, Any] | None = None

    def ensure(self, client: Any, name: str) -> None:
        """Create the collection ``name`` unless it exists (or another process sharing the
        server creates it meanwhile)."""
        if client.has_collection(name):
            return
        try:
            self.create(client, name)
        except Exception:
            if not client.has_collection(name):
                raise

    def create(self, client: Any, name: str) -> None:
        """Create the collection ``name`` with its fields, BM25 function and indexes."""
        import_pymilvus()
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        for field, key in KEYS.items():
            schema.add_field(field, DataType.VARCHAR, max_length=ID_MAX_LENGTH)
            schema.add_field(key, DataType.INT64)
        text_opts: dict[str, Any] = {
            "enable_analyzer": True,
            "analyzer_params": self.analyzer or DEFAULT_ANALYZER,
        }
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, **text_opts)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        dense_params = {"nlist": self.nlist} if self.index_type == "IVF_FLAT" else {}
        index.add_index(
            "dense", index_type=self.index_type, metric_type=DENSE_METRIC, params=dense_params
        )
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index)

    def row(self, record: VectorRecord) -> dict[str, Any]:
        """The row of ``record``: ids checked as UUIDs, with their keys; text over 64 KiB cut
        on a UTF-8 boundary; the vector made unit-length (``ValueError`` on a wrong size)."""
        if len(record.vector) != self.dimension:
            raise ValueError(
                f"vector of chunk {record.chunk_id} has {len(record.vector)} dimensions, "
                f"the store {self.dimension}"
            )
        row: dict[str, Any] = {
            "chunk_id": canonical_uuid(record.chunk_id, "chunk id"),
            "workspace_id": canonical_uuid(record.workspace_id, "workspace id"),
            "namespace_id": canonical_uuid(record.namespace_id, "namespace id"),
            "document_id": canonical_uuid(record.document_id, "document id"),
            "text": truncate_utf8(record.text, TEXT_MAX_BYTES),
            "dense": unit(record.vector),
        }
        row.update(row_keys(row))
        return row


def migrate_legacy(client: Any, legacy: str, current: str) -> None:
    """Copy the first-schema collection ``legacy`` into ``current``, then drop it (safe to
    re-run: rows are upserted by chunk id, and the old collection goes only after the last
    batch). A collection that is not a first-schema one of ours is left alone."""
    if not client.has_collection(legacy):
        return
    fields = {f["name"] for f in client.describe_collection(legacy).get("fields", [])}
    if "chunk_id" not in fields or "dense" not in fields or "namespace_key" in fields:
        return
    client.load_collection(legacy)
    it = client.query_iterator(legacy, batch_size=500, filter="", output_fields=COPY_FIELDS)
    copied = 0
    try:
        while batch := it.next():
            rows = [{f: row[f] for f in COPY_FIELDS} for row in batch]
            for row in rows:
                row["dense"] = unit(row["dense"])
                row.update(row_keys(row))
            client.upsert(current, rows)
            copied += len(rows)
    finally:
        it.close()
    client.flush(current)
    client.drop_collection(legacy)
    log.info("milvus: copied %d chunks from %s into %s", copied, legacy, current)


def row_keys(row: dict[str, Any]) -> dict[str, int]:
    """The INT64 keys of a row's ids."""
    return {key: id_key(str(row[field])) for field, key in KEYS.items()}


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    values = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(values))
    return (values / norm if norm else values).tolist()  # type: ignore[no-any-return]


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")
