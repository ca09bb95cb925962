"""IngestionService on real milvus-lite with SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import uuid

import numpy as np
import pytest
from sqlalchemy import func, select, update

from core.db.knowledge import ChunkRow, ChunkView
from core.db.models import Chunk, Document, TokenUsage
from core.db.records import DocumentInput
from core.db.types import new_id
from core.errors import UnsupportedFile
from core.ingestion import service as ingestion_module
from core.ingestion.sentences import SentenceFiller
from core.ingestion.service import INLINE_SENTENCES, Uploader
from core.retrieval.retriever import SENTENCE_EMBED_CAP
from core.retrieval.sentences import unpack
from core.text import split_sentences
from core.types import Progress

GUIDE = (
    "# Deployment guide\n\n"
    + "\n\n".join(
        f"## Step {i}\nRun the migration number {i} before restarting service {i}. "
        f"The service {i} listens on port {8000 + i} and logs to /var/log/svc{i}.log."
        for i in range(1, 30)
    )
).encode()


async def _count(database, model, *where):
    async with database.session() as db:
        return (
            await db.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def test_ingest_reports_progress_and_indexes(world) -> None:
    service, _knowledge, vectors, retriever, ns, ws, database = world
    stages: list[Progress] = []

    async def progress(p: Progress) -> None:
        stages.append(p)

    result = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id), progress=progress
    )
    assert not result.duplicate and result.chunks > 3 and result.tokens > 0
    assert result.document.status == "indexed"
    names = [p.stage for p in stages]
    assert names[0] == "reading" and names[-1] == "indexed" and "embedding" in names
    fractions = [p.fraction for p in stages]
    assert fractions == sorted(fractions)
    assert await _count(database, Chunk) == result.chunks
    assert len(await vectors.chunk_ids()) == result.chunks
    assert await _count(database, TokenUsage, TokenUsage.operation == "ingest") == 1
    found = await retriever.search(
        "which port does service 17 listen on?",
        workspace_id=ws["a"].id,
        namespace_ids=[ns["a1"].id],
    )
    assert "8017" in found.chunks[0].chunk.content
    assert found.chunks[0].chunk.title == "guide.md"
    start, end = found.chunks[0].chunk.start_offset, found.chunks[0].chunk.end_offset
    assert end > start


async def test_same_bytes_are_a_duplicate(world) -> None:
    service, _, _vectors, _, ns, ws, database = world
    first = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    again = await service.ingest(
        GUIDE, "copy.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    assert again.duplicate and again.document.id == first.document.id
    assert await _count(database, Document) == 1
    racing = await asyncio.gather(
        *(
            service.ingest(
                b"Racing text. " * 40, "race.txt", namespace=ns["a2"], uploader=Uploader(ws["a"].id)
            )
            for _ in range(3)
        )
    )
    assert len({r.document.id for r in racing}) == 1
    # another namespace is another collection: indexed again
    other = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a2"], uploader=Uploader(ws["a"].id)
    )
    assert not other.duplicate


@pytest.mark.parametrize(
    ("data", "name", "why"),
    [
        (b"MZ\x90\x00" + bytes(100), "setup.exe", "exe"),
        (b"%PDF-1.4 garbage that is not a pdf", "report.pdf", "damaged"),
        (b"   \n\n  ", "empty.txt", "no text"),
        (b"x" * 300_000, "big.txt", "limit"),
        (("word " * 30_000).encode(), "long.txt", "characters"),
    ],
)
async def test_refusals_leave_nothing_half_written(world, data, name, why) -> None:
    service, _, vectors, _, ns, ws, database = world
    with pytest.raises(UnsupportedFile) as err:
        await service.ingest(data, name, namespace=ns["a1"], uploader=Uploader(ws["a"].id))
    assert name in err.value.user_message and why in err.value.user_message
    assert await _count(database, Chunk) == 0
    assert await vectors.chunk_ids() == set()
    async with database.session() as db:
        statuses = (await db.execute(select(Document.status, Document.error))).all()
    assert all(s == "failed" and e for s, e in statuses)


async def test_failed_document_can_be_retried(world) -> None:
    service, _, _, _, ns, ws, database = world
    bad_then_good = io.BytesIO(b"A fine text about retries. " * 20).getvalue()
    async with database.session() as db, db.begin():
        await db.execute(update(Document).values(status="failed"))
    result = await service.ingest(
        bad_then_good, "t.txt", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    assert result.document.status == "indexed"


async def test_delete_document_and_namespace(world) -> None:
    service, knowledge, vectors, _retriever, ns, ws, database = world
    doc = await service.ingest(GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id))
    keep = await service.ingest(
        b"Other namespace text. " * 30, "o.txt", namespace=ns["a2"], uploader=Uploader(ws["a"].id)
    )
    await service.delete_document(doc.document.id)
    assert await _count(database, Chunk, Chunk.document_id == doc.document.id) == 0
    assert await vectors.chunk_ids(document_ids=[str(doc.document.id)]) == set()
    await service.delete_namespace(ns["a2"])
    assert await vectors.chunk_ids() == set()
    assert await knowledge.document(keep.document.id) is None


async def test_isolation_between_namespaces_and_workspaces(world) -> None:
    service, _, _, retriever, ns, ws, _ = world
    secret = b"The vault combination is 4-8-15-16-23-42. Only the B team knows it."
    await service.ingest(secret, "vault.txt", namespace=ns["b1"], uploader=Uploader(ws["b"].id))
    await service.ingest(GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id))
    q = "what is the vault combination?"
    in_a = await retriever.search(
        q, workspace_id=ws["a"].id, namespace_ids=[ns["a1"].id, ns["a2"].id]
    )
    assert all("vault" not in h.chunk.content for h in in_a.chunks)
    # even naming B's namespace from workspace A returns nothing of B
    forged = await retriever.search(q, workspace_id=ws["a"].id, namespace_ids=[ns["b1"].id])
    assert forged.chunks == ()
    in_b = await retriever.search(q, workspace_id=ws["b"].id, namespace_ids=[ns["b1"].id])
    assert "4-8-15" in in_b.chunks[0].chunk.content


async def test_recover_fails_documents_left_processing(world) -> None:
    service, knowledge, _, _, ns, _ws, _sessions = world
    stuck = await knowledge.create_document(
        DocumentInput(namespace_id=ns["a1"].id, title="stuck.txt", file_hash="h-stuck")
    )
    assert stuck is not None and stuck.status == "processing"
    assert await service.recover() == 1
    doc = await knowledge.document(stuck.id)
    assert doc is not None and doc.status == "failed" and "interrupted" in (doc.error or "")


async def test_reconcile_repairs_a_crash_between_sql_and_milvus(world) -> None:
    service, knowledge, vectors, _retriever, ns, ws, _sessions = world
    result = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    held = sorted(await vectors.chunk_ids())
    # crash 1: vectors lost after the SQL write
    lost = held[:3]
    await vectors.delete_chunks(lost)
    # crash 2: vectors written for chunk rows that never committed
    ghost = new_id()
    await knowledge.add_chunks(
        result.document.id, [ChunkRow(ghost, 999, "ghost", "h", 0, 5, None, None)]
    )
    from core.retrieval.base import VectorRecord

    orphan = str(uuid.uuid4())
    await vectors.upsert(
        [
            VectorRecord(
                orphan,
                str(ws["a"].id),
                str(ns["a1"].id),
                str(result.document.id),
                "orphan text",
                await service._embedder.embed_query("orphan"),
            )
        ]
    )
    await knowledge.delete_chunks([ghost])
    report = await service.reconcile()
    assert report.orphan_vectors_deleted == 1
    assert report.missing_vectors_restored == 3
    assert sorted(await vectors.chunk_ids()) == held
    again = await service.reconcile()
    assert (again.orphan_vectors_deleted, again.missing_vectors_restored) == (0, 0)


async def test_chunks_get_their_sentence_vectors_after_indexing_and_at_reconcile(world) -> None:
    service, knowledge, _vectors, _retriever, ns, ws, _sessions = world
    result = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    await service.fill_sentence_vectors()  # what the background fill does after an upload
    views = await knowledge.chunks(list((await knowledge.chunk_ids()).keys()))
    assert views and all(v.sentence_vectors for v in views.values())
    await knowledge.set_sentence_vectors({i: None for i in views})  # as stored before 0009
    assert len(await knowledge.chunks_without_sentence_vectors(result.document.id, 1000)) == len(
        views
    )
    report = await service.reconcile()
    assert report.sentence_vectors_filled == len(views) == result.document.chunk_count
    assert await knowledge.documents_without_sentence_vectors() == []
    filled = await knowledge.chunks(list(views))
    for chunk_id, view in views.items():
        n = len(split_sentences(view.content))
        before = unpack(view.sentence_vectors, sentences=n, dimension=384)
        after = unpack(filled[chunk_id].sentence_vectors, sentences=n, dimension=384)
        assert before is not None and after is not None
        assert float(np.min(np.sum(before * after, axis=1))) > 0.998
    assert (await service.reconcile()).sentence_vectors_filled == 0


async def test_a_small_document_is_indexed_with_its_sentence_vectors(world, monkeypatch) -> None:
    """A document of at most INLINE_SENTENCES chunks has every chunk's sentence vectors stored
    when it is indexed, so a question posted with the file weighs every sentence; a larger one
    is indexed without them and filled in the background."""
    service, knowledge, _vectors, _retriever, ns, ws, _database = world
    small = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    assert 16 < small.document.chunk_count <= INLINE_SENTENCES
    assert await knowledge.chunks_without_sentence_vectors(small.document.id, 1000) == []
    views = await knowledge.chunks(list((await knowledge.chunk_ids()).keys()))
    for view in views.values():
        n = len(split_sentences(view.content))
        assert unpack(view.sentence_vectors, sentences=n, dimension=384) is not None

    monkeypatch.setattr(ingestion_module, "INLINE_SENTENCES", 4)
    large = await service.ingest(
        GUIDE.replace(b"migration", b"upgrade"),
        "guide-2.md",
        namespace=ns["a1"],
        uploader=Uploader(ws["a"].id),
    )
    await service.close()  # stop its background fill before it has done more than one batch
    left = await knowledge.chunks_without_sentence_vectors(large.document.id, 1000)
    assert len(left) >= large.document.chunk_count - 16 > 0  # at most one batch of 16 filled
    assert await knowledge.documents_without_sentence_vectors() == [large.document.id]
    await service.fill_sentence_vectors()
    assert await knowledge.documents_without_sentence_vectors() == []


async def test_the_background_sentence_fill_goes_on_while_people_are_asking(
    world, embedder
) -> None:
    """The fill an upload starts makes progress whether or not people are asking (resting
    between batches while they do), so a busy channel still gets its sentence vectors."""
    service, knowledge, _vectors, _retriever, ns, ws, _sessions = world
    result = await service.ingest(
        GUIDE, "guide.md", namespace=ns["a1"], uploader=Uploader(ws["a"].id)
    )
    await service.close()  # the service's own fill: this test drives one of its own
    await knowledge.set_sentence_vectors(
        {i: None for i in (await knowledge.chunk_ids()) if i is not None}
    )
    filler = SentenceFiller(knowledge, embedder, quiet=lambda: 0.0, batch=4)  # always asked
    filler.poke(result.document.id)
    await asyncio.wait_for(filler.settled(), 120)
    assert await knowledge.documents_without_sentence_vectors() == []


async def test_a_question_embeds_few_of_the_sentences_not_stored_yet(world, embedder) -> None:
    """A question reading chunks whose sentence vectors are not stored yet embeds at most
    SENTENCE_EMBED_CAP of their sentences itself, the best chunk's first; the others weigh by
    their words only. Memoised ones come free."""
    _service, _knowledge, _vectors, retriever, ns, ws, _sessions = world
    contents = [
        " ".join(f"Rule {c}-{i} of the handbook applies to team {c}." for i in range(30))
        for c in range(2)
    ]
    chunks = [
        ChunkView(
            new_id(), new_id(), ns["a1"].id, ws["a"].id, text, 0, len(text), None, None, "t", None
        )
        for text in contents
    ]
    asked: list[str] = []
    embed_query = embedder.embed_query

    async def recording(text: str) -> list[float]:
        asked.append(text)
        return await embed_query(text)

    embedder.embed_query = recording  # type: ignore[method-assign]
    try:
        query = await embed_query("Which rules apply to team 1?")
        first = await retriever.sentence_similarities(query, chunks)
        assert len(asked) == SENTENCE_EMBED_CAP
        assert set(asked) <= set(split_sentences(contents[0]))  # the best chunk's first
        assert set(first) == set(asked)
        second = await retriever.sentence_similarities(query, chunks)
        assert len(asked) == 2 * SENTENCE_EMBED_CAP  # the next ones; the memo is kept
        assert set(first) < set(second)
    finally:
        del embedder.embed_query


async def test_while_a_document_is_indexed_questions_embed_none_of_its_sentences(
    database, embedder, tmp_path, monkeypatch
) -> None:
    """Indexing counts itself busy for exactly as long as it embeds; a question meanwhile
    embeds none of the sentences not stored yet (they weigh by their words), and the cap
    applies again once indexing is over."""
    from core.db.identity import IdentityStore
    from core.db.knowledge import KnowledgeStore
    from core.retrieval.milvus import MilvusVectorStore
    from core.retrieval.priority import Activity
    from core.retrieval.retriever import Retriever
    from tests.conftest import ingestion_service

    indexing = Activity()
    vectors = MilvusVectorStore(str(tmp_path / "m.db"), dimension=embedder.dimension)
    await vectors.open()
    knowledge = KnowledgeStore(database)
    service = ingestion_service(database, embedder, vectors, indexing=indexing)
    retriever = Retriever(
        embedder=embedder, vectors=vectors, knowledge=knowledge, indexing=indexing
    )
    ws = await IdentityStore(database).workspace("slack", "TA")
    ns = await knowledge.ensure_namespace(ws.id, "one")
    text = " ".join(f"Rule {i} of the handbook applies to team {i}." for i in range(30))
    chunk = ChunkView(new_id(), new_id(), ns.id, ws.id, text, 0, len(text), None, None, "t", None)
    query = await embedder.embed_query("Which rule applies to team 7?")
    seen: list[tuple[str, bool]] = []  # (what was embedded, indexing at the time)
    embed_documents, embed_query = embedder.embed_documents, embedder.embed_query

    async def documents(texts):
        seen.append(("document", bool(indexing)))
        if len([s for s, _ in seen if s == "document"]) == 1:  # a question mid-indexing
            seen.append(("words only", not await retriever.sentence_similarities(query, [chunk])))
        return await embed_documents(texts)

    async def queries(text):
        seen.append(("query", bool(indexing)))
        return await embed_query(text)

    monkeypatch.setattr(embedder, "embed_documents", documents)
    monkeypatch.setattr(embedder, "embed_query", queries)
    try:
        await service.ingest(GUIDE, "guide.md", namespace=ns, uploader=Uploader(ws.id))
        assert ("document", True) in seen and ("words only", True) in seen
        assert not [s for s in seen if s[0] == "query"]  # nothing embedded for the question
        assert not indexing  # over
        seen.clear()
        assert await retriever.sentence_similarities(query, [chunk])
        assert seen == [("query", False)] * SENTENCE_EMBED_CAP
    finally:
        await service.close()
        await vectors.close()
