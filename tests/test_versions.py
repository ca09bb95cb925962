"""A changed file replaces its older version (real SQLite and PostgreSQL, real milvus-lite)."""

from __future__ import annotations

import asyncio
import functools
import uuid

import pytest
from sqlalchemy import func, insert, select

from bot.cli import build_parser
from bot.container import build
from bot.knowledge_commands import ingest_command
from core.db import migrate
from core.db.access import Database
from core.db.engine import create_engine
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.models import Chunk, Document, TokenUsage, Upload, table
from core.db.records import NamespaceRecord, UploadInput
from core.db.types import utcnow
from core.db.usage import UsageStore
from core.errors import UnsupportedFile
from core.ingestion.service import IngestResult, Uploader
from core.ingestion.versions import identity_hash
from core.retrieval.milvus import MilvusVectorStore
from core.types import IncomingFile, Progress
from tests.conftest import ingestion_service
from tests.fixtures_files import make_pdf
from tests.harness import BotHarness


def handbook(days: int, expiry: str) -> bytes:
    return (
        "# Team handbook\n\n## Vacation policy\n"
        f"Employees receive {days} days of paid vacation per year. "
        f"Unused days expire on {expiry}.\n\n## Expenses\n"
        "Travel expenses are reimbursed within 14 days when the receipt is uploaded.\n"
    ).encode()


OLD, NEW = handbook(25, "March 31"), handbook(30, "April 30")
QUESTION = "How many days of paid vacation do employees get?"


async def _count(database, model, *where) -> int:
    async with database.session() as db:
        return (
            await db.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def _titled(database, title: str, namespace_id: uuid.UUID) -> list[Document]:
    async with database.session() as db:
        return list(
            (
                await db.execute(
                    select(Document).where(
                        Document.title == title, Document.namespace_id == namespace_id
                    )
                )
            ).scalars()
        )


async def _assert_only(world, survivor: uuid.UUID, *gone: uuid.UUID) -> None:
    """The survivor is indexed with chunks and vectors; the others left nothing behind."""
    service, knowledge, vectors, *_ = world
    database = world[-1]
    kept = await knowledge.document(survivor)
    assert kept is not None and kept.status == "indexed"
    assert await _count(database, Chunk, Chunk.document_id == survivor) == kept.chunk_count > 0
    assert len(await vectors.chunk_ids(document_ids=[str(survivor)])) == kept.chunk_count
    for doc_id in gone:
        assert await knowledge.document(doc_id) is None
        assert await _count(database, Chunk, Chunk.document_id == doc_id) == 0
        assert await vectors.chunk_ids(document_ids=[str(doc_id)]) == set()
    report = await service.reconcile()
    assert (report.orphan_vectors_deleted, report.missing_vectors_restored) == (0, 0)


async def test_a_changed_file_replaces_its_old_version(world) -> None:
    service, _, _, retriever, ns, ws, _ = world
    up = Uploader(ws["a"].id)
    old = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)
    stages: list[Progress] = []

    async def progress(p: Progress) -> None:
        stages.append(p)

    new = await service.ingest(
        NEW, "handbook.md", namespace=ns["a1"], uploader=up, progress=progress
    )
    assert not new.duplicate and new.superseded_by is None
    assert new.replaced == (old.document.id,)
    assert stages[-1].stage == "indexed" and "replaced 1" in stages[-1].detail
    await _assert_only(world, new.document.id, old.document.id)
    assert [d.id for d in await _titled(world[-1], "handbook.md", ns["a1"].id)] == [new.document.id]
    found = await retriever.search(
        QUESTION, workspace_id=ws["a"].id, namespace_ids=[ns["a1"].id], limit=10
    )
    assert found.chunks and {h.chunk.document_id for h in found.chunks} == {new.document.id}
    text = " ".join(h.chunk.content for h in found.chunks)
    assert "30 days" in text and "25 days" not in text and "March 31" not in text


