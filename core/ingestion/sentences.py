"""Sentence vectors for the chunks that lack them, filled in the background.

The answerer weighs a question against every sentence of the chunks it reads
(``Retriever.sentence_similarities``). Those vectors are kept with each chunk
(``core.retrieval.sentences``) so that a burst of questions on a new corpus does not embed the
same sentences first. A small document (``service.INLINE_SENTENCES`` chunks at most) gets them
while it is indexed, in the same pass as its chunks, so the first question after it (often
posted with the file) weighs every sentence. A larger one does not: it has many times more
sentences than chunks, and its "Indexed" would wait for them. Instead, once it is indexed the
filler embeds its chunks' sentences, a few chunks at a time, in the embedder's document steps
(threads of lower priority that yield to questions): flat out while nobody has asked anything
for ``QUIET_SECONDS``, and resting three times as long as each batch took while people are
asking. Questions meanwhile embed what they need of the sentences not stored yet
(``Retriever.sentence_similarities``, a few a question, none while a document is being
indexed). The reconcile job (resting likewise) and ``lorekeeper ingest`` (flat out) run the
same fill to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

from core.db.knowledge import KnowledgeStore
from core.retrieval.base import Embedder
from core.retrieval.sentences import with_sentence_vectors

log = logging.getLogger(__name__)

FILL_BATCH = 16  # chunks whose sentences are embedded and stored together
QUIET_SECONDS = 2.0  # the background fill runs flat out this long after the latest question
BUSY_REST = 3.0  # while people ask, it rests this many times as long as each batch took


def never_asked() -> float:
    return float("inf")


class SentenceFiller:
    def __init__(
        self,
        knowledge: KnowledgeStore,
        embedder: Embedder,
        *,
        quiet: Callable[[], float] = never_asked,
        batch: int = FILL_BATCH,
    ) -> None:
        """``quiet``: seconds since the latest question (``Retriever.quiet_seconds``)."""
        self._knowledge = knowledge
        self._quiet = quiet
        self._embedder = embedder
        self._batch = batch
        self._pending: dict[uuid.UUID, None] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one batch at a time: no chunk is embedded twice

    def poke(self, document_id: uuid.UUID) -> None:
        """A document was indexed: fill its chunks' sentence vectors in the background."""
        self._pending[document_id] = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._background(), name="sentence-vectors")

    async def fill(self, *, yielding: bool = False) -> int:
        """Fill every chunk stored without sentence vectors, now (the background fill stops:
        this one finds its documents too); returns how many were. ``yielding``: only while
        nobody asks, as the background fill does (else at full speed)."""
        await self.close()
        filled = 0
        for document_id in await self._knowledge.documents_without_sentence_vectors():
            filled += await self._fill_document(document_id, pace=yielding)
        return filled

    async def settled(self) -> None:
        """Wait for the background fill to finish what it was given."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop a fill in progress (what it did is kept; the reconcile job does the rest)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _background(self) -> None:
        while self._pending:
            document_id = next(iter(self._pending))
            del self._pending[document_id]
            try:
                await self._fill_document(document_id, pace=True)
            except Exception:  # the reconcile job tries again
                log.exception("embedding the sentences of document %s failed", document_id)

    async def _fill_document(self, document_id: uuid.UUID, *, pace: bool) -> int:
        filled = 0
        while True:
            started = time.perf_counter()
            async with self._lock:
                found = await self._knowledge.chunks_without_sentence_vectors(
                    document_id, self._batch
                )
                if not found:
                    return filled
                _, packed = await with_sentence_vectors(
                    self._embedder.embed_documents, [], [content for _, content in found]
                )
                await self._knowledge.set_sentence_vectors(
                    {chunk_id: p for (chunk_id, _), p in zip(found, packed, strict=True)}
                )
            filled += len(found)
            if pace and self._quiet() < QUIET_SECONDS:  # people are asking: a quarter of the time
                await asyncio.sleep(BUSY_REST * (time.perf_counter() - started))
