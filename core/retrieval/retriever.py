"""Retriever: query -> hybrid search in the vector store -> chunks with their documents."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.db.knowledge import ChunkView, KnowledgeStore
from core.retrieval.base import Embedder, VectorHit, VectorStore
from core.retrieval.priority import Activity
from core.retrieval.rerank import SentenceReranker
from core.retrieval.sentences import unpack
from core.text import mentioned, split_sentences

RERANK_DEPTH = 20
SENTENCE_MEMO = 20_000  # vectors kept of sentences stored without them (1.5 kB each)
SENTENCE_EMBED_CAP = 8  # sentences without a stored vector one question may embed
MENTION_DEPTH = 5  # chunks read for each name a question's sources do not mention


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    chunk: ChunkView
    rank: int
    score: float  # the fused (RRF) score, reranked: only comparable within one search
    similarity: float  # cosine similarity of query and chunk: comparable across searches


@dataclass(frozen=True, slots=True)
class Retrieval:
    chunks: tuple[RetrievedChunk, ...]
    query_tokens: int
    embed_ms: int
    search_ms: int
    query_vector: tuple[float, ...] = ()
    scope: Scope | None = None  # where it searched (None: nowhere)

    @property
    def best_similarity(self) -> float:
        return max((c.similarity for c in self.chunks), default=0.0)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a search looks: ids in text form, as the vector store takes them."""

    workspace_ids: list[str]
    namespace_ids: list[str]
    document_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Lookahead:
    """A query embedding started early (see ``Retriever.embed_ahead``)."""

    query: str
    task: asyncio.Task[list[float]]

    def cancel(self) -> None:
        self.task.cancel()


