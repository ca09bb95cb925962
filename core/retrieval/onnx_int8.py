"""The embedding model as an int8 ONNX Runtime graph, for CPUs without native bfloat16.

Where the CPU has VNNI (int8 dot products) but not AVX512-BF16/AMX, bfloat16 is emulated and runs
at a third of float32's speed, while int8 matrix products run at about three times float32's
(docs/benchmarks.md, session 16). This module builds that int8 model from the loaded one:

1. the float32 transformer with mean pooling and normalisation (``traced._MeanPooled``) is
   exported to ONNX, attention written out as plain matrix products;
2. ONNX Runtime's dynamic quantisation turns every weight matrix into int8, one scale per output
   channel; the attention products between activations stay float32;
3. the result is cached on disk, keyed by the model's files, the library versions and this
   recipe, so a later start loads it in a fraction of a second.

Dynamic quantisation picks one activation scale per tensor at run time, so a text's vector would
depend on the texts batched with it (and on their padding). Each text therefore runs alone: its
vector is the same whatever else is being embedded, and no padding is computed at all.

The built model is checked against the model's own float32 vectors before it is used; a model
that does not build, load or match is logged and left to the torch path. This module imports
torch and onnxruntime: import it only where the model is loaded.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.retrieval.traced import (
    _CHECK_TEXTS,
    _TRACE_TEXTS,
    _MeanPooled,
    _min_cosine,
    pooling_reference,
    transformer_of,
)
from core.retrieval.traced import MIN_COSINE as TRACE_MIN_COSINE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

RECIPE = "mean-pooled-opset17-dynamic-qint8-per-channel-v1"  # change to rebuild every cache
MIN_COSINE = 0.98  # int8 vectors against the model's float32 ones, on the check texts
_MODEL_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "tokenizer.json",
    "model.safetensors",
    "pytorch_model.bin",
)


class Int8Encoder:
    """Embeds texts one at a time with the int8 graph; vectors are L2-normalised, in order.

    Two sessions share the file. Passages run on one whose worker threads spin between runs
    (about a third faster on a long upload). Queries run on one whose threads sleep at once:
    a burst of questions is embedded beside a busy event loop, and spinning threads took the
    loop's core (100 questions at once, docs/benchmarks.md session 16).
    """

    def __init__(self, model: SentenceTransformer, path: Path, *, threads: int) -> None:
        self.path = path
        self._documents = _session(path, threads, spin=True)
        self._queries = _session(path, threads, spin=False)
        # A copy of the tokenizer, configured once: calling the model's own with other
        # padding/truncation settings would reconfigure it under a concurrent torch encode.
        tokenizer = copy.deepcopy(model.tokenizer).backend_tokenizer
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=int(model.max_seq_length or 512))
        self._tokenizer = tokenizer

    def __call__(self, texts: list[str]) -> list[list[float]]:
        return self._run(self._documents, texts)

    def queries(self, texts: list[str]) -> list[list[float]]:
        return self._run(self._queries, texts)

    def _run(self, session: Any, texts: list[str]) -> list[list[float]]:
        # sentence-transformers strips each text before tokenising; so do we.
        encodings = self._tokenizer.encode_batch([t.strip() for t in texts])
        out: list[list[float]] = []
        for encoding in encodings:
            ids = np.asarray([encoding.ids], dtype=np.int64)
            mask = np.asarray([encoding.attention_mask], dtype=np.int64)
            (vectors,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            out.append(vectors[0].tolist())
        return out


def _session(path: Path, threads: int, *, spin: bool) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about unused initialisers
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def int8_encoder(
    model: SentenceTransformer, model_path: str, cache_dir: Path, *, threads: int
) -> Int8Encoder | None:
    """The int8 encoder (built or loaded from ``cache_dir``), or None with the reason logged.

    Checked twice: before building, that the model is a mean-pooling one (what the graph
    computes); after, that the int8 vectors match the model's float32 ones. A cached file that
    no longer loads is built again once."""
    try:
        transformer = transformer_of(model)
        if transformer is None:
            raise ValueError("the model's first module is not a transformer")
        expected, pooled = pooling_reference(model, transformer)
        if pooled < TRACE_MIN_COSINE:
            log.warning(
                "int8 ONNX embedding model not used: mean pooling does not reproduce the"
                " model's vectors, running torch"
            )
            return None
        path = build(model, transformer, model_path, cache_dir)
        try:
            encoder = Int8Encoder(model, path, threads=threads)
        except Exception as exc:
            log.warning("cached int8 ONNX model %s does not load (%s): rebuilding", path, exc)
            path.unlink(missing_ok=True)
            path = build(model, transformer, model_path, cache_dir)
            encoder = Int8Encoder(model, path, threads=threads)
        cosine = _min_cosine(torch.tensor(encoder(list(_CHECK_TEXTS))), expected)
    except Exception as exc:  # any failure leaves the torch path, which always works
        log.warning("int8 ONNX embedding model not used, running torch: %s", exc)
        return None
    if cosine < MIN_COSINE:
        log.warning(
            "int8 ONNX embedding model not used: its vectors differ from the model's"
            " (cosine %.4f < %.2f), running torch",
            cosine,
            MIN_COSINE,
        )
        return None
    log.info("embedding with the int8 ONNX model %s (cosine to float32 %.4f)", path.name, cosine)
    return encoder


def cache_key(model_path: str) -> str:
    """What the built model depends on: the model's files, the libraries, this recipe."""
    import onnx
    import onnxruntime

    digest = hashlib.sha256()
    for part in (RECIPE, torch.__version__, onnx.__version__, onnxruntime.__version__):
        digest.update(part.encode() + b"\0")
    root = Path(model_path)
    for name in _MODEL_FILES:
        file = root / name
        if file.is_file():
            stat = file.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:20]


def build(
    model: SentenceTransformer, transformer: torch.nn.Module, model_path: str, cache_dir: Path
) -> Path:
    """The cached int8 model for ``model``, built first when it is missing."""
    target = cache_dir / f"{Path(model_path).name or 'model'}-{cache_key(model_path)}-int8.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("building the int8 ONNX embedding model (once) into %s", target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        exported, quantised = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        _export(model, transformer, exported)
        _quantise(exported, quantised)
        os.replace(quantised, target)  # atomic: a concurrent builder just replaces it again
    return target


def _export(model: SentenceTransformer, transformer: torch.nn.Module, path: Path) -> None:
    clone = copy.deepcopy(transformer).float().eval()
    # Attention as plain matrix products: quantisation leaves those between activations alone.
    setter = getattr(clone, "set_attn_implementation", None)
    if callable(setter):
        setter("eager")
    else:
        setattr(clone.config, "_attn_implementation", "eager")  # noqa: B010
    module = _MeanPooled(clone).eval()
    sample = model.preprocess(list(_TRACE_TEXTS))
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad(), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet(""):  # "consider pre-processing" goes to the root logger
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )


class _DropWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[Any]:
    """Keep a library's warnings about the build out of the user's terminal."""
    logger, dropping = logging.getLogger(name), _DropWarnings()
    logger.addFilter(dropping)
    try:
        yield logger
    finally:
        logger.removeFilter(dropping)
