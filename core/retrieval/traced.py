"""The embedding model as one TorchScript graph: transformer, mean pooling and normalisation.

The eager model runs a few hundred small torch operators per batch, and each one gives the GIL up
and takes it back. Next to a busy event loop every take-back can wait for the loop's switch
interval (5 ms), so embedding a burst of 100 questions went from 0.15 s alone to 1-2 s beside the
loop (docs/benchmarks.md, session 15). The traced graph runs in C++ from one call, with the GIL
released once per batch.

Tracing is an optimisation, never a requirement: a model that does not trace, or whose traced
vectors differ from sentence-transformers' own (another pooling, say), is used eagerly instead.
This module imports torch: import it only where the model is loaded.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Traced on a padded batch: a trace of an unpadded one would bake "no attention mask" in.
_TRACE_TEXTS = (
    "How do I add the bot to a channel?",
    "Uploads are split into chunks of about a thousand characters, embedded and indexed so that"
    " a question finds the passages that answer it, with citations a person can check.",
)
_CHECK_TEXTS = (
    "Which namespaces does this channel search?",
    "Retention",
    "The scheduler rolls token usage up per day and deletes what the retention policy no longer"
    " allows, in batches, so that a large workspace never holds a long transaction open.",
)
MIN_COSINE = 0.999  # our float32 pooling against the model's own vectors
TRACE_COSINE = 0.9999  # the traced graph against the module it was traced from


class TracedEncoder:
    """Embeds texts with the frozen graph; vectors are L2-normalised, in the texts' order."""

    def __init__(self, model: SentenceTransformer, graph: Any) -> None:
        self._model = model
        self._graph = graph

    def __call__(self, texts: list[str]) -> list[list[float]]:
        features = self._model.preprocess(texts)
        with torch.inference_mode():
            vectors = self._graph(features["input_ids"], features["attention_mask"])
        out: list[list[float]] = vectors.tolist()
        return out


PRECISIONS = ("float32", "bfloat16")


def trace_encoder(model: SentenceTransformer, *, precision: str) -> TracedEncoder | None:
    """The model traced at ``precision`` ("bfloat16" converts all weights), or None to stay
    eager (the reason logged)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    try:
        return _trace(model, precision)
    except Exception as exc:  # any failure leaves the eager model, which always works
        log.warning("embedding model not traced, running eagerly: %s", exc)
        return None


def transformer_of(model: SentenceTransformer) -> torch.nn.Module | None:
    """The model's transformer (its first module's), or None when it has none."""
    transformer = getattr(model[0], "auto_model", None)
    return transformer if isinstance(transformer, torch.nn.Module) else None


def pooling_reference(
    model: SentenceTransformer, transformer: torch.nn.Module
) -> tuple[torch.Tensor, float]:
    """The model's own float32 vectors for the check texts, and the lowest cosine of our mean
    pooling (eager, float32) to them: below ``MIN_COSINE`` the model is not a mean-pooling one,
    and neither compiled form (this graph, the int8 ONNX model) reproduces it."""
    texts = list(_CHECK_TEXTS)
    check = model.preprocess(texts)
    with torch.inference_mode():
        expected = model.encode(
            texts, normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        ).float()
        pooled = _MeanPooled(transformer).eval()(check["input_ids"], check["attention_mask"])
    return expected, _min_cosine(pooled, expected)


def _trace(model: SentenceTransformer, precision: str) -> TracedEncoder | None:
    transformer = transformer_of(model)
    if transformer is None:
        log.info("embedding model not traced: its first module is not a transformer")
        return None
    # 1. The graph's computation is the model's: our pooling, eagerly, in float32.
    _, cosine = pooling_reference(model, transformer)
    if cosine < MIN_COSINE:
        log.warning(
            "embedding model not traced: mean pooling does not reproduce the model's vectors"
            " (cosine %.4f)",
            cosine,
        )
        return None
    module = _MeanPooled(_at_precision(transformer, precision)).eval()
    sample = model.preprocess(list(_TRACE_TEXTS))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shapes baked in: checked below
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            module, (sample["input_ids"], sample["attention_mask"]), check_trace=False
        )
        graph = torch.jit.freeze(traced.eval())
    encoder = TracedEncoder(model, graph)
    check = model.preprocess(list(_CHECK_TEXTS))
    with torch.inference_mode():
        eager = module(check["input_ids"], check["attention_mask"])
    for _ in range(3):  # the profiling executor optimises the graph over its first runs
        got = torch.tensor(encoder(list(_CHECK_TEXTS)))
    # 2. The trace generalises to other lengths and batch sizes than the ones it was made on.
    cosine = _min_cosine(got, eager)
    if cosine < TRACE_COSINE:
        log.warning(
            "embedding model not traced: traced vectors differ from the eager ones (cosine %.5f)",
            cosine,
        )
        return None
    return encoder


def _at_precision(transformer: torch.nn.Module, precision: str) -> torch.nn.Module:
    if precision == "bfloat16":
        return copy.deepcopy(transformer).to(torch.bfloat16)
    return transformer


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return float((a * b).sum(dim=-1).min())


class _MeanPooled(torch.nn.Module):
    """Transformer, then the attention-masked mean of its token vectors, L2-normalised."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state.float()
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)
