"""Shared setup for the answer benchmarks (answer_quality, core_overhead, concurrency).

The eval data is SQuAD 2.0 (Rajpurkar, Jia and Liang, 2018), CC BY-SA 4.0: two dev-set
articles in /work/shared/eval. Each article becomes one .txt upload named after its title,
paragraphs joined by blank lines, so the real chunker decides the chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bot.container import build  # noqa: E402
from bot.settings import Settings  # noqa: E402
from core.context import ContextResolver, ConversationContext  # noqa: E402
from core.db import migrate  # noqa: E402
from tests.harness import BotHarness  # noqa: E402

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BENCH_DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Answers (bench/answer_quality.py, core_overhead.py, concurrency.py)"
UPLOAD_THREAD = "bench-upload"


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...]  # lower-cased gold strings; empty when impossible
    impossible: bool
    article: str


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    questions: tuple[Question, ...]

    @property
    def filename(self) -> str:
        return f"{self.title}.txt"


def load_articles(path: Path = DATA) -> list[Article]:
    """The eval articles with their questions (titles with spaces, not underscores)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for article in data["data"]:
        title = article["title"].replace("_", " ")
        questions = []
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                impossible = bool(qa.get("is_impossible"))
                gold = () if impossible else tuple({a["text"].lower() for a in qa["answers"]})
                questions.append(Question(qa["id"], qa["question"], gold, impossible, title))
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        out.append(Article(title, text, tuple(questions)))
    return out


# -- databases ---------------------------------------------------------------------------------


