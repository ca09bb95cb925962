"""AnswerService: a question from a thread in, a cited answer out, every token accounted for."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import ContextResolver, ConversationContext
from core.db.conversation import ConversationStore
from core.db.identity import IdentityStore
from core.db.records import CitationInput, MessageInput, MessageRecord, UsageInput
from core.db.types import utcnow
from core.db.usage import UsageStore
from core.enums import AnswerMode, MessageRole, UsageOperation
from core.errors import LLMUnavailable, NotAllowed, NotEnabled, QuotaExceeded, RateLimited
from core.generation.base import LLM, ChatMessage, Completion, Source
from core.generation.citations import StreamPreview, parse_and_validate, quote_sentences
from core.generation.extractive import ExtractiveResult
from core.generation.gate import DEFAULT_THRESHOLD, should_answer
from core.generation.prompt import (
    build_messages,
)
from core.generation.summary import requested_title, summary_points
from core.observability import Metrics, NullMetrics, bind_log_context
from core.pricing import PriceTable
from core.quota import QuestionRate, QuotaService
from core.retrieval.retriever import Lookahead, Retrieval, Retriever
from core.search import QuestionSearch, Searched, reusable, to_sources
from core.types import Answer, Citation, IncomingMessage, Status, Usage

log = logging.getLogger(__name__)

# Answer or abstain is the evidence gate's decision (core.generation.gate): its threshold is
# on the estimated chance that the sources answer the question, 0 answers whenever a sentence
# supports it. A namespace's ``answer_threshold`` overrides it.
VOTE_REFUSED = "I couldn't record that vote: that answer isn't from this workspace."


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    top_k: int = 5
    threshold: float = DEFAULT_THRESHOLD
    context_tokens: int = 6000
    history_messages: int = 6
    max_tokens: int = 1024


@dataclass(frozen=True, slots=True)
class _Draft:
    text: str
    citations: tuple[Citation, ...]
    mode: AnswerMode
    completion: Completion | None = None
    notice: str | None = None


def abstain_text(namespaces: Sequence[str], missing: Sequence[str] = ()) -> str:
    """The abstention, naming what the question asked about that no source mentions."""
    where = ", ".join(namespaces) if namespaces else "the knowledge base"
    if missing:
        return f"I couldn't find anything about {' or '.join(missing)} in {where}."
    return f"I couldn't find that in {where}."


class AnswerService:
    """The main job. Adapters call :meth:`answer`; everything else here is its steps."""

    def __init__(
        self,
        *,
        identity: IdentityStore,
        conversation: ConversationStore,
        usage: UsageStore,
        resolver: ContextResolver,
        retriever: Retriever,
        quota: QuotaService,
        llm: LLM | None,
        prices: PriceTable,
        config: AnswerConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
        rate: QuestionRate | None = None,
    ) -> None:
        self._identity = identity
        self._conversation = conversation
        self._usage = usage
        self._resolver = resolver
        self._retriever = retriever
        self._quota = quota
        self._llm = llm
        self._prices = prices
        self._config = config or AnswerConfig()
        self._clock = clock
        self._metrics = metrics or NullMetrics()
        self._rate = rate or QuestionRate(
            conversation, limit=None, window=timedelta(minutes=5), clock=clock
        )
        self._search = QuestionSearch(
            retriever, llm, top_k=self._config.top_k, metrics=self._metrics
        )

    async def answer(
        self, message: IncomingMessage, reply: Status, *, searched: Searched | None = None
    ) -> Answer:
        """Answer one question in its thread (``searched``: a search made for it already).
        Never raises for expected failures."""
        started = time.perf_counter()
        with bind_log_context(
            platform=message.platform.value,
            event_id=message.event_id,
            workspace=message.workspace_id,
            channel=message.channel_id,
        ):
            answer = await self._answer(message, reply, started, searched)
            if not answer.duplicate:
                await self._identity.complete_event(message.platform.value, message.event_id)
                self._metrics.answered(answer, time.perf_counter() - started)
                log.info("answered mode=%s citations=%d", answer.mode, len(answer.citations))
            return answer

    async def _answer(
        self, message: IncomingMessage, reply: Status, started: float, searched: Searched | None
    ) -> Answer:
        # The model embeds the question while the database work below goes on (not when it
        # was searched for already).
        embedded = searched is not None and searched.query == message.text
        ahead = None if embedded else self._retriever.embed_ahead(message.text)
        try:
            if not await self._identity.claim_event(message.platform.value, message.event_id):
                log.info("duplicate event ignored")
                return Answer(text="", duplicate=True, mode=AnswerMode.DUPLICATE)
            try:
                ctx = await self._resolver.resolve(message)
            except NotEnabled as exc:
                log.info("question from a workspace outside the organisation")
                return Answer(text=exc.user_message, mode=AnswerMode.REFUSED)
            with bind_log_context(session=str(ctx.session.id)):
                try:
                    async with self._rate.admit(ctx.user.id):
                        return await self._answer_in(
                            ctx, message, reply, started, ahead=ahead, searched=searched
                        )
                except RateLimited as exc:
                    log.info("question refused by the rate limit (%d s)", exc.retry_after)
                    return Answer(
                        text=exc.user_message,
                        mode=AnswerMode.REFUSED,
                        namespaces=ctx.namespace_labels,
                        session_id=ctx.session.id,
                    )
        finally:
            if ahead is not None:
                ahead.cancel()  # nothing when it was used

    async def _answer_in(
        self,
        ctx: ConversationContext,
        message: IncomingMessage,
        reply: Status,
        started: float,
        *,
        ahead: Lookahead | None,
        searched: Searched | None,
    ) -> Answer:
        # One budget for the question's LLM work (condensing a follow-up, a rewritten query
        # when the gate refuses the first search, then the answer), retries included: once a
        # call has run out of it, the next fails at once and the answer comes from the
        # sources, so an outage costs one timeout.
        deadline = time.monotonic() + (self._llm.timeout if self._llm is not None else 0.0)
        await reply.thinking(ctx.namespace_labels)
        history = (
            []
            if ctx.session.is_new
            else await self._conversation.history(
                ctx.session.id, limit=self._config.history_messages
            )
        )
        # stored with the answer, in one transaction, when the answer is ready
        question = MessageInput(
            ctx.session.id,
            MessageRole.USER,
            message.text,
            user_id=ctx.user.id,
            platform_message_id=message.message_id,
            created_at=self._clock(),
        )
        try:
            await self._quota.check(ctx.workspace.id, ctx.user.id)
        except QuotaExceeded as exc:
            return await self._finish(
                ctx,
                question,
                _Draft(exc.user_message, (), AnswerMode.REFUSED),
                started=started,
                usage_rows=[],
            )
        summary = await self._summary(ctx, history, message.text, reply, deadline=deadline)
        if summary is not None:
            draft, usage_rows = summary
            return await self._finish(ctx, question, draft, started=started, usage_rows=usage_rows)
        search = self._search
        query, condensed = await search.standalone(history, message.text, deadline=deadline)
        usage_rows = []
        if condensed is not None:
            usage_rows.append(self._chat_usage(ctx, condensed, UsageOperation.CONDENSE))
        retrieval = reusable(ctx, query, self._config.top_k, searched) or await search.retrieve(
            ctx, query, ahead
        )
        threshold = ctx.threshold if ctx.threshold is not None else self._config.threshold
        found = await search.weigh(message.text, retrieval)
        searches = [retrieval]
        if not should_answer(found.signals, threshold) and self._llm is not None:
            found, rewrite = await search.rewritten(
                ctx,
                query,
                message.text,
                found,
                threshold=threshold,
                deadline=deadline,
                searches=searches,
            )
            if rewrite is not None:
                usage_rows.append(self._chat_usage(ctx, rewrite, UsageOperation.REWRITE))
        usage_rows.append(self._embedding_usage(ctx, *searches))
        if not should_answer(found.signals, threshold):
            draft = _Draft(
                abstain_text(ctx.namespace_labels, found.missing), (), AnswerMode.ABSTAIN
            )
            return await self._finish(ctx, question, draft, started=started, usage_rows=usage_rows)
        draft = await self._generate(
            ctx, history, message.text, found.sources, found.support, reply, deadline=deadline
        )
        if draft.completion is not None:
            usage_rows.append(self._chat_usage(ctx, draft.completion, UsageOperation.CHAT))
        return await self._finish(ctx, question, draft, started=started, usage_rows=usage_rows)

    async def _summary(
        self,
        ctx: ConversationContext,
        history: Sequence[MessageRecord],
        text: str,
        reply: Status,
        *,
        deadline: float,
    ) -> tuple[_Draft, list[UsageInput]] | None:
        """A request for a readable document in brief ("Summarise the handbook"), answered
        from that document's chunks in order; None when ``text`` is not one."""
        title = requested_title(text)
        document = await self._resolver.document_titled(ctx, title) if title else None
        if title is None or document is None:
            return None
        retrieval = await self._retriever.search(
            title,
            workspace_id=ctx.workspace_ids,
            namespace_ids=[n.id for n in ctx.namespaces],
            document_ids=(document.id,),
            limit=self._config.top_k,
        )
        chunks = sorted(retrieval.chunks, key=lambda c: c.chunk.start_offset or 0)
        sources = to_sources(chunks)
        usage_rows = [self._embedding_usage(ctx, retrieval)]
        points, quoted = summary_points(sources)
        offline = ExtractiveResult(
            f"{document.title} in brief:\n{points}" if points else "",
            tuple(sources),
            1.0,
            best_sentences=quoted,
        )
        draft = await self._generate(ctx, history, text, sources, offline, reply, deadline=deadline)
        if draft.completion is not None:
            usage_rows.append(self._chat_usage(ctx, draft.completion, UsageOperation.CHAT))
        return draft, usage_rows

    async def _generate(
        self,
        ctx: ConversationContext,
        history: Sequence[MessageRecord],
        question: str,
        sources: Sequence[Source],
        support: ExtractiveResult,
        reply: Status,
        *,
        deadline: float,
    ) -> _Draft:
        """The answer from the LLM, or from ``support`` (the offline answerer's pick, which
        the gate has accepted) without one or when it fails."""
        if self._llm is None:
            return self._extractive(question, sources, support, notice=None)
        built = build_messages(
            question,
            sources,
            history=[
                ChatMessage(MessageRole(m.role), m.content)
                for m in history
                if m.role != MessageRole.SYSTEM
            ],
            system_prompt=ctx.prompt,
            context_tokens=self._config.context_tokens,
            relevance=support.source_scores,
        )
        streamed: list[str] = []
        shown = StreamPreview(built.included_sources)

        async def on_delta(delta: str) -> None:
            streamed.append(delta)
            await reply.stream(shown("".join(streamed)))

        try:
            completion = await self._llm.complete(
                built.messages,
                on_delta=on_delta,
                max_tokens=self._config.max_tokens,
                deadline=deadline,
            )
        except LLMUnavailable as exc:
            log.warning("LLM unavailable, answering extractively: %s", exc.reason)
            self._metrics.error("llm_unavailable")
            return self._extractive(question, sources, support, notice=exc.user_message)
        text, citations = parse_and_validate(completion.text, built.included_sources)
        return _Draft(text, tuple(citations), AnswerMode.LLM, completion=completion)

    def _extractive(
        self,
        question: str,
        sources: Sequence[Source],
        result: ExtractiveResult,
        *,
        notice: str | None,
    ) -> _Draft:
        if not result.text:
            return _Draft("", (), AnswerMode.ABSTAIN, notice=notice)
        text, citations = parse_and_validate(result.text, sources)
        citations = quote_sentences(citations, result.best_sentences, question)
        if notice:
            notice = f"{notice} Showing what the sources say instead."
        return _Draft(text, tuple(citations), AnswerMode.EXTRACTIVE, notice=notice)

    def _chat_usage(
        self, ctx: ConversationContext, done: Completion, operation: UsageOperation
    ) -> UsageInput:
        return UsageInput(
            workspace_id=ctx.workspace.id,
            operation=operation,
            model=done.model,
            user_id=ctx.user.id,
            channel_id=ctx.channel.id,
            namespace_id=ctx.primary_namespace,
            prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens,
            cost=self._prices.cost(done.model, done.prompt_tokens, done.completion_tokens),
            latency_ms=done.latency_ms,
            created_at=self._clock(),
        )

    def _embedding_usage(self, ctx: ConversationContext, *searches: Retrieval) -> UsageInput:
        """One row for the question's query embeddings (a rewritten query's too)."""
        return UsageInput(
            workspace_id=ctx.workspace.id,
            operation=UsageOperation.EMBEDDING,
            model=ctx.embedding_model,
            user_id=ctx.user.id,
            channel_id=ctx.channel.id,
            namespace_id=ctx.primary_namespace,
            embedding_tokens=sum(r.query_tokens for r in searches),
            latency_ms=sum(r.embed_ms for r in searches),
            created_at=self._clock(),
        )

    async def _finish(
        self,
        ctx: ConversationContext,
        question: MessageInput,
        draft: _Draft,
        *,
        started: float,
        usage_rows: list[UsageInput],
    ) -> Answer:
        text = draft.text or abstain_text(ctx.namespace_labels)
        mode = draft.mode if draft.text else AnswerMode.ABSTAIN
        grounded = bool(draft.citations)
        done = draft.completion
        _, answer_id = await self._conversation.add_exchange(
            question,
            MessageInput(
                ctx.session.id,
                MessageRole.ASSISTANT,
                text,
                prompt_tokens=done.prompt_tokens if done else 0,
                completion_tokens=done.completion_tokens if done else 0,
                model=done.model
                if done
                else (AnswerMode.EXTRACTIVE.value if mode == AnswerMode.EXTRACTIVE else None),
                processing_time_ms=int((time.perf_counter() - started) * 1000),
                grounded=grounded,
                mode=mode,
                citations=tuple(
                    CitationInput(
                        position=c.n,
                        title=c.title,
                        quoted_text=c.quote,
                        chunk_id=c.chunk_id,
                        document_id=c.document_id,
                        source_url=c.source_url,
                        score=c.score,
                    )
                    for c in draft.citations
                ),
            ),
            usage_rows,
        )
        return Answer(
            text=text,
            citations=draft.citations,
            abstained=mode == AnswerMode.ABSTAIN,
            grounded=grounded,
            mode=mode,
            notice=draft.notice,
            namespaces=ctx.namespace_labels,
            usage=_total(usage_rows, self._prices),
            message_id=answer_id,
            session_id=ctx.session.id,
            ask_owner=mode == AnswerMode.ABSTAIN and ctx.owned is not None,
        )

    async def feedback(
        self, *, platform: str, workspace_id: str, user_id: str, message_id: uuid.UUID, value: int
    ) -> tuple[int, int]:
        """Record a vote from a platform user (one per user, changeable); returns (up, down).

        Only a person of the answer's own workspace may vote on it: any other vote (a forged
        or foreign click, an unknown answer) raises NotAllowed and stores nothing."""
        owner = await self._conversation.answer_workspace(message_id)
        if owner != (platform, workspace_id):
            log.warning(
                "vote on %s from %s workspace %s refused: the answer is %s",
                message_id,
                platform,
                workspace_id,
                "unknown" if owner is None else f"from {owner[0]} workspace {owner[1]}",
            )
            raise NotAllowed(VOTE_REFUSED, reason="vote from outside the answer's workspace")
        ws = await self._identity.workspace(platform, workspace_id)
        user = await self._identity.user(ws.id, user_id)
        await self._conversation.set_feedback(message_id, user.id, value)
        return await self._conversation.feedback_totals(message_id)

    async def knows_thread(self, message: IncomingMessage) -> bool:
        """True when the bot has answered in this thread (follow-ups need no mention there)."""
        return await self._identity.has_session(
            message.platform.value, message.workspace_id, message.channel_id, message.thread_id
        )

    async def starters(self, message: IncomingMessage, *, limit: int = 4) -> tuple[str, ...]:
        """Suggested first questions where ``message`` is (``ContextResolver.starters``)."""
        return await self._resolver.starters(message, limit=limit)


def _total(rows: Sequence[UsageInput], prices: PriceTable) -> Usage:
    return Usage(
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        embedding_tokens=sum(r.embedding_tokens for r in rows),
        cost_usd=sum((r.cost for r in rows), start=prices.cost("", 0, 0)),
        model=next((r.model for r in rows if r.operation == UsageOperation.CHAT), None),
    )
