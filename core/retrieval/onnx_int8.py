"""The embedding model as an int8 ONNX Runtime graph, for CPUs without native bfloat16.

Where the CPU has VNNI (int8 dot products) but not AVX512-BF16/AMX, bfloat16 is emulated and runs
at a third of float32's speed, while int8 matrix products run at about three times float32's
(bench/ingest_throughput.py). This module builds that int8 model from the loaded one:

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
that does not build, load or match is logged and left to the torch path. The check's texts,
token ids and float32 vectors go into a manifest beside the model, so that later starts load
and check it without torch (``core.retrieval.int8_model``). This module imports torch: import
it only where the model is built.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.retrieval.int8_model import MIN_COSINE, Int8Encoder, int8_path
from core.retrieval.model_files import CHECK_TEXTS, min_cosine, write_manifest
from core.retrieval.traced import (
    _TRACE_TEXTS,
    _MeanPooled,
    manifest_of,
    model_tokens,
    pooling_reference,
    transformer_of,
)
from core.retrieval.traced import MIN_COSINE as TRACE_MIN_COSINE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# SmoothQuant's alpha: the share of an input channel's range moved into the weights. Measured on
# all-MiniLM-L6-v2 (cosine to float32 over the SQuAD eval questions and paragraphs):
# mean cosine 0.9942 unsmoothed, 0.9969 / 0.9975 / 0.9975 / 0.9969 at 0.6 / 0.65 / 0.7 / 0.8.
SMOOTHING = 0.65
# Texts whose activations set each channel's range: of several kinds and lengths. The channels
# that matter are wide in every text, so a few suffice; none of them is evaluation data.
_CALIBRATION_TEXTS = (
    *_TRACE_TEXTS,
    *CHECK_TEXTS,
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


def int8_encoder(
    model: SentenceTransformer, model_path: str, cache_dir: Path, *, threads: int
) -> Int8Encoder | None:
    """The int8 encoder (built or loaded from ``cache_dir``), or None with the reason logged.

    Checked twice: before building, that the model is a mean-pooling one (what the graph
    computes); after, that the int8 vectors match the model's float32 ones, which then go into
    the manifest for later starts. A cached file that no longer loads is built again once."""
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
        tokens = model_tokens(model)
        try:
            encoder = Int8Encoder(path, tokens, threads=threads)
        except Exception as exc:
            log.warning("cached int8 ONNX model %s does not load (%s): rebuilding", path, exc)
            path.unlink(missing_ok=True)
            path = build(model, transformer, model_path, cache_dir)
            encoder = Int8Encoder(path, tokens, threads=threads)
        cosine = min_cosine(encoder(CHECK_TEXTS), expected.tolist())
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
    write_manifest(path, manifest_of(model, expected))
    log.info("embedding with the int8 ONNX model %s (cosine to float32 %.4f)", path.name, cosine)
    return encoder


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