def _pg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def temp_database(kind: str, folder: Path) -> AsyncIterator[str]:
    """A freshly migrated SQLite file or temporary PostgreSQL database (dropped afterwards)."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    from sqlalchemy.engine import make_url

    admin = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    name = f"lk_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(admin, f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await _pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch_folder(prefix: str) -> AsyncIterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def bot_with_articles(
    kind: str,
    *,
    embedder: object,
    articles: Sequence[Article],
    groq_base_url: str | None = None,
    llm: object | None = None,
    **settings: object,
) -> AsyncIterator[BotHarness]:
    """A BotHarness on a fresh database + milvus-lite with the articles uploaded.

    ``llm`` (an in-process ``core.generation.base.LLM``) goes straight into the container, as
    ``bot.container.build`` allows; ``groq_base_url`` makes the real groq SDK talk to a fake.
    """
    # a benchmark asks as one person, far faster than the per-person question rate allows
    settings.setdefault("QUESTION_RATE_LIMIT", "off")
    async with (
        scratch_folder(f"lk-bench-{kind}-") as folder,
        temp_database(kind, folder) as url,
    ):
        if llm is None:
            bot = await BotHarness.start(
                url, folder, embedder=embedder, groq_base_url=groq_base_url, **settings
            )
        else:
            values: dict[str, object] = {
                "DATABASE_URL": url,
                "MILVUS_URI": str(folder / "milvus.db"),
                "LOREKEEPER_DATA_DIR": str(folder),
                **settings,
            }
            container = await build(
                Settings(_env_file=None, **values),  # type: ignore[call-arg]
                embedder=embedder,  # type: ignore[arg-type]
                llm=llm,  # type: ignore[arg-type]
            )
            bot = BotHarness(container)
        try:
            for article in articles:
                outcome = await bot.upload(
                    article.filename, article.text.encode("utf-8"), thread=UPLOAD_THREAD
                )
                if not outcome.ok:
                    raise RuntimeError(f"upload of {article.filename} failed: {outcome.message}")
            await bot.container.vectors.flush()
            # as a running bot has them shortly after an upload (filled in the background)
            await bot.container.ingestion.fill_sentence_vectors()
            yield bot
        finally:
            await bot.close()


async def default_context(bot: BotHarness) -> ConversationContext:
    """The workspace, channel and namespaces the harness asks in (thread "bench-probe")."""
    c = bot.container
    resolver = ContextResolver(
        c.identity,
        c.knowledge,
        embedding_model=c.embedder.model_name,
        places=c.places,
        organisation=c.organisation,
    )
    return await resolver.resolve(bot.message("probe", thread="bench-probe"))


async def lift_quotas(bot: BotHarness) -> None:
    """Raise the daily token limits (int32 columns) so a benchmark never meets a refusal."""
    ctx = await default_context(bot)
    await bot.container.usage.set_workspace_limits(
        ctx.workspace.id, user_daily_tokens=2_000_000_000, workspace_daily_tokens=2_000_000_000
    )


# -- embedders ---------------------------------------------------------------------------------


@dataclass
class PrecomputedEmbedder:
    """The ``Embedder`` port over the real model, with query vectors computed beforehand.

    ``prime`` embeds the benchmark's questions in one batch with the real model; afterwards
    ``embed_query`` is a dictionary lookup, so a timed run contains no embedding time while
    retrieval sees exactly the vectors the real embedder gives. Unknown queries fall back to
    the real model (counted in ``misses``).
    """

    inner: object
    cache: dict[str, list[float]] = field(default_factory=dict)
    misses: int = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension  # type: ignore[attr-defined,no-any-return]

    @property
    def model_name(self) -> str:
        return self.inner.model_name  # type: ignore[attr-defined,no-any-return]

    async def prime(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        vectors = await self.inner.embed_documents(todo)  # type: ignore[attr-defined]
        self.cache.update(zip(todo, vectors, strict=True))

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.inner.embed_documents(texts)  # type: ignore[attr-defined,no-any-return]

    async def embed_query(self, text: str) -> list[float]:
        hit = self.cache.get(text)
        if hit is not None:
            return hit
        self.misses += 1
        return await self.inner.embed_query(text)  # type: ignore[attr-defined,no-any-return]

    def count_tokens(self, texts: Sequence[str]) -> int:
        return self.inner.count_tokens(texts)  # type: ignore[attr-defined,no-any-return]


@dataclass
class TimingEmbedder:
    """Wraps an embedder and records the wall time of every ``embed_query`` (seconds)."""

    inner: object
    query_seconds: list[float] = field(default_factory=list)

    @property
    def dimension(self) -> int:
        return self.inner.dimension  # type: ignore[attr-defined,no-any-return]

    @property
    def model_name(self) -> str:
        return self.inner.model_name  # type: ignore[attr-defined,no-any-return]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.inner.embed_documents(texts)  # type: ignore[attr-defined,no-any-return]

    async def embed_query(self, text: str) -> list[float]:
        t0 = time.perf_counter()
        try:
            return await self.inner.embed_query(text)  # type: ignore[attr-defined,no-any-return]
        finally:
            self.query_seconds.append(time.perf_counter() - t0)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return self.inner.count_tokens(texts)  # type: ignore[attr-defined,no-any-return]


def real_embedder() -> object:
    """The product's embedder; EMBEDDING_BACKEND and EMBEDDING_TRACE apply as in the bot."""
    from core.retrieval.embedder import SentenceTransformerEmbedder

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return SentenceTransformerEmbedder(
        backend=settings.embedding_backend, trace=settings.embedding_trace
    )


# -- reporting ---------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), p)) if values else float("nan")


def write_subsection(heading: str, body: str, path: Path = BENCH_DOC) -> None:
    """Replace (or add) ``### heading`` inside this benchmark family's section of the doc.

    Other sections of the file (other engineers' benchmarks) are left as they are.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"### {heading}\n\n{body.strip()}\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}"
    else:
        head, _, rest = text.partition(SECTION)
        nxt = rest.find("\n## ")
        mine, after = (rest, "") if nxt < 0 else (rest[:nxt], rest[nxt:])
        marker = f"### {heading}\n"
        if marker in mine:
            pre, _, post = mine.partition(marker)
            nsub = post.find("\n### ")
            post = "" if nsub < 0 else post[nsub + 1 :]
            mine = f"{pre}{block}\n{post}" if post else f"{pre}{block}"
        else:
            mine = mine.rstrip("\n") + f"\n\n{block}"
        text = f"{head}{SECTION}{mine.rstrip()}\n{after}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
