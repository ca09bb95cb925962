"""The composition root: builds every service from settings, starts in order, stops in reverse."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.settings import Settings, parse_rate
from bot.stores import embedder_for, open_database, open_vectors, vector_store
from core.admin import AdminService
from core.answer import AnswerConfig, AnswerService
from core.autoanswer import AutoAnswerConfig, AutoAnswerService
from core.context import ContextResolver
from core.db.access import Database
from core.db.adoption import AdoptionStore
from core.db.audit import AuditStore
from core.db.autoanswer import AutoAnswerStore
from core.db.conversation import ConversationStore
from core.db.digests import DigestStore
from core.db.gaps import GapStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.owners import OwnerStore
from core.db.usage import UsageStore
from core.digest import GapDigest
from core.gaps import GapService
from core.generation.base import LLM
from core.ingestion.extract import ExtractLimits
from core.ingestion.service import IngestionService
from core.ingestion.workers import WorkerPool
from core.jobs.retention import RetentionPolicy
from core.observability import Metrics
from core.organisation import Membership, Organisation
from core.owners import OwnerService
from core.places import Places
from core.pricing import PriceTable
from core.quota import QuestionRate, QuotaService
from core.reports import ReportService
from core.retrieval.base import Embedder
from core.retrieval.milvus import MilvusVectorStore
from core.retrieval.priority import Activity
from core.retrieval.retriever import Retriever
from core.uploads import UploadService

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Everything the adapters need, built once. ``close()`` releases it in reverse order."""

    settings: Settings
    database: Database
    identity: IdentityStore
    knowledge: KnowledgeStore
    usage: UsageStore
    conversation: ConversationStore
    embedder: Embedder
    vectors: MilvusVectorStore
    retriever: Retriever
    ingestion: IngestionService
    answers: AnswerService
    uploads: UploadService
    admin: AdminService
    quota: QuotaService
    llm: LLM | None
    prices: PriceTable
    places: Places
    organisation: Organisation
    parsers: WorkerPool
    gaps: GapService
    owners: OwnerService
    digest: GapDigest  # platforms register their Notifier when they start
    autoanswer: AutoAnswerService | None = None  # the chat runners hand it to their pipeline

    async def close(self) -> None:
        await self.ingestion.close()
        await self.parsers.close()
        if self.llm is not None:
            from core.generation.groq import GroqLLM

            if isinstance(self.llm, GroqLLM):
                await self.llm.close()
        await self.vectors.close()
        await self.database.dispose()


def retention_policy(settings: Settings, *, sqlite: bool) -> RetentionPolicy:
    """The retention job's policy. An answered autoanswer decision is kept while the
    autoanswer rate window (``AUTOANSWER_RATE_LIMIT``) still counts it. SQLite has one
    writer: smaller batches and longer pauses keep answers flowing (bench/jobs.py: answer p99
    2.41x idle with 1000/1.0, 1.73x with 500/2.0)."""
    rate = parse_rate(settings.autoanswer_rate_limit)
    floor = RetentionPolicy().auto_answer_window
    window = max(floor, rate[1]) if rate else floor
    if sqlite:
        return RetentionPolicy(batch_size=500, pause_ratio=2.0, auto_answer_window=window)
    return RetentionPolicy(auto_answer_window=window)


def _autoanswer(settings: Settings) -> AutoAnswerConfig:
    rate = parse_rate(settings.autoanswer_rate_limit)
    default = AutoAnswerConfig()
    return AutoAnswerConfig(
        threshold=(
            default.threshold
            if settings.autoanswer_threshold is None
            else settings.autoanswer_threshold
        ),
        limit=rate[0] if rate else None,
        window=rate[1] if rate else default.window,
        top_k=settings.retrieval_top_k,
    )


def _llm(settings: Settings) -> LLM | None:
    key = settings.secret("groq_api_key")
    if not key:
        log.info("GROQ_API_KEY not set: answers are extractive")
        return None
    from core.generation.groq import GroqLLM  # aiohttp and the SDK: only with a key

    return GroqLLM(
        key,
        model=settings.groq_model,
        base_url=settings.groq_base_url or None,
        timeout=settings.groq_timeout,
    )


def _prices(settings: Settings) -> PriceTable:
    base = PriceTable.default()
    return PriceTable.parse(settings.llm_prices, base=base) if settings.llm_prices else base


def _limits(settings: Settings) -> ExtractLimits:
    return ExtractLimits(
        max_bytes=settings.max_upload_bytes,
        max_chars=settings.max_text_chars,
        max_paragraphs=settings.extract_max_paragraphs,
        max_elements=settings.extract_max_elements,
        max_json_values=settings.extract_max_json_values,
        max_pages=settings.extract_max_pages,
    )


