"""What runs the embedding model, loaded the cheapest way that gives its vectors.

In order: a compiled form built at an earlier start and checked against its manifest (the int8
ONNX model, or the traced graph), loaded with the model's tokenizer file alone; else the
sentence-transformers model, from which the compiled form is built (and saved for the next
start); else that model run eagerly. Only the last two import sentence-transformers and torch,
which take seconds; a start with the int8 model built imports neither.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.retrieval.int8_model import Int8Encoder, cpu_threads
from core.retrieval.int8_model import load_built as load_built_int8

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

_PRECISION = {"torch": "float32", "torch-bf16": "bfloat16"}
Encode = Callable[[list[str]], list[list[float]]]


@dataclass
class Engine:
    """The loaded model: ``encode`` embeds a batch (L2-normalised vectors, in order),
    ``count`` gives each text's tokens before truncation at ``max_tokens``."""

    name: str  # "onnx-int8", "torchscript" or "eager"
    backend: str  # the backend in use: "torch" after an int8 model fell back
    encode: Encode
    count: Callable[[list[str]], list[int]]
    max_tokens: int
    int8: Int8Encoder | None = None
    model: SentenceTransformer | None = None  # only where sentence-transformers was loaded


def load_engine(
    path: str, *, backend: str, trace: bool, cache_dir: Path, max_seq_length: int | None
) -> Engine:
    """The engine for the model at ``path`` with ``backend`` (resolved, not "auto")."""
    prebuilt = max_seq_length is None  # a compiled form keeps the length it was built with
    if backend == "onnx-int8" and prebuilt:
        int8 = load_built_int8(path, cache_dir, threads=cpu_threads())
        if int8 is not None:
            return _int8_engine(int8)
    model: SentenceTransformer | None = None
    if backend == "onnx-int8":
        from core.retrieval.onnx_int8 import int8_encoder

        model = load_model(path, max_seq_length)
        int8 = int8_encoder(model, path, cache_dir, threads=cpu_threads())
        if int8 is not None:
            return _int8_engine(int8, model)
        backend = "torch"
    if trace:
        from core.retrieval import traced

        precision = _PRECISION[backend]
        built = None
        if prebuilt and model is None:
            built = traced.load_built(path, cache_dir, precision=precision)
        if built is not None:
            graph, tokens = built
            return Engine("torchscript", backend, graph, tokens.counts, tokens.max_length)
        model = model or load_model(path, max_seq_length)
        traced_graph = traced.trace_encoder(model, precision=precision, cache=(path, cache_dir))
        if traced_graph is not None:
            return _model_engine("torchscript", backend, traced_graph, model)
    model = model or load_model(path, max_seq_length)
    return _model_engine("eager", backend, _eager(model, backend), model)


def _int8_engine(int8: Int8Encoder, model: SentenceTransformer | None = None) -> Engine:
    tokens = int8.tokens
    return Engine("onnx-int8", "onnx-int8", int8, tokens.counts, tokens.max_length, int8, model)


def _model_engine(name: str, backend: str, encode: Encode, model: SentenceTransformer) -> Engine:
    limit = int(model.max_seq_length or 512)
    return Engine(name, backend, encode, model_counter(model), limit, model=model)


def load_model(path: str, max_seq_length: int | None = None) -> SentenceTransformer:
    """The sentence-transformers model at ``path``, on the CPU, from local files only (never a
    model hub; the process's offline settings are the command line's, ``bot.cli``)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    model.eval()
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def model_counter(model: SentenceTransformer) -> Callable[[list[str]], list[int]]:
    """Token counts per text, from a copy of the model's tokenizer kept for counting only.

    A fast tokenizer call reconfigures the tokenizer's padding and truncation when they
    differ from the last call's; counting with the model's own tokenizer while another thread
    encodes (two uploads at once, a question during an upload) unpads that encode's batch,
    which then fails. The copy is set up for counting once, here, and never changes again.
    A fast tokenizer is counted through its Rust backend directly: the Python wrapper's
    call costs about ten times the tokenizing itself, and questions are counted on the
    event loop.
    """
    tokenizer = copy.deepcopy(model.tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()

        def count(texts: list[str]) -> list[int]:
            encoded = backend.encode_batch(texts, add_special_tokens=True)
            return [len(e.ids) for e in encoded]

        return count

    def count_slowly(texts: list[str]) -> list[int]:
        encoded = tokenizer(texts, add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    return count_slowly


def _eager(model: SentenceTransformer, backend: str) -> Encode:
    def encode(texts: list[str]) -> list[list[float]]:
        with _precision(backend):
            array = model.encode(
                texts,
                batch_size=len(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors: list[list[float]] = array.astype("float32").tolist()
        return vectors

    return encode


@contextlib.contextmanager
def _precision(backend: str) -> Iterator[None]:
    import torch

    with torch.inference_mode():
        if backend == "torch-bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield
