"""What a question searches, and what the search found.

A follow-up becomes a standalone query (the LLM condenses it when there is one, else
heuristics); the documents uploaded into the thread are searched before the channel's
namespaces; the retrieved chunks become numbered sources, weighed by the offline answerer and
the evidence gate (:func:`weigh`); and when the gate refuses them, one LLM call may rewrite
the query in the documents' words (:meth:`QuestionSearch.rewritten`). ``AnswerService``
(core/answer.py) answers or abstains from what this finds and accounts for the LLM calls it
returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.context import ConversationContext
from core.db.records import MessageRecord
from core.enums import MessageRole
from core.errors import LLMUnavailable
from core.generation.base import LLM, ChatMessage, Completion, Source
from core.generation.extractive import ExtractiveResult, extractive_answer
from core.generation.gate import Evidence, evidence, should_answer
from core.generation.prompt import condense_heuristic, condense_messages, rewrite_messages
from core.observability import Metrics
from core.retrieval.retriever import Lookahead, Retrieval, RetrievedChunk, Retriever
from core.text import is_year

log = logging.getLogger(__name__)

# A rewritten search query is one line; the cap bounds a model that rambles.
REWRITE_TOKENS = 64
CONDENSE_TOKENS = 128


@dataclass(frozen=True, slots=True)
class Searched:
    """A search already made for a question (the autoanswer decision's). The answer reuses
    its result when it would make the same search (this text, these namespaces, this many
    chunks), so the question is not retrieved twice."""

    query: str
    namespace_ids: frozenset[uuid.UUID]
    limit: int
    retrieval: Retrieval


@dataclass(frozen=True, slots=True)
class Weighed:
    """A retrieval with what :func:`weigh` found in it."""

    retrieval: Retrieval
    sources: list[Source]
    support: ExtractiveResult
    signals: Evidence | None

    @property
    def missing(self) -> tuple[str, ...]:
        """The question's names and years that no source mentions (what an abstention says
        it could not find)."""
        return self.support.support.unknown_names if self.support.support else ()


def to_sources(chunks: Sequence[RetrievedChunk]) -> list[Source]:
    return [
        Source(
            n=i + 1,
            chunk_id=str(c.chunk.id),
            document_id=str(c.chunk.document_id),
            title=c.chunk.title,
            text=c.chunk.content,
            source_url=c.chunk.source_url,
            start=c.chunk.start_offset,
            end=c.chunk.end_offset,
            score=c.similarity,
        )
        for i, c in enumerate(chunks)
    ]


async def weigh(
    retriever: Retriever, question: str, retrieval: Retrieval
) -> tuple[list[Source], ExtractiveResult, Evidence | None]:
    """The retrieved chunks as sources, the sentences that best answer ``question`` among
    them (words and dense cosines) and the evidence the gate decides on. A year of the
    question that no source mentions vetoes an answer, and so does a name unless another
    document of the searched namespaces mentions it (``Retriever.mentioned``)."""
    sources = to_sources(retrieval.chunks)
    dense = await retriever.sentence_similarities(
        retrieval.query_vector, [c.chunk for c in retrieval.chunks]
    )
    support = extractive_answer(question, sources, dense=dense)
    found = support.support
    if found is not None and (names := [w for w in found.unknown_names if not is_year(w)]):
        # a name the sources lack may be the namespace's own (its company, its tool); a year
        # is a fact's, which the sources that answer must hold
        known = await retriever.mentioned(names, retrieval)
        if known:
            unknown = tuple(w for w in found.unknown_names if w not in known)
            support = replace(support, support=replace(found, unknown_names=unknown))
    return sources, support, evidence(sources, support)


def reusable(
    ctx: ConversationContext, query: str, limit: int, searched: Searched | None
) -> Retrieval | None:
    """``searched``'s result when it is the search :meth:`QuestionSearch.retrieve` would make."""
    if searched is None or ctx.thread_documents:
        return None
    same = (
        searched.query == query
        and searched.limit == limit
        and searched.namespace_ids == frozenset(n.id for n in ctx.namespaces)
    )
    return searched.retrieval if same else None