@pytest.mark.parametrize("how", ["corrupt pdf", "crash while embedding"])
async def test_a_failing_new_version_keeps_the_old_one(world, how) -> None:
    service, knowledge, _, retriever, ns, ws, database = world
    up = Uploader(ws["a"].id)
    old = await service.ingest(
        make_pdf([["Employees receive 25 days of paid vacation per year."]]),
        "handbook.pdf",
        namespace=ns["a1"],
        uploader=up,
    )

    async def crash(p: Progress) -> None:
        if p.stage == "embedding":
            raise RuntimeError("the embedder's worker died")

    if how == "corrupt pdf":
        with pytest.raises(UnsupportedFile):
            await service.ingest(b"%PDF-1.4 torn", "handbook.pdf", namespace=ns["a1"], uploader=up)
    else:
        data = make_pdf([["Employees receive 30 days of paid vacation per year."]])
        with pytest.raises(RuntimeError):
            await service.ingest(
                data, "handbook.pdf", namespace=ns["a1"], uploader=up, progress=crash
            )
    statuses = sorted(d.status for d in await _titled(database, "handbook.pdf", ns["a1"].id))
    assert statuses == ["failed", "indexed"]
    await _assert_only(world, old.document.id)
    found = await retriever.search(QUESTION, workspace_id=ws["a"].id, namespace_ids=[ns["a1"].id])
    assert "25 days" in found.chunks[0].chunk.content
    assert (await knowledge.document(old.document.id)).indexed_at == old.document.indexed_at


async def test_a_retried_version_is_newer_than_what_was_indexed_meanwhile(world) -> None:
    """v2 fails, v3 is indexed, then v2's bytes succeed on a retry: the retry is the newest."""
    service, _, _, _, ns, ws, database = world
    up = Uploader(ws["a"].id)

    async def crash(p: Progress) -> None:
        if p.stage == "storing":
            raise RuntimeError("connection reset")

    with pytest.raises(RuntimeError):
        await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=up, progress=crash)
    meanwhile = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)
    assert meanwhile.replaced == ()  # a failed version is nothing to replace
    retried = await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=up)
    assert retried.replaced == (meanwhile.document.id,) and retried.superseded_by is None
    await _assert_only(world, retried.document.id, meanwhile.document.id)
    assert len(await _titled(database, "handbook.md", ns["a1"].id)) == 1


async def test_reconcile_finishes_a_replacement_whose_clean_up_failed(world, monkeypatch) -> None:
    """Milvus fails while the old version is deleted: the new one is indexed and answers, the
    old one is left beside it, and the nightly reconcile() deletes it."""
    service, _, vectors, retriever, ns, ws, database = world
    up = Uploader(ws["a"].id)
    old = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)

    async def unavailable(document_ids) -> None:
        raise ConnectionError("milvus went away")

    monkeypatch.setattr(vectors, "delete_documents", unavailable)
    new = await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=up)
    monkeypatch.undo()
    assert new.document.status == "indexed"
    # SQL went first: the old rows are gone and its vectors are orphans, which search skips
    assert [d.id for d in await _titled(database, "handbook.md", ns["a1"].id)] == [new.document.id]
    assert len(await vectors.chunk_ids(document_ids=[str(old.document.id)])) == old.chunks
    found = await retriever.search(QUESTION, workspace_id=ws["a"].id, namespace_ids=[ns["a1"].id])
    assert {c.chunk.document_id for c in found.chunks} == {new.document.id}
    report = await service.reconcile()
    assert report.orphan_vectors_deleted == old.chunks
    await _assert_only(world, new.document.id, old.document.id)


