"""MilvusVectorStore on a real milvus-lite file, with real MiniLM embeddings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from core.retrieval.base import VectorHit, VectorRecord
from core.retrieval.embedder import SentenceTransformerEmbedder
from core.retrieval.fusion import fuse_rrf
from core.retrieval.milvus import BULK_STEP, UPSERT_STEP, MilvusVectorStore
from core.retrieval.milvus_filters import id_key, tenant_filter
from core.retrieval.milvus_schema import truncate_utf8

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXTS = {
    "passwords": "To reset your password, open Settings and choose Forgot password.",
    "vacation": "Employees get 25 vacation days per year; unused days expire in March.",
    "deploy": "Deploys run from the main branch through the blue-green pipeline.",
    "lunch": "The cafeteria serves lunch between noon and two o'clock.",
}


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class Corpus:
    store: MilvusVectorStore
    embedder: SentenceTransformerEmbedder
    ws_a: str
    ws_b: str
    ns_a: str
    ns_b: str
    ns_other_ws: str
    doc_hr: str
    doc_eng: str
    ids: dict[str, str]

    async def search(self, query: str, **kw: object) -> list[str]:
        kw.setdefault("workspace_id", self.ws_a)
        kw.setdefault("namespace_ids", [self.ns_a])
        hits = await self.store.search(
            query_text=query,
            query_vector=await self.embedder.embed_query(query),
            **kw,  # type: ignore[arg-type]
        )
        return [h.text for h in hits]


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


async def _records(
    embedder: SentenceTransformerEmbedder, rows: list[tuple[str, str, str, str]]
) -> list[VectorRecord]:
    vectors = await embedder.embed_documents([r[3] for r in rows])
    return [
        VectorRecord(
            chunk_id=_id(), workspace_id=w, namespace_id=n, document_id=d, text=t, vector=v
        )
        for (w, n, d, t), v in zip(rows, vectors, strict=True)
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def corpus(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> AsyncIterator[Corpus]:
    """Workspace A: namespace A (HR doc + eng doc) and B (lunch). Workspace B: the same texts."""
    path = tmp_path_factory.mktemp("milvus") / "shared.db"
    store = MilvusVectorStore(str(path), dimension=embedder.dimension)
    await store.open()
    ws_a, ws_b, ns_a, ns_b, ns_c, hr, eng = (_id() for _ in range(7))
    rows = [
        (ws_a, ns_a, hr, TEXTS["passwords"]),
        (ws_a, ns_a, hr, TEXTS["vacation"]),
        (ws_a, ns_a, eng, TEXTS["deploy"]),
        (ws_a, ns_b, _id(), TEXTS["lunch"]),
        (ws_b, ns_c, _id(), TEXTS["vacation"] + " (workspace B copy)"),
    ]
    records = await _records(embedder, rows)
    await store.upsert(records)
    ids = {text: r.chunk_id for text, r in zip(TEXTS, records, strict=False)}
    yield Corpus(store, embedder, ws_a, ws_b, ns_a, ns_b, ns_c, hr, eng, ids)
    await store.close()


async def test_hybrid_search_finds_the_right_chunk(corpus: Corpus) -> None:
    hits = await corpus.store.search(
        query_text="how many vacation days do I get",
        query_vector=await corpus.embedder.embed_query("how many vacation days do I get"),
        workspace_id=corpus.ws_a,
        namespace_ids=[corpus.ns_a],
        limit=2,
    )
    assert len(hits) == 2
    assert hits[0].text == TEXTS["vacation"]
    assert hits[0].document_id == corpus.doc_hr
    assert hits[0].namespace_id == corpus.ns_a
    assert hits[0].chunk_id == corpus.ids["vacation"]
    assert hits[0].score > hits[1].score


async def test_dense_mode_matches_meaning_without_shared_words(corpus: Corpus) -> None:
    texts = await corpus.search("I forgot my login credentials", mode="dense", limit=1)
    assert texts == [TEXTS["passwords"]]


async def test_bm25_mode_only_returns_keyword_matches(corpus: Corpus) -> None:
    texts = await corpus.search("blue-green pipeline", mode="bm25", limit=5)
    assert texts[0] == TEXTS["deploy"]
    assert TEXTS["vacation"] not in texts


async def test_bm25_matches_words_typed_without_their_accents(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    store = MilvusVectorStore(str(tmp_path / "accents.db"), dimension=embedder.dimension)
    await store.open()
    try:
        ws, ns = _id(), _id()
        french = "Le menu du vendredi : crème brûlée et café au lait pour l'équipe."
        rows = [(ws, ns, _id(), french), (ws, ns, _id(), TEXTS["lunch"])]
        await store.upsert(await _records(embedder, rows))
        for query in ("creme brulee", "crème brûlée", "CAFE"):
            hits = await store.search(
                query_text=query,
                query_vector=await embedder.embed_query(query),
                workspace_id=ws,
                namespace_ids=[ns],
                limit=5,
                mode="bm25",
            )
            assert [h.text for h in hits] == [french], query
    finally:
        await store.close()


async def test_unknown_mode_is_refused(corpus: Corpus) -> None:
    with pytest.raises(ValueError, match="mode"):
        await corpus.search("x", mode="fuzzy")


async def test_namespaces_are_isolated(corpus: Corpus) -> None:
    in_a = await corpus.search("when is lunch served", limit=10)
    assert TEXTS["lunch"] not in in_a and len(in_a) == 3
    in_b = await corpus.search("password vacation deploy", namespace_ids=[corpus.ns_b], limit=10)
    assert in_b == [TEXTS["lunch"]]
    both = await corpus.search("lunch", namespace_ids=[corpus.ns_a, corpus.ns_b], limit=10)
    assert len(both) == 4
    assert await corpus.search("lunch", namespace_ids=[]) == []


async def test_workspaces_are_isolated(corpus: Corpus) -> None:
    # Workspace B's namespace, asked for from workspace A, yields nothing.
    assert await corpus.search("vacation", namespace_ids=[corpus.ns_other_ws]) == []
    in_b = await corpus.search(
        "vacation", workspace_id=corpus.ws_b, namespace_ids=[corpus.ns_other_ws, corpus.ns_a]
    )
    assert in_b == [TEXTS["vacation"] + " (workspace B copy)"]


async def test_document_filter(corpus: Corpus) -> None:
    texts = await corpus.search("vacation days", document_ids=[corpus.doc_eng], limit=5)
    assert texts == [TEXTS["deploy"]]
    assert await corpus.search("vacation days", document_ids=[]) == []


async def test_hostile_ids_are_rejected(corpus: Corpus) -> None:
    hostile = 'x" or workspace_id != "'
    for kw in (
        {"workspace_id": hostile},
        {"namespace_ids": [corpus.ns_a, hostile]},
        {"document_ids": [hostile]},
    ):
        with pytest.raises(ValueError, match="not a UUID"):
            await corpus.search("vacation", **kw)
    with pytest.raises(ValueError):
        await corpus.store.delete_namespace(hostile)
    with pytest.raises(ValueError):
        await corpus.store.chunk_ids(document_ids=[hostile])
    expr = tenant_filter(corpus.ws_a.upper(), [corpus.ns_a])
    ws, ns_a, ns_b = id_key(corpus.ws_a), id_key(corpus.ns_a), id_key(corpus.ns_b)
    assert expr == f"namespace_key == {ns_a} and workspace_key == {ws}"
    two = tenant_filter(corpus.ws_a, [corpus.ns_b, corpus.ns_a], [corpus.doc_hr])
    assert two == (
        f"document_key == {id_key(corpus.doc_hr)} and "
        f"namespace_key in {sorted([ns_a, ns_b])} and workspace_key == {ws}"
    )


async def test_id_keys_are_stable_distinct_int64() -> None:
    ids = [str(uuid.uuid4()) for _ in range(20000)]
    keys = [id_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert id_key(ids[0]) == id_key(ids[0])
    # uuid7 ids made in the same millisecond share their first bytes; their keys must not
    same_ms = [f"01900000-0000-7000-8000-{n:012x}" for n in range(1000)]
    assert len({id_key(i) for i in same_ms}) == 1000


def _vh(chunk: str, score: float, similarity: float | None = None) -> VectorHit:
    return VectorHit(chunk, "d", "n", chunk, score, similarity)


async def test_fuse_rrf_sums_reciprocal_ranks_and_keeps_the_dense_cosine() -> None:
    dense = [_vh("a", 0.9, 0.9), _vh("b", 0.8, 0.8), _vh("c", 0.7, 0.7)]
    bm25 = [_vh("c", 12.0), _vh("d", 9.0), _vh("a", 3.0)]
    fused = fuse_rrf([dense, bm25], k=60)
    scores = {h.chunk_id: h.score for h in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 62)
    # ties keep the first leg's order: a before c, b before d
    assert [h.chunk_id for h in fused] == ["a", "c", "b", "d"]
    sims = {h.chunk_id: h.similarity for h in fused}
    assert sims == {"a": 0.9, "b": 0.8, "c": 0.7, "d": None}
    assert fuse_rrf([dense, bm25], k=60, limit=2) == fused[:2]


async def test_an_ids_only_search_ranks_the_same_chunks(corpus: Corpus) -> None:
    query = "how do we deploy with blue-green"
    args = {
        "query_text": query,
        "query_vector": await corpus.embedder.embed_query(query),
        "workspace_id": corpus.ws_a,
        "namespace_ids": [corpus.ns_a, corpus.ns_b],
        "limit": 4,
    }
    full = await corpus.store.search(**args)  # type: ignore[arg-type]
    bare = await corpus.store.search(**args, ids_only=True)  # type: ignore[arg-type]
    assert [(h.chunk_id, h.score, h.similarity) for h in bare] == [
        (h.chunk_id, h.score, h.similarity) for h in full
    ]
    assert len(full) == 4 and all(h.text for h in full)
    assert all(h.text == h.document_id == h.namespace_id == "" for h in bare)


async def test_hits_carry_the_dense_cosine(corpus: Corpus) -> None:
    import numpy as np

    query = "how many vacation days do I get"
    vector = await corpus.embedder.embed_query(query)
    hits = await corpus.store.search(
        query_text=query,
        query_vector=vector,
        workspace_id=corpus.ws_a,
        namespace_ids=[corpus.ns_a],
        limit=3,
    )
    stored = await corpus.store.dense_vectors([h.chunk_id for h in hits])
    q = np.asarray(vector)
    for hit in hits:
        assert hit.similarity is not None
        v = np.asarray(stored[hit.chunk_id])
        expected = float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v)))
        assert hit.similarity == pytest.approx(expected, abs=1e-4)
    scaled = await corpus.store.search(  # the cosine does not depend on the query's length
        query_text=query,
        query_vector=[3.0 * x for x in vector],
        workspace_id=corpus.ws_a,
        namespace_ids=[corpus.ns_a],
        limit=3,
    )
    assert [(h.chunk_id, round(h.similarity or 0, 4)) for h in scaled] == [
        (h.chunk_id, round(h.similarity or 0, 4)) for h in hits
    ]
    assert all(np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5) for v in stored.values())
    bm25 = await corpus.store.search(
        query_text="blue-green pipeline",
        query_vector=vector,
        workspace_id=corpus.ws_a,
        namespace_ids=[corpus.ns_a],
        mode="bm25",
    )
    assert bm25 and all(h.similarity is None for h in bm25)


async def test_chunk_ids(corpus: Corpus) -> None:
    assert await corpus.store.chunk_ids(document_ids=[corpus.doc_hr]) == {
        corpus.ids["passwords"],
        corpus.ids["vacation"],
    }
    assert len(await corpus.store.chunk_ids()) == 5


async def test_truncate_counts_bytes_not_characters() -> None:
    text = "é" * 40000  # 80,000 bytes
    cut = truncate_utf8(text, 65535)
    assert len(cut.encode("utf-8")) <= 65535
    assert cut == "é" * 32767
    assert truncate_utf8("short", 65535) == "short"


async def test_delete_by_document_namespace_and_chunk(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    store = MilvusVectorStore(str(tmp_path / "del.db"), dimension=embedder.dimension)
    await store.open()
    try:
        ws, ns1, ns2, d1, d2, d3 = (_id() for _ in range(6))
        long_text = "ü" * 40000  # over the VARCHAR limit in bytes: must be cut, not refused
        rows = [(ws, ns1, d1, TEXTS["passwords"]), (ws, ns1, d2, TEXTS["deploy"])]
        rows += [(ws, ns2, d3, TEXTS["lunch"]), (ws, ns2, d3, long_text)]
        records = await _records(embedder, rows)
        await store.upsert(records)
        assert len(await store.chunk_ids()) == 4
        await store.delete_documents([d1])
        assert await store.chunk_ids() == {r.chunk_id for r in records[1:]}
        await store.delete_chunks([records[3].chunk_id])
        assert await store.chunk_ids() == {records[1].chunk_id, records[2].chunk_id}
        await store.delete_namespace(ns2)
        assert await store.chunk_ids() == {records[1].chunk_id}
        hits = await store.search(
            query_text="lunch",
            query_vector=records[2].vector,
            workspace_id=ws,
            namespace_ids=[ns1, ns2],
            limit=5,
        )
        assert [h.chunk_id for h in hits] == [records[1].chunk_id]
    finally:
        await store.close()


def _legacy_collection(path: Path, records: list[VectorRecord]) -> None:
    """A collection of the first schema (VARCHAR tenant ids only), as stores before schema 2
    made it, filled with ``records``."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(str(path))
    try:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
        for name in ("workspace_id", "namespace_id", "document_id"):
            schema.add_field(name, DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=384)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        index.add_index("dense", index_type="FLAT", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("lorekeeper_chunks", schema=schema, index_params=index)
        client.insert(
            "lorekeeper_chunks",
            [
                {
                    "chunk_id": r.chunk_id,
                    "workspace_id": r.workspace_id,
                    "namespace_id": r.namespace_id,
                    "document_id": r.document_id,
                    "text": r.text,
                    "dense": r.vector,
                }
                for r in records
            ],
        )
        client.flush("lorekeeper_chunks")
    finally:
        client.close()


async def test_a_first_schema_collection_is_copied_and_dropped(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    path = tmp_path / "legacy.db"
    ws, other_ws, ns, other_ns, doc = (_id() for _ in range(5))
    rows = [(ws, ns, doc, TEXTS["vacation"]), (ws, ns, doc, TEXTS["deploy"])]
    rows += [(other_ws, other_ns, _id(), TEXTS["vacation"] + " (other)")]
    records = await _records(embedder, rows)
    await asyncio.to_thread(_legacy_collection, path, records)

    store = MilvusVectorStore(str(path), dimension=embedder.dimension)
    await store.open()
    try:
        assert await store.chunk_ids() == {r.chunk_id for r in records}
        query = "how many vacation days"
        hits = await store.search(
            query_text=query,
            query_vector=await embedder.embed_query(query),
            workspace_id=ws,
            namespace_ids=[ns],
            limit=5,
        )
        assert hits[0].chunk_id == records[0].chunk_id
        assert {h.chunk_id for h in hits} == {records[0].chunk_id, records[1].chunk_id}
        assert not await store._call(lambda c: c.has_collection("lorekeeper_chunks"))
    finally:
        await store.close()
    again = MilvusVectorStore(str(path), dimension=embedder.dimension)  # nothing left to copy
    await again.open()
    try:
        assert await again.count() == 3
    finally:
        await again.close()


async def test_a_burst_of_searches_shares_calls_and_each_gets_its_own_hits(corpus: Corpus) -> None:
    """Questions that arrive together (several tenants, filters and modes, in one burst) are
    coalesced into shared Milvus searches, and each still gets exactly what it gets alone."""
    queries = ["vacation days", "blue-green deploy", "forgot password", "lunch at noon"]
    tenants = [
        (corpus.ws_a, [corpus.ns_a], None),
        (corpus.ws_a, [corpus.ns_a, corpus.ns_b], None),
        (corpus.ws_a, [corpus.ns_a], [corpus.doc_eng]),
        (corpus.ws_b, [corpus.ns_other_ws, corpus.ns_a], None),
    ]
    vectors = {q: await corpus.embedder.embed_query(q) for q in queries}
    cases = [
        {
            "query_text": q,
            "query_vector": vectors[q],
            "workspace_id": ws,
            "namespace_ids": ns,
            "document_ids": docs,
            "limit": 3,
            "mode": mode,
        }
        for q in queries
        for ws, ns, docs in tenants
        for mode in ("hybrid", "dense", "bm25")
    ]
    alone = [await corpus.store.search(**c) for c in cases]  # type: ignore[arg-type]

    client = corpus.store._client
    calls: list[int] = []
    search = client.search

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(len(kwargs["data"]))  # type: ignore[arg-type]
        return search(*args, **kwargs)

    client.search = counting
    try:
        together = await asyncio.gather(*(corpus.store.search(**c) for c in cases))  # type: ignore[arg-type]
    finally:
        del client.search
    assert [[(h.chunk_id, h.score) for h in hits] for hits in together] == [
        [(h.chunk_id, h.score) for h in hits] for hits in alone
    ]
    assert sum(calls) == sum(2 if c["mode"] == "hybrid" else 1 for c in cases)
    assert len(calls) < len(cases) / 2 and max(calls) > 1
    # The other workspace never sees workspace A's chunks, in a batch or alone.
    for case, hits in zip(cases, together, strict=True):
        if case["workspace_id"] == corpus.ws_b:
            assert {h.text for h in hits} <= {TEXTS["vacation"] + " (workspace B copy)"}


async def test_the_embedded_store_does_not_ping_milvus_lite(corpus: Corpus) -> None:
    """pymilvus' default keepalive (a ping every 10 s, even when idle) makes milvus-lite answer
    with a GOAWAY after about a minute, which gRPC prints to stderr, into the terminal chat.
    The embedded store's channel is opened without idle pings (checked by hand: 65 s idle
    printed two GOAWAY lines before, none after)."""
    assert not corpus.store.is_server
    options = corpus.store._client._get_connection()._grpc_options
    assert options["grpc.keepalive_permit_without_calls"] is False
    assert options["grpc.keepalive_time_ms"] >= 3_600_000
    # and the channel still serves calls
    assert await corpus.search("vacation days", limit=1) == [TEXTS["vacation"]]


async def test_a_store_that_never_held_a_row_searches_quietly(
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """milvus-lite fails a BM25 search of a collection that never held a row ("NaN or Inf"),
    and pymilvus logs it with a traceback while the lite server prints an assertion: into the
    terminal chat of a newcomer who asks before indexing anything. Nothing is found, quietly;
    the first rows make BM25 work."""
    store = MilvusVectorStore(str(tmp_path / "empty.db"), dimension=embedder.dimension)
    await store.open()
    try:
        ws, ns, doc = _id(), _id(), _id()
        vector = await embedder.embed_query("vacation days")
        for mode in ("hybrid", "bm25", "dense"):
            hits = await store.search(
                query_text="vacation days",
                query_vector=vector,
                workspace_id=ws,
                namespace_ids=[ns],
                mode=mode,
            )
            assert hits == []
        await store.upsert(await _records(embedder, [(ws, ns, doc, TEXTS["vacation"])]))
        hits = await store.search(
            query_text="vacation days",
            query_vector=vector,
            workspace_id=ws,
            namespace_ids=[ns],
            mode="bm25",
        )
        assert [h.text for h in hits] == [TEXTS["vacation"]]
    finally:
        await store.close()
    out, err = capfd.readouterr()
    assert "NaN" not in out + err and "isfinite" not in out + err, out + err
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


async def test_a_search_goes_before_the_rest_of_a_big_upsert(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """An upload's rows go in small steps; a search asked meanwhile waits for one step at most,
    not for the whole upload (milvus-lite serves one request at a time)."""
    store = MilvusVectorStore(str(tmp_path / "steps.db"), dimension=embedder.dimension)
    await store.open()
    try:
        ws, ns, doc = _id(), _id(), _id()
        [seed] = await _records(embedder, [(ws, ns, doc, TEXTS["vacation"])])
        await store.upsert([seed])
        vector = seed.vector
        # people are asking: uploads go in small steps
        assert await store.search(
            query_text="vacation", query_vector=vector, workspace_id=ws, namespace_ids=[ns]
        )
        many = [
            VectorRecord(_id(), ws, ns, doc, f"row {i} of a long upload", vector)
            for i in range(UPSERT_STEP * 12)
        ]
        calls: list[str] = []
        step_started = asyncio.Event()
        call = store._connection.call

        async def spy(fn):  # which calls reach Milvus, in order
            calls.append("call")
            step_started.set()
            return await call(fn)

        store._connection.call = spy  # type: ignore[method-assign]
        upload = asyncio.create_task(store.upsert(many))
        await step_started.wait()
        hits = await store.search(
            query_text="vacation days", query_vector=vector, workspace_id=ws, namespace_ids=[ns]
        )
        searched_at = len(calls)
        await upload
        assert hits
        # the search was the second or third call of the thirteen, not the last
        assert searched_at <= 3 < len(calls) == 13
    finally:
        await store.close()


async def test_with_nobody_asking_an_upload_goes_in_big_steps(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    store = MilvusVectorStore(str(tmp_path / "bulk.db"), dimension=embedder.dimension)
    await store.open()
    try:
        ws, ns, doc = _id(), _id(), _id()
        [seed] = await _records(embedder, [(ws, ns, doc, TEXTS["vacation"])])
        rows = [
            VectorRecord(_id(), ws, ns, doc, f"row {i}", seed.vector) for i in range(BULK_STEP * 2)
        ]
        calls = 0
        call = store._connection.call

        async def count(fn):
            nonlocal calls
            calls += 1
            return await call(fn)

        store._connection.call = count  # type: ignore[method-assign]
        await store.upsert(rows)
        assert calls == 2  # not BULK_STEP * 2 / UPSERT_STEP
        assert len(await store.chunk_ids()) == BULK_STEP * 2
    finally:
        await store.close()
