"""The embedding model as an int8 ONNX Runtime graph, for CPUs without native bfloat16.

Where the CPU has VNNI (int8 dot products) but not AVX512-BF16/AMX, bfloat16 is emulated and runs
at a third of float32's speed, while int8 matrix products run at about three times float32's
(docs/benchmarks.md, session 16). This module builds that int8 model from the loaded one:

1. the float32 transformer with mean pooling and normalisation (``traced._MeanPooled``) is
   exported to ONNX, attention written out as plain matrix products;
2. each linear layer's input is smoothed first (SmoothQuant, Xiao et al. 2023): a few input
   channels of a BERT-like model range far wider than the rest, in every text, and one int8 scale
   for the whole input would spend its levels on them. Dividing each channel by a factor and
   multiplying the weights' matching rows by it computes the same product with the range moved
   partly into the weights, which are quantised per channel (half the error against float32);
3. ONNX Runtime's dynamic quantisation turns every weight matrix into int8, one scale per output
   channel; the attention products between activations stay float32;
4. the result is cached on disk, keyed by the model's files, the library versions and this
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
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.retrieval.priority import lower_thread_priority
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

RECIPE = "mean-pooled-opset17-smooth0.65-dynamic-qint8-per-channel-v2"  # change: rebuild all
MIN_COSINE = 0.98  # int8 vectors against the model's float32 ones, on the check texts
# SmoothQuant's alpha: the share of an input channel's range moved into the weights. Measured on
# all-MiniLM-L6-v2 (SQuAD questions and paragraphs against float32, docs/benchmarks.md session 17):
# mean cosine 0.9942 unsmoothed, 0.9969 / 0.9975 / 0.9975 / 0.9969 at 0.6 / 0.65 / 0.7 / 0.8.
SMOOTHING = 0.65
# Texts whose activations set each channel's range: of several kinds and lengths. The channels
# that matter are wide in every text, so a few suffice; none of them is evaluation data.
_CALIBRATION_TEXTS = (
    *_TRACE_TEXTS,
    *_CHECK_TEXTS,
    "Who was the first president of the company, and when did she step down?",
    "In 1998 the company reported revenue of $4.2 billion, up 12% from the year before, mostly"
    " from sales in Europe and Asia; its largest plant, near Lyon, employed 3,400 people.",
    "def handler(event):\n    return {'status': 200, 'body': event['text'].strip()}",
    "Mitochondria produce most of a cell's ATP through oxidative phosphorylation, which needs"
    " oxygen; without it, cells fall back on glycolysis, which yields far less energy.",
    "How many tokens did the workspace use yesterday?",
    "The treaty ended the war in 1648. It recognised the independence of the Dutch Republic and"
    " gave France parts of Alsace, while the Holy Roman Empire lost much of its central power.",
    "Error 403: the token has expired. Ask an admin to reinstall the app, then try again.",
    "Photosynthesis",
)
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
    """Embeds texts one per run with the int8 graph; vectors are L2-normalised, in order.

    Each run is single-threaded, and a call spreads its texts over ``threads`` worker threads
    that run the one session at once (ONNX Runtime sessions may be shared between threads, and
    a run releases the GIL). Texts side by side beat one text's matrices split across threads:
    a short question leaves split threads waiting on each other. Measured on two cores
    (docs/benchmarks.md, session 17): 100 questions in 91-105 ms instead of 184-243 ms, 87
    paragraphs in 666-691 ms instead of 825-845 ms. No thread spins between runs, so a burst of
    questions leaves the event loop its core as soon as the last one is embedded. A
    ``background`` call (a document's chunks) runs on threads of lower CPU priority, so the
    questions run alongside it get the cores first.
    """

    def __init__(self, model: SentenceTransformer, path: Path, *, threads: int) -> None:
        self.path = path
        self._session = _session(path)
        self._workers = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # A copy of the tokenizer, configured once: calling the model's own with other
        # padding/truncation settings would reconfigure it under a concurrent torch encode.
        tokenizer = copy.deepcopy(model.tokenizer).backend_tokenizer
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=int(model.max_seq_length or 512))
        self._tokenizer = tokenizer

    def __call__(self, texts: list[str], *, background: bool = False) -> list[list[float]]:
        # sentence-transformers strips each text before tokenising; so do we.
        encodings = self._tokenizer.encode_batch([t.strip() for t in texts])
        k = min(self._workers, len(encodings))
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
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="int8-embed")
            return self._pool

    def _background_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(
                    self._workers,
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


def int8_path(model_path: str, cache_dir: Path) -> Path:
    """Where the int8 model of ``model_path`` (with these libraries and this recipe) is kept."""
    return cache_dir / f"{Path(model_path).name or 'model'}-{cache_key(model_path)}-int8.onnx"


def build(
    model: SentenceTransformer, transformer: torch.nn.Module, model_path: str, cache_dir: Path
) -> Path:
    """The cached int8 model for ``model``, built first when it is missing."""
    target = int8_path(model_path, cache_dir)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("building the int8 ONNX embedding model (once) into %s", target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        exported, quantised = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        export(model, transformer, exported)
        quantise(exported, quantised)
        os.replace(quantised, target)  # atomic: a concurrent builder just replaces it again
    return target


def export(
    model: SentenceTransformer,
    transformer: torch.nn.Module,
    path: Path,
    *,
    smoothing: float | None = SMOOTHING,
) -> None:
    """The float32 mean-pooled model as ONNX at ``path``, its linear layers smoothed with
    ``smoothing`` as alpha (None: not smoothed)."""
    clone = copy.deepcopy(transformer).float().eval()
    # Attention as plain matrix products: quantisation leaves those between activations alone.
    setter = getattr(clone, "set_attn_implementation", None)
    if callable(setter):
        setter("eager")
    else:
        setattr(clone.config, "_attn_implementation", "eager")  # noqa: B010
    if smoothing is not None:
        smooth(model, clone, smoothing)
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


class _Smoothed(torch.nn.Module):
    """``linear(x)`` computed as ``(linear with column j of its weights times s_j)(x_j / s_j)``."""

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        with torch.no_grad():
            linear.weight.mul_(scale)
        self.linear = linear
        self.register_buffer("inverse", 1.0 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inverse = self.get_buffer("inverse")
        out: torch.Tensor = self.linear(x * inverse)
        return out


def smooth(model: SentenceTransformer, transformer: torch.nn.Module, alpha: float) -> None:
    """Wrap each linear layer of ``transformer`` in ``_Smoothed``, with per-input-channel factors
    ``s = max|x|^alpha / max|w|^(1 - alpha)`` from the calibration texts' activations."""
    linears = {n: m for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)}
    ranges: dict[str, torch.Tensor] = {}

    def recorder(name: str) -> Any:
        def record(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen = args[0].detach().abs().flatten(0, -2).amax(dim=0)
            ranges[name] = torch.maximum(ranges[name], seen) if name in ranges else seen

        return record

    handles = [m.register_forward_pre_hook(recorder(n)) for n, m in linears.items()]
    try:
        with torch.no_grad():
            for text in _CALIBRATION_TEXTS:  # one at a time, as the model runs: no padding
                features = model.preprocess([text])
                transformer(
                    input_ids=features["input_ids"], attention_mask=features["attention_mask"]
                )
    finally:
        for handle in handles:
            handle.remove()
    for name, linear in linears.items():
        if name not in ranges:
            continue
        weights = linear.weight.detach().abs().amax(dim=0).clamp(min=1e-5)
        scale = (ranges[name].clamp(min=1e-5) ** alpha / weights ** (1 - alpha)).clamp(min=1e-5)
        parent, _, attribute = name.rpartition(".")
        setattr(transformer.get_submodule(parent), attribute, _Smoothed(linear, scale))


def quantise(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of ``source``'s weight matrices, per channel."""
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