class QuestionSearch:
    """The searches of one question: its standalone query, its retrieval, its rewrite."""

    def __init__(
        self, retriever: Retriever, llm: LLM | None, *, top_k: int, metrics: Metrics
    ) -> None:
        self._retriever = retriever
        self._llm = llm
        self._top_k = top_k
        self._metrics = metrics

    async def weigh(self, question: str, retrieval: Retrieval) -> Weighed:
        return Weighed(retrieval, *await weigh(self._retriever, question, retrieval))

    async def standalone(
        self, history: Sequence[MessageRecord], text: str, *, deadline: float
    ) -> tuple[str, Completion | None]:
        """A follow-up as a standalone query (LLM when available, else heuristics), with the
        LLM call that made it, if one did."""
        previous = [m.content for m in history if m.role == MessageRole.USER]
        if not previous:
            return text, None
        if self._llm is not None:
            turns = [
                ChatMessage(MessageRole(m.role), m.content)
                for m in history
                if m.role != MessageRole.SYSTEM
            ]
            try:
                done = await self._llm.complete(
                    condense_messages(turns, text),
                    max_tokens=CONDENSE_TOKENS,
                    temperature=0.0,
                    deadline=deadline,
                )
            except LLMUnavailable as exc:
                log.warning("condense failed, using heuristics: %s", exc.reason)
            else:
                query = done.text.strip().splitlines()[0] if done.text.strip() else ""
                if query:
                    return query, done
        return condense_heuristic(previous, text), None

    async def rewritten(
        self,
        ctx: ConversationContext,
        query: str,
        question: str,
        found: Weighed,
        *,
        threshold: float,
        deadline: float,
        searches: list[Retrieval],
    ) -> tuple[Weighed, Completion | None]:
        """When the gate refuses what ``query`` found: one LLM call rewrites it in the words
        a document would use ("PTO allowance" -> "paid time off days per year"), the rewrite
        is searched and weighed on the original ``question``, and its result replaces
        ``found`` if the gate accepts it. Otherwise ``found`` stays and the answer abstains;
        a failed or timed-out call costs no further LLM call for the question. Returns the
        call too (for its usage); the rewrite's search is added to ``searches``."""
        assert self._llm is not None
        try:
            done = await self._llm.complete(
                rewrite_messages(query),
                max_tokens=REWRITE_TOKENS,
                temperature=0.0,
                deadline=deadline,
            )
        except LLMUnavailable as exc:
            log.warning("query rewrite failed, abstaining: %s", exc.reason)
            self._metrics.error("llm_unavailable")
            return found, None
        lines = done.text.strip().splitlines()
        rewritten = lines[0].strip().strip('"') if lines else ""
        if not rewritten or rewritten.casefold() == query.strip().casefold():
            return found, done
        retrieval = await self.retrieve(ctx, rewritten)
        searches.append(retrieval)
        again = await self.weigh(question, retrieval)
        accepted = should_answer(again.signals, threshold)
        log.info("query rewritten; the gate %s it", "accepts" if accepted else "refuses")
        return (again if accepted else found), done

    async def retrieve(
        self, ctx: ConversationContext, query: str, ahead: Lookahead | None = None
    ) -> Retrieval:
        """Documents uploaded into this thread first, then the channel's namespaces."""
        k = self._top_k
        ns_ids = [n.id for n in ctx.namespaces]
        if not ctx.thread_documents:
            return await self._retriever.search(
                query, workspace_id=ctx.workspace_ids, namespace_ids=ns_ids, limit=k, ahead=ahead
            )
        own = await self._retriever.search(
            query,
            workspace_id=ctx.workspace_ids,
            namespace_ids=ns_ids,
            document_ids=ctx.thread_documents,
            limit=k,
            ahead=ahead,
        )
        rest = await self._retriever.search(
            query, workspace_id=ctx.workspace_ids, namespace_ids=ns_ids, limit=k, ahead=ahead
        )
        seen = {c.chunk.id for c in own.chunks}
        merged = (*own.chunks, *(c for c in rest.chunks if c.chunk.id not in seen))[:k]
        return Retrieval(
            tuple(replace(c, rank=i + 1) for i, c in enumerate(merged)),
            own.query_tokens,
            own.embed_ms + rest.embed_ms,
            own.search_ms + rest.search_ms,
            own.query_vector or rest.query_vector,
            rest.scope,  # the thread's documents are in the namespaces searched
        )