async def test_reconcile_deletes_older_versions_left_indexed(world, monkeypatch) -> None:
    """Two indexed versions of one file (the clean-up after the newer one failed in SQL):
    reconcile() keeps the newest and says how many it deleted; other files are untouched."""
    service, knowledge, _, _, ns, ws, database = world
    up = Uploader(ws["a"].id)
    other = await service.ingest(
        b"# Other\n\nUnrelated notes.\n", "other.md", namespace=ns["a1"], uploader=up
    )
    old = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)

    async def unavailable(namespace_id, identity):
        raise ConnectionError("database went away")

    # the service's own KnowledgeStore
    monkeypatch.setattr(service._knowledge, "versions", unavailable)
    new = await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=up)
    monkeypatch.undo()
    statuses = [d.status for d in await _titled(database, "handbook.md", ns["a1"].id)]
    assert statuses == ["indexed", "indexed"]
    report = await service.reconcile()
    assert report.old_versions_deleted == 1
    await _assert_only(world, new.document.id, old.document.id)
    assert (await knowledge.document(other.document.id)).status == "indexed"
    assert (await service.reconcile()).old_versions_deleted == 0


async def test_the_same_bytes_stay_a_duplicate(world) -> None:
    service, _, vectors, _, ns, ws, database = world
    up = Uploader(ws["a"].id)
    first = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)
    held = await vectors.chunk_ids()
    again = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)
    assert again.duplicate and again.replaced == () and again.document.id == first.document.id
    assert again.document.indexed_at == first.document.indexed_at
    assert await vectors.chunk_ids() == held
    assert await _count(database, TokenUsage) == 1  # embedded once
    await _assert_only(world, first.document.id)


async def test_other_namespaces_and_workspaces_are_untouched(world) -> None:
    service, _, _, _, ns, ws, _ = world
    a = Uploader(ws["a"].id)
    mine = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=a)
    sibling = await service.ingest(OLD, "handbook.md", namespace=ns["a2"], uploader=a)
    foreign = await service.ingest(
        OLD, "handbook.md", namespace=ns["b1"], uploader=Uploader(ws["b"].id)
    )
    new = await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=a)
    assert new.replaced == (mine.document.id,)
    await _assert_only(world, new.document.id, mine.document.id)
    await _assert_only(world, sibling.document.id)
    await _assert_only(world, foreign.document.id)


async def test_a_given_identity_wins_over_the_filename(world) -> None:
    """Two README.md from two folders are two documents; a chat upload replaces neither."""
    service, _, _, _, ns, ws, database = world
    up = Uploader(ws["a"].id)
    readme = "README.md"
    a, b = "file:///team/a/README.md", "file:///team/b/README.md"
    a1 = await service.ingest(
        b"Service A runs on port 8001.",
        readme,
        namespace=ns["a1"],
        uploader=up,
        source_url=a,
        identity=a,
    )
    b1 = await service.ingest(
        b"Service B runs on port 8002.",
        readme,
        namespace=ns["a1"],
        uploader=up,
        source_url=b,
        identity=b,
    )
    chat = await service.ingest(b"Notes from a chat.", readme, namespace=ns["a1"], uploader=up)
    assert b1.replaced == () and chat.replaced == ()
    a2 = await service.ingest(
        b"Service A moved to port 9001.",
        readme,
        namespace=ns["a1"],
        uploader=up,
        source_url=a,
        identity=a,
    )
    assert a2.replaced == (a1.document.id,)
    await _assert_only(world, a2.document.id, a1.document.id)
    await _assert_only(world, b1.document.id)
    await _assert_only(world, chat.document.id)
    assert len(await _titled(database, readme, ns["a1"].id)) == 3


# --- versions racing: two processes (two services, one database, one vector store) ----------