async def build(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    llm: LLM | None = None,
    use_llm_from_settings: bool = True,
    metrics: Metrics | None = None,
    load_model: bool = False,
) -> Container:
    """Build and open everything (with ``load_model``, the embedding model too, while the
    vector store opens); the caller must ``await container.close()``."""
    database = open_database(settings)
    identity = IdentityStore(database, event_lease=timedelta(seconds=settings.event_lease_seconds))
    knowledge = KnowledgeStore(database)
    usage, conversation = UsageStore(database), ConversationStore(database)
    audit = AuditStore(database)
    embedder = embedder or embedder_for(settings)
    vectors = vector_store(settings, dimension=embedder.dimension)
    try:
        await open_vectors(vectors, settings, embedder=embedder if load_model else None)
    except BaseException:
        await database.dispose()
        raise
    indexing = Activity()  # documents being embedded: questions leave them the model
    retriever = Retriever(
        embedder=embedder, vectors=vectors, knowledge=knowledge, indexing=indexing
    )
    parsers = WorkerPool(  # workers start with the first upload
        workers=settings.extract_workers,
        timeout=settings.extract_timeout,
        memory_mb=settings.extract_memory_mb,
    )
    quota = QuotaService(usage)
    ingestion = IngestionService(
        knowledge=knowledge,
        usage=usage,
        embedder=embedder,
        vectors=vectors,
        limits=_limits(settings),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        metrics=metrics,
        parser=parsers,
        allowance=quota,
        quiet=retriever.quiet_seconds,
        indexing=indexing,
    )
    if llm is None and use_llm_from_settings:
        llm = _llm(settings)
    prices = _prices(settings)
    places = Places(identity, knowledge)
    organisation = Organisation(
        identity,
        knowledge,
        AdoptionStore(database),
        vectors,
        Membership(
            tenancy=settings.tenancy,
            slack_teams=frozenset(settings.slack_team_ids),
            discord_guilds=settings.organisation_guilds,
        ),
    )
    resolver = ContextResolver(
        identity,
        knowledge,
        embedding_model=embedder.model_name,
        places=places,
        organisation=organisation,
    )
    rate = settings.question_rate
    config = AnswerConfig(
        top_k=settings.retrieval_top_k, context_tokens=settings.llm_context_tokens
    )
    if settings.answer_threshold is not None:
        config = AnswerConfig(
            top_k=config.top_k,
            context_tokens=config.context_tokens,
            threshold=settings.answer_threshold,
        )
    answers = AnswerService(
        identity=identity,
        conversation=conversation,
        usage=usage,
        resolver=resolver,
        retriever=retriever,
        quota=quota,
        llm=llm,
        prices=prices,
        config=config,
        metrics=metrics,
        rate=QuestionRate(
            conversation,
            limit=rate[0] if rate else None,
            window=rate[1] if rate else timedelta(minutes=5),
        ),
    )
    uploads = UploadService(
        identity=identity,
        knowledge=knowledge,
        ingestion=ingestion,
        resolver=resolver,
        audit=audit,
    )
    gaps = GapService(store=GapStore(database), knowledge=knowledge, embedder=embedder)
    digests = DigestStore(database)
    auto_store = AutoAnswerStore(database)
    owners = OwnerService(
        identity=identity, store=OwnerStore(database), resolver=resolver, audit=audit
    )
    admin = AdminService(
        identity=identity,
        knowledge=knowledge,
        ingestion=ingestion,
        usage=usage,
        quota=quota,
        resolver=resolver,
        audit=audit,
        reports=ReportService(database),
        answers=answers,
        gaps=gaps,
        digests=digests,
        autoanswer=auto_store,
    )
    return Container(
        settings=settings,
        database=database,
        identity=identity,
        knowledge=knowledge,
        usage=usage,
        conversation=conversation,
        embedder=embedder,
        vectors=vectors,
        retriever=retriever,
        ingestion=ingestion,
        answers=answers,
        uploads=uploads,
        admin=admin,
        quota=quota,
        llm=llm,
        prices=prices,
        places=places,
        organisation=organisation,
        parsers=parsers,
        gaps=gaps,
        owners=owners,
        digest=GapDigest(gaps=gaps, knowledge=knowledge, identity=identity, digests=digests),
        autoanswer=AutoAnswerService(
            store=auto_store,
            resolver=resolver,
            retriever=retriever,
            config=_autoanswer(settings),
        ),
    )
