"""Queries first on the real embedder: a question asked while a big upload is being embedded
does not wait for the whole upload, and gets the vector it gets alone."""

from __future__ import annotations

import asyncio

import pytest


async def test_a_question_is_embedded_before_a_big_document_batch_ends(
    embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [
        f"Passage {i} on the history of the duchy, its rivers and its mills. " * 6
        for i in range(300)
    ]
    asked = "Who built the mills on the river?"
    alone = await embedder.embed_query(asked)
    documents_alone = await embedder.embed_documents(texts[:4])
    loop = asyncio.get_running_loop()
    batch_started = asyncio.Event()
    encode = embedder.encode_sync

    def spy(batch: list[str], **options: object) -> list[list[float]]:
        loop.call_soon_threadsafe(batch_started.set)
        return encode(batch, **options)

    monkeypatch.setattr(embedder, "encode_sync", spy)
    finished: list[str] = []

    async def upload() -> None:
        vectors = await embedder.embed_documents(texts)
        assert len(vectors) == len(texts)
        for got, want in zip(vectors[:4], documents_alone, strict=True):
            assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-6
        finished.append("documents")

    async def question() -> None:
        vector = await embedder.embed_query(asked)
        assert max(abs(a - b) for a, b in zip(vector, alone, strict=True)) < 1e-6
        finished.append("question")

    batch = asyncio.create_task(upload())
    await batch_started.wait()
    await question()
    await batch
    assert finished == ["question", "documents"]