async def _race(world, embedder, *, first_done: str) -> tuple[IngestResult, IngestResult]:
    """v1 starts first, v2 second; both wait before storing until both document rows exist,
    then ``first_done`` finishes while the other waits, then the other finishes."""
    _, _, vectors, _, ns, ws, database = world
    names = ("v1", "v2")
    created = {n: asyncio.Event() for n in names}
    go = {n: asyncio.Event() for n in names}

    def gate(name: str):
        async def progress(p: Progress) -> None:
            if p.stage == "extracting":  # the document row exists from here on
                created[name].set()
            if p.stage == "storing":
                await go[name].wait()

        return progress

    up = Uploader(ws["a"].id)
    tasks = {}
    for name, data in zip(names, (OLD, NEW), strict=True):
        process = ingestion_service(database, embedder, vectors)
        tasks[name] = asyncio.create_task(
            process.ingest(data, "h.md", namespace=ns["a1"], uploader=up, progress=gate(name))
        )
        await created[name].wait()
    second_done = "v2" if first_done == "v1" else "v1"
    go[first_done].set()
    await tasks[first_done]
    go[second_done].set()
    return await tasks["v1"], await tasks["v2"]


async def test_racing_versions_the_newer_finishing_first_survives(world, embedder) -> None:
    v1, v2 = await _race(world, embedder, first_done="v2")
    assert (v1.document.created_at, v1.document.id) < (v2.document.created_at, v2.document.id)
    assert v2.replaced == () and v2.superseded_by is None  # v1 was not indexed yet
    assert v1.replaced == () and v1.superseded_by == v2.document.id  # v1 deleted itself
    await _assert_only(world, v2.document.id, v1.document.id)


async def test_racing_versions_the_newer_finishing_last_survives(world, embedder) -> None:
    v1, v2 = await _race(world, embedder, first_done="v1")
    assert v1.replaced == () and v1.superseded_by is None
    assert v2.replaced == (v1.document.id,) and v2.superseded_by is None
    await _assert_only(world, v2.document.id, v1.document.id)


async def test_a_version_replaced_right_after_it_was_indexed_says_so(world, embedder) -> None:
    """v1 is indexed but, before it looks for older versions, v2 is indexed and deletes it."""
    _, _, vectors, _, ns, ws, database = world
    indexed, release = asyncio.Event(), asyncio.Event()

    class HeldUsage(UsageStore):  # recording usage comes between "indexed" and the clean-up
        async def record(self, usage) -> None:
            indexed.set()
            await release.wait()
            await super().record(usage)

    up = Uploader(ws["a"].id)
    slow = ingestion_service(database, embedder, vectors, usage=HeldUsage(database))
    v1 = asyncio.create_task(slow.ingest(OLD, "h.md", namespace=ns["a1"], uploader=up))
    await indexed.wait()
    fast = ingestion_service(database, embedder, vectors)
    v2 = await fast.ingest(NEW, "h.md", namespace=ns["a1"], uploader=up)
    release.set()
    superseded = await v1
    assert v2.replaced == (superseded.document.id,) and v2.superseded_by is None
    assert superseded.replaced == () and superseded.superseded_by == v2.document.id
    await _assert_only(world, v2.document.id, superseded.document.id)


async def test_versions_racing_freely_end_with_the_newest(world) -> None:
    service, _, _, _, ns, ws, database = world
    up = Uploader(ws["a"].id)
    versions = [handbook(days, "May 1") for days in (21, 22, 23, 24)]
    results = await asyncio.gather(
        *(service.ingest(v, "h.md", namespace=ns["a1"], uploader=up) for v in versions)
    )
    newest = max(results, key=lambda r: (r.document.created_at, r.document.id))
    others = [r.document.id for r in results if r is not newest]
    await _assert_only(world, newest.document.id, *others)
    assert len(await _titled(database, "h.md", ns["a1"].id)) == 1


# --- the chat message, the CLI summary and documents stored before the migration -----------