class Retriever:
    """Finds the chunks for a question, always inside one workspace's namespaces.

    A hybrid search fetches ``rerank_depth`` fused candidates and reorders them with
    ``SentenceReranker`` (0 turns the reranker off); "dense" and "bm25" searches are one leg
    of the store's search, as they are. The two steps, ``_candidates`` (the store's search)
    and ``_rerank``, are what ``bench/vocabulary.py`` varies to measure other ways.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        vectors: VectorStore,
        knowledge: KnowledgeStore,
        rerank_depth: int = RERANK_DEPTH,
        indexing: Activity | None = None,
    ) -> None:
        """``indexing``: documents being embedded (``IngestionService``'s); meanwhile a question
        embeds none of the sentences not stored yet (``sentence_similarities``)."""
        self._indexing = Activity() if indexing is None else indexing  # falsy when idle
        self._embedder = embedder
        self._vectors = vectors
        self._knowledge = knowledge
        self._rerank_depth = rerank_depth
        self._reranker = SentenceReranker()
        self._sentence_pending: dict[str, asyncio.Future[np.ndarray]] = {}
        self._sentence_vectors: dict[str, np.ndarray] = {}
        self._last_question = float("-inf")  # time.monotonic() of the latest search

    def quiet_seconds(self) -> float:
        """Seconds since the latest question was searched for (background work waits on it)."""
        return time.monotonic() - self._last_question

    def embed_ahead(self, query: str) -> Lookahead:
        """Start embedding ``query`` now and return at once. A question's text is usually its
        search query (always in a new thread), so the answer flow starts this as the question
        arrives and the model runs while the database work before the search goes on; passed to
        ``search`` as ``ahead``, it is used when the query is still the same text."""
        self._last_question = time.monotonic()
        task = asyncio.ensure_future(self._embedder.embed_query(query))
        task.add_done_callback(_retrieve_error)
        return Lookahead(query, task)

    async def search(
        self,
        query: str,
        *,
        workspace_id: uuid.UUID | Sequence[uuid.UUID],
        namespace_ids: Sequence[uuid.UUID],
        document_ids: Sequence[uuid.UUID] | None = None,
        limit: int = 5,
        mode: str = "hybrid",
        ahead: Lookahead | None = None,
    ) -> Retrieval:
        """Top ``limit`` chunks of these namespaces (of these workspaces); chunk rows whose
        document is not indexed, or that SQL places elsewhere, are dropped."""
        self._last_question = time.monotonic()
        workspaces = {workspace_id} if isinstance(workspace_id, uuid.UUID) else set(workspace_id)
        if not namespace_ids or not query.strip():
            return Retrieval((), 0, 0, 0)
        t0 = time.perf_counter()
        if ahead is not None and ahead.query == query:
            vector = await ahead.task
        else:
            vector = await self._embedder.embed_query(query)
        t1 = time.perf_counter()
        rerank = mode == "hybrid" and self._rerank_depth > limit
        scope = Scope(
            [str(w) for w in sorted(workspaces)],
            [str(n) for n in namespace_ids],
            [str(d) for d in document_ids] if document_ids is not None else None,
        )
        hits = await self._candidates(
            query, vector, scope, limit=self._rerank_depth if rerank else limit, mode=mode
        )
        ids = [uuid.UUID(h.chunk_id) for h in hits]
        views = await self._knowledge.chunks(ids)
        wanted = set(namespace_ids)
        found = [
            (hit, view)
            for hit, chunk_id in zip(hits, ids, strict=True)
            if (view := views.get(chunk_id)) is not None and _placed(view, workspaces, wanted)
        ]
        scored = [(v, h.score) for h, v in found]
        if rerank:
            scored = await self._rerank(query, vector, found)
        scored = scored[:limit]
        known = {h.chunk_id: h.similarity for h in hits if h.similarity is not None}
        missing = [str(v.id) for v, _ in scored if str(v.id) not in known]
        if missing:  # not among the dense leg's hits (a BM25-only match): score it here
            stored = await self._vectors.dense_vectors(missing)
            known.update({c: _cosine(vector, stored.get(c)) for c in missing})
        t2 = time.perf_counter()
        out = [
            RetrievedChunk(view, rank, score, known[str(view.id)])
            for rank, (view, score) in enumerate(scored, start=1)
        ]
        tokens = self._embedder.count_tokens([query])
        return Retrieval(
            tuple(out),
            tokens,
            int((t1 - t0) * 1000),
            int((t2 - t1) * 1000),
            tuple(vector),
            scope,
        )

    async def mentioned(self, words: Sequence[str], retrieval: Retrieval) -> set[str]:
        """Which of ``words`` (names a question asks about) a document of ``retrieval``'s
        scope mentions, in any of its chunks: each word is looked up by BM25 there, and its
        best chunks are checked as ``core.text.mentioned`` counts a mention. A company's
        name ("Does Northwind pay for glasses?") is known to the handbook whose passage on
        glasses never says it."""
        scope = retrieval.scope
        if scope is None or not words:
            return set()
        workspaces = {uuid.UUID(w) for w in scope.workspace_ids}
        namespaces = {uuid.UUID(n) for n in scope.namespace_ids}
        known = set()
        for word in words:
            hits = await self._vectors.search(
                query_text=word,
                query_vector=retrieval.query_vector,
                workspace_id=scope.workspace_ids,
                namespace_ids=scope.namespace_ids,
                document_ids=scope.document_ids,
                limit=MENTION_DEPTH,
                mode="bm25",
                ids_only=True,
            )
            views = await self._knowledge.chunks([uuid.UUID(h.chunk_id) for h in hits])
            texts = [
                f"{v.title}\n{v.content}"
                for v in views.values()
                if _placed(v, workspaces, namespaces)
            ]
            if texts and mentioned(word, texts):
                known.add(word)
        return known

    async def _candidates(
        self, query: str, vector: Sequence[float], scope: Scope, *, limit: int, mode: str
    ) -> list[VectorHit]:
        """The store's search, best first."""
        return await self._vectors.search(
            query_text=query,
            query_vector=vector,
            workspace_id=scope.workspace_ids,
            namespace_ids=scope.namespace_ids,
            document_ids=scope.document_ids,
            limit=limit,
            mode=mode,
            ids_only=True,  # the chunk rows carry the rest
        )

    async def _rerank(
        self, query: str, vector: Sequence[float], found: Sequence[tuple[VectorHit, ChunkView]]
    ) -> list[tuple[ChunkView, float]]:
        """The candidates in the search's order, reordered by ``SentenceReranker``."""
        order = self._reranker.rerank(query, [v.content for _, v in found])
        return [(found[i][1], score) for i, score in order]

    async def sentence_similarities(
        self, query_vector: Sequence[float], chunks: Sequence[ChunkView]
    ) -> dict[str, float]:
        """The query's cosine to every sentence of these chunks (``core.text.split_sentences``),
        keyed by sentence: the dense evidence the offline answerer and the abstention gate
        weigh beside the words, so that a paraphrase ("food on a business trip") finds the
        sentence that says it otherwise ("meal per diem"). The sentence vectors are stored
        with each chunk after it is indexed (``core.retrieval.sentences``); a chunk without
        them yet has its sentences embedded here, as queries, memoised, at most
        ``SENTENCE_EMBED_CAP`` a question (the others are left out: they weigh by their words
        only), and none while a document is being indexed: the model is busy with it, and a
        question that added document text to its queue would wait for more of it
        (docs/benchmarks.md, "Hostile uploads": questions in the uploading channel)."""
        if not query_vector:
            return {}
        query = np.asarray(query_vector, dtype=np.float32)
        vectors: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for chunk in chunks:
            sentences = split_sentences(chunk.content)
            stored = unpack(chunk.sentence_vectors, sentences=len(sentences), dimension=len(query))
            if stored is not None:
                vectors.update(zip(sentences, stored, strict=True))
            else:
                missing.extend(sentences)
        # a question embeds at most SENTENCE_EMBED_CAP sentences itself (those of its best
        # chunks first; the rest weigh by their words only): a large upload just indexed, whose
        # sentence vectors are not stored yet, cannot make every question embed hundreds
        missing = [s for s in dict.fromkeys(missing) if s not in vectors]
        known = self._sentence_vectors
        vectors.update((s, known[s]) for s in missing if s in known)
        cap = 0 if self._indexing else SENTENCE_EMBED_CAP
        missing = [s for s in missing if s not in known][:cap]
        if missing:
            embedded = await asyncio.gather(*(self._sentence_vector(s) for s in missing))
            vectors.update(zip(missing, embedded, strict=True))
            if len(self._sentence_vectors) > SENTENCE_MEMO:
                self._sentence_vectors.clear()
        return {s: float(v @ query) for s, v in vectors.items()}

    async def _sentence_vector(self, sentence: str) -> np.ndarray:
        """One sentence's vector: memoised, and embedded once however many questions ask for
        it at the same time (a burst of questions on one corpus shares its sentences)."""
        known = self._sentence_vectors.get(sentence)
        if known is not None:
            return known
        pending = self._sentence_pending.get(sentence)
        if pending is None:
            pending = asyncio.ensure_future(self._embed_sentence(sentence))
            self._sentence_pending[sentence] = pending
        return await asyncio.shield(pending)

    async def _embed_sentence(self, sentence: str) -> np.ndarray:
        try:
            vector = np.asarray(await self._embedder.embed_query(sentence), dtype=np.float32)
            self._sentence_vectors[sentence] = vector
            return vector
        finally:
            self._sentence_pending.pop(sentence, None)


def _placed(view: ChunkView, workspaces: set[uuid.UUID], namespaces: set[uuid.UUID]) -> bool:
    """Whether SQL places the chunk in these workspaces and namespaces. SQL is the source of
    truth: a vector whose document moved or left answers nothing."""
    return view.workspace_id in workspaces and view.namespace_id in namespaces


def _retrieve_error(task: asyncio.Task[list[float]]) -> None:
    """A lookahead nobody awaited (a duplicate event, a refused question) may have failed:
    its error is someone else's to report, not asyncio's "never retrieved" warning."""
    if not task.cancelled():
        task.exception()


def _cosine(a: Sequence[float], b: Sequence[float] | None) -> float:
    if not b or len(a) != len(b):
        return 0.0
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norm if norm else 0.0
