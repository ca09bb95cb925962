"""The built int8 ONNX embedding model at run time: ONNX Runtime and ``tokenizers``, no torch.

``core.retrieval.onnx_int8`` builds the model (with torch) and writes its manifest; this module
loads it, and a later start needs nothing else: ``load_built`` finds the file for this model,
these libraries and this recipe, checks its vectors against the float32 ones the manifest
recorded, and returns the encoder, or None when there is nothing usable to load (then the
caller builds it).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.retrieval.model_files import (
    CHECK_TEXTS,
    TextTokens,
    file_tokens,
    fingerprint,
    min_cosine,
    read_manifest,
    version,
)
from core.retrieval.priority import lower_thread_priority

log = logging.getLogger(__name__)

RECIPE = "mean-pooled-opset17-smooth0.65-dynamic-qint8-per-channel-v2"  # change: rebuild all
MIN_COSINE = 0.98  # int8 vectors against the model's float32 ones, on the check texts


def cpu_threads() -> int:
    """Threads to embed on: OMP_NUM_THREADS when set, else the CPUs this process may use."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, len(os.sched_getaffinity(0)))


def cache_key(model_path: str) -> str:
    """What the built model depends on: the model's files, the libraries, this recipe."""
    libraries = [version(name) for name in ("torch", "onnx", "onnxruntime")]
    return fingerprint(model_path, [RECIPE, *libraries])


def int8_path(model_path: str, cache_dir: Path) -> Path:
    """Where the int8 model of ``model_path`` (with these libraries and this recipe) is kept."""
    return cache_dir / f"{Path(model_path).name or 'model'}-{cache_key(model_path)}-int8.onnx"


class Int8Encoder:
    """Embeds texts one per run with the int8 graph; vectors are L2-normalised, in order.

    Each run is single-threaded, and a call spreads its texts over ``threads`` worker threads
    that run the one session at once (ONNX Runtime sessions may be shared between threads, and
    a run releases the GIL). Texts side by side beat one text's matrices split across threads:
    a short question leaves split threads waiting on each other. Measured on two cores
    (docs/benchmarks.md): 100 questions in 91-105 ms instead of 184-243 ms, 87
    paragraphs in 666-691 ms instead of 825-845 ms. No thread spins between runs, so a burst of
    questions leaves the event loop its core as soon as the last one is embedded. A
    ``background`` call (a document's chunks) runs on threads of lower CPU priority, so the
    questions run alongside it get the cores first; with ``spare_core`` (people are asking) it
    runs on one thread fewer, so a core stays free for them.
    """

    def __init__(self, path: Path, tokens: TextTokens, *, threads: int) -> None:
        self.path = path
        self.tokens = tokens
        self._session = _session(path)
        self.workers = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __call__(
        self, texts: Sequence[str], *, background: bool = False, spare_core: bool = False
    ) -> list[list[float]]:
        encodings = self.tokens.encode(texts)
        k = min(max(1, self.workers - spare_core), len(encodings))
        if k < 2 and not background:
            return self._run(encodings)
        pool = self._background_pool() if background else self._workers_pool()
        # Interleaved shares: texts arrive sorted by length, so each share gets long and short.
        shares = pool.map(self._run, [encodings[i::k] for i in range(k)])
        out: list[list[float]] = [[] for _ in encodings]
        for i, share in enumerate(shares):
            out[i::k] = share
        return out

    def _workers_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="int8-embed")
            return self._pool

    def _background_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(
                    self.workers,
                    thread_name_prefix="int8-embed-background",
                    initializer=lower_thread_priority,
                )
            return self._background

    def _run(self, encodings: list[Any]) -> list[list[float]]:
        out: list[list[float]] = []
        for encoding in encodings:
            ids = np.asarray([encoding.ids], dtype=np.int64)
            mask = np.asarray([encoding.attention_mask], dtype=np.int64)
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out.append(vectors[0].tolist())
        return out


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one thread per run: parallel runs use the cores
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about unused initialisers
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_built(model_path: str, cache_dir: Path, *, threads: int) -> Int8Encoder | None:
    """The int8 encoder of a model built before (file and manifest in ``cache_dir``), checked
    against the manifest's float32 vectors; None when there is none, or it does not load, or its
    tokens or vectors differ (the caller then builds or checks it with the full stack)."""
    path = int8_path(model_path, cache_dir)
    manifest = read_manifest(path)
    if manifest is None:
        return None
    tokens = file_tokens(model_path, manifest)
    if tokens is None:
        return None
    try:
        encoder = Int8Encoder(path, tokens, threads=threads)
        cosine = min_cosine(encoder(CHECK_TEXTS), manifest.vectors)
    except Exception as exc:  # a damaged file: the build path replaces it
        log.warning("built int8 ONNX model %s does not load (%s)", path, exc)
        return None
    if cosine < MIN_COSINE:
        log.warning("built int8 ONNX model %s differs from float32 (cosine %.4f)", path, cosine)
        return None
    log.info("embedding with the int8 ONNX model %s (cosine to float32 %.4f)", path.name, cosine)
    return encoder