async def test_the_upload_message_says_what_it_replaced(database_url, tmp_path, embedder) -> None:
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        first = await harness.upload("handbook.md", OLD)
        here = "Only this conversation can see it."
        assert first.message == f"Indexed handbook.md: {first.chunks} chunks. {here}"
        assert not first.replaced
        second = await harness.upload("handbook.md", NEW, thread="T2")
        assert second.ok and second.replaced == 1
        assert second.message == (
            f"Indexed handbook.md: {second.chunks} chunks. {here} "
            "It replaced the earlier version of handbook.md."
        )
        again = await harness.upload("handbook.md", NEW, thread="T3")
        assert again.duplicate and again.message.startswith("handbook.md is already indexed")
        answer = await harness.say(QUESTION)
        assert "30 days" in answer.text and "25 days" not in answer.text
        async with harness.container.database.session() as db:
            rows = await db.execute(select(Upload.document_id).order_by(Upload.created_at))
            links = [row[0] for row in rows]
        assert links[0] is None  # the replaced document is gone; its upload record stays
        assert links[1] == links[2] is not None
    finally:
        await harness.close()


async def test_an_upload_superseded_while_indexing_says_so(
    database_url, tmp_path, embedder
) -> None:
    """The older upload finishes last: the newer one, already indexed, stays."""
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    created, release = asyncio.Event(), asyncio.Event()

    class HeldReply:
        async def thinking(self, namespaces) -> None: ...

        async def stream(self, text_so_far: str) -> None: ...

        async def progress(self, p: Progress) -> None:
            if p.stage == "extracting":
                created.set()
            if p.stage == "storing":
                await release.wait()

    try:
        file = IncomingFile(file_id="F-old", filename="handbook.md", size=len(OLD))
        message = harness.message("(uploaded handbook.md)", files=(file,))
        held = asyncio.create_task(
            harness.container.uploads.ingest(message, file, OLD, HeldReply())
        )
        await created.wait()
        newer = await harness.upload("handbook.md", NEW, thread="T2")
        release.set()
        older = await held
        n, here = newer.chunks, "Only this conversation can see it."
        assert newer.ok and newer.message == f"Indexed handbook.md: {n} chunks. {here}"
        assert older.ok and older.message == (
            f"Indexed handbook.md: {n} chunks. {here} "
            "A newer handbook.md, uploaded at the same time, then replaced it."
        )
        async with harness.container.database.session() as db:
            uploads = (await db.execute(select(Upload.platform_file_id, Upload.document_id))).all()
            docs = (await db.execute(select(Document.id))).scalars().all()
        assert len(docs) == 1
        assert dict(uploads) == {"F-old": None, "F-handbook.md": docs[0]}
        answer = await harness.say(QUESTION)
        assert "30 days" in answer.text
    finally:
        await harness.close()


async def test_an_upload_finishing_after_its_document_was_replaced_links_nothing(world) -> None:
    """Between ingest() returning and the upload being recorded, a newer version may delete
    the document; the upload record must not point at it (a foreign key error on PostgreSQL)."""
    service, knowledge, _, _, ns, ws, database = world
    up = Uploader(ws["a"].id)
    old = await service.ingest(OLD, "handbook.md", namespace=ns["a1"], uploader=up)
    late = await knowledge.create_upload(UploadInput(original_filename="handbook.md"))
    new = await service.ingest(NEW, "handbook.md", namespace=ns["a1"], uploader=up)
    assert new.replaced == (old.document.id,)
    await knowledge.finish_upload(late, document_id=old.document.id, error=None)
    fine = await knowledge.create_upload(UploadInput(original_filename="handbook.md"))
    await knowledge.finish_upload(fine, document_id=new.document.id, error=None)
    async with database.session() as db:
        rows = dict((await db.execute(select(Upload.id, Upload.document_id))).all())
        statuses = set((await db.execute(select(Upload.status))).scalars())
    assert rows == {late: None, fine: new.document.id} and statuses == {"completed"}


async def test_cli_summary_counts_replaced_files(
    database_url, tmp_path, embedder, monkeypatch, capsys
) -> None:
    for name in ("DATABASE_URL", "MILVUS_URI", "LOREKEEPER_DATA_DIR", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "lk.env"  # a file, not os.environ: pymilvus reads MILVUS_URI itself
    env_file.write_text(
        f"DATABASE_URL={database_url}\nMILVUS_URI={tmp_path / 'milvus.db'}\n"
        f"LOREKEEPER_DATA_DIR={tmp_path}\n"
    )
    monkeypatch.setattr("bot.runtime.build", functools.partial(build, embedder=embedder))
    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "b").mkdir()
    (docs / "a" / "README.md").write_text("Service A runs on port 8001.")
    (docs / "b" / "README.md").write_text("Service B runs on port 8002.")
    (docs / "handbook.md").write_bytes(OLD)
    args = build_parser().parse_args(["--env-file", str(env_file), "ingest", str(docs), "-n", "d"])

    assert await ingest_command(args) == 0
    assert "0 duplicates skipped, 0 replaced, 0 failed" in capsys.readouterr().out
    (docs / "handbook.md").write_bytes(NEW)
    assert await ingest_command(args) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("3 files, 2 chunks, ")
        and "2 duplicates skipped, 1 replaced, 0 failed" in out
    )

    engine = create_engine(database_url)
    try:
        async with Database(engine).session() as db:
            rows = (await db.execute(select(Document.title, Document.source_url))).all()
            content = (await db.execute(select(Chunk.content))).scalars().all()
    finally:
        await engine.dispose()
    assert sorted(t for t, _ in rows) == ["README.md", "README.md", "handbook.md"]
    assert {u for _, u in rows} == {p.resolve().as_uri() for p in docs.rglob("*.md")}
    assert any("30 days" in c for c in content) and not any("25 days" in c for c in content)


async def test_documents_stored_before_0003_get_their_identity(
    database_url, tmp_path, embedder
) -> None:
    await asyncio.to_thread(migrate.downgrade, database_url, "0002")
    engine = create_engine(database_url)
    database = Database(engine)
    cli_url = "file:///srv/docs/handbook.md"
    legacy = {
        "cli": ("handbook.md", cli_url, "console", "cli"),
        "chat": ("handbook.md", "https://lore.slack.com/files/U1/F1/handbook.md", "slack", "Ada"),
    }
    try:
        ws = await IdentityStore(database).workspace("slack", "T1")
        # the schema of 0002: written column by column, as the code of then did
        ns = NamespaceRecord(uuid.uuid4(), ws.id, "general", None, {})
        ids = {}
        async with database.session() as db, db.begin():
            await db.execute(
                insert(table("namespaces")).values(
                    id=ns.id, workspace_id=ws.id, name="general", config={}, created_at=utcnow()
                )
            )
            for key, (title, url, platform, author) in legacy.items():
                ids[key] = uuid.uuid4()
                await db.execute(
                    insert(table("documents")).values(
                        id=ids[key],
                        namespace_id=ns.id,
                        title=title,
                        source_url=url,
                        source_platform=platform,
                        source_author=author,
                        file_hash=key.ljust(64, "0"),
                        status="indexed",
                        size_bytes=1,
                        chunk_count=0,
                        token_count=0,
                        created_at=utcnow(),
                    )
                )
    finally:
        await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, database_url)

    engine = create_engine(database_url)
    database = Database(engine)
    vectors = MilvusVectorStore(str(tmp_path / "m.db"), dimension=embedder.dimension)
    await vectors.open()
    try:
        async with database.session() as db:
            stored = dict((await db.execute(select(Document.id, Document.identity_hash))).all())
        assert stored[ids["cli"]] == identity_hash("handbook.md", cli_url)
        assert stored[ids["chat"]] == identity_hash("handbook.md")
        # a chat upload of a new handbook.md now replaces the chat-uploaded one only
        service = ingestion_service(database, embedder, vectors)
        new = await service.ingest(NEW, "handbook.md", namespace=ns, uploader=Uploader(ws.id))
        assert new.replaced == (ids["chat"],)
        remaining = await KnowledgeStore(database).documents([ns.id])
        assert {d.id for d in remaining} == {ids["cli"], new.document.id}
    finally:
        await vectors.close()
        await engine.dispose()
