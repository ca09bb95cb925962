"""The embedding model as one TorchScript graph: transformer, mean pooling and normalisation.

The eager model runs a few hundred small torch operators per batch, and each one gives the GIL up
and takes it back. Next to a busy event loop every take-back can wait for the loop's switch
interval (5 ms), so eagerly embedding a burst of 100 questions takes 0.15 s alone and 1-2 s
beside the loop. The traced graph runs in C++ from one call, with the GIL
released once per batch.

Tracing is an optimisation, never a requirement: a model that does not trace, or whose traced
vectors differ from sentence-transformers' own (another pooling, say), is used eagerly instead.
Tracing takes seconds, so a traced graph is saved into the model cache directory with a
manifest (``core.retrieval.model_files``), and later starts load it (``load_built``) with the
model's tokenizer file instead of sentence-transformers. This module imports torch: import it
only where the model is loaded.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.retrieval.model_files import (
    CHECK_TEXTS,
    Manifest,
    TextTokens,
    file_tokens,
    fingerprint,
    min_cosine,
    read_manifest,
    version,
    write_manifest,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Traced on a padded batch: a trace of an unpadded one would bake "no attention mask" in.
_TRACE_TEXTS = (
    "How do I add the bot to a channel?",
    "Uploads are split into chunks of about a thousand characters, embedded and indexed so that"
    " a question finds the passages that answer it, with citations a person can check.",
)
MIN_COSINE = 0.999  # our float32 pooling (and a saved graph) against the model's own vectors
TRACE_COSINE = 0.9999  # the traced graph against the module it was traced from
RECIPE = "mean-pooled-trace-freeze-v1"  # change: every saved graph is traced again
PRECISIONS = ("float32", "bfloat16")
# input_ids and attention_mask of a padded batch
Features = Callable[[Sequence[str]], tuple[torch.Tensor, torch.Tensor]]


class TracedEncoder:
    """Embeds texts with the frozen graph; vectors are L2-normalised, in the texts' order."""

    def __init__(self, graph: Any, features: Features) -> None:
        self.graph = graph
        self._features = features

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        ids, mask = self._features(texts)
        with torch.inference_mode():
            vectors = self.graph(ids, mask)
        out: list[list[float]] = vectors.tolist()
        return out


def model_features(model: SentenceTransformer) -> Features:
    """Padded features as sentence-transformers prepares them."""

    def features(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        prepared = model.preprocess(list(texts))
        return prepared["input_ids"], prepared["attention_mask"]

    return features


def token_features(tokens: TextTokens) -> Features:
    """Padded features from the model's tokenizer file (no sentence-transformers)."""

    def features(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = tokens.padded(texts)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    return features


def model_tokens(model: SentenceTransformer) -> TextTokens:
    """The model's own fast tokenizer, set up as sentence-transformers uses it."""
    return TextTokens(
        model.tokenizer.backend_tokenizer,
        max_length=int(model.max_seq_length or 512),
        lower_case=bool(getattr(model[0], "do_lower_case", False)),
    )


def manifest_of(model: SentenceTransformer, expected: torch.Tensor) -> Manifest:
    """What a compiled form of ``model`` is checked against later: the model's token ids and
    float32 vectors (``expected``, from ``pooling_reference``) of the check texts."""
    features = model.preprocess(list(CHECK_TEXTS))
    ids = [
        row[: int(mask.sum())].tolist()
        for row, mask in zip(features["input_ids"], features["attention_mask"], strict=True)
    ]
    return Manifest(
        max_seq_length=int(model.max_seq_length or 512),
        lower_case=bool(getattr(model[0], "do_lower_case", False)),
        token_ids=ids,
        vectors=expected.tolist(),
    )


def graph_path(model_path: str, cache_dir: Path, precision: str) -> Path:
    """Where the traced graph of ``model_path`` at ``precision`` is kept."""
    parts = [RECIPE, precision, version("torch"), version("transformers")]
    name = Path(model_path).name or "model"
    return cache_dir / f"{name}-{fingerprint(model_path, parts)}-{precision}.pt"


def load_built(
    model_path: str, cache_dir: Path, *, precision: str
) -> tuple[TracedEncoder, TextTokens] | None:
    """The graph traced at an earlier start, with the model's tokenizer file (returned too, for
    counting), checked against the manifest's float32 vectors; None when there is none or it
    does not match."""
    path = graph_path(model_path, cache_dir, precision)
    manifest = read_manifest(path)
    tokens = None if manifest is None else file_tokens(model_path, manifest)
    if manifest is None or tokens is None:
        return None
    try:
        encoder = TracedEncoder(_load_graph(path), token_features(tokens))
        cosine = _warmed_cosine(encoder, manifest.vectors)
    except Exception as exc:  # a damaged file: tracing again replaces it
        log.warning("saved embedding graph %s does not load (%s)", path, exc)
        return None
    if cosine < MIN_COSINE:
        log.warning("saved embedding graph %s differs from float32 (cosine %.4f)", path, cosine)
        return None
    return encoder, tokens


def _warmed_cosine(encoder: TracedEncoder, want: list[list[float]]) -> float:
    for _ in range(3):  # the profiling executor optimises the graph over its first runs
        got = encoder(CHECK_TEXTS)
    return min_cosine(got, want)


def trace_encoder(
    model: SentenceTransformer, *, precision: str, cache: tuple[str, Path] | None = None
) -> TracedEncoder | None:
    """The model traced at ``precision`` ("bfloat16" converts all weights), or None to stay
    eager (the reason logged). With ``cache`` (the model's path and the cache directory), a
    graph saved there is loaded instead of traced, and a new trace is saved."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    try:
        if cache is None:
            return _trace(model, precision)
        return _cached_trace(model, precision, graph_path(cache[0], cache[1], precision))
    except Exception as exc:  # any failure leaves the eager model, which always works
        log.warning("embedding model not traced, running eagerly: %s", exc)
        return None


def _cached_trace(model: SentenceTransformer, precision: str, path: Path) -> TracedEncoder | None:
    transformer = transformer_of(model)
    expected = None if transformer is None else pooling_reference(model, transformer)[0]
    if expected is not None and path.is_file():
        try:
            saved = TracedEncoder(_load_graph(path), model_features(model))
            if _warmed_cosine(saved, expected.tolist()) >= MIN_COSINE:
                write_manifest(path, manifest_of(model, expected))
                return saved
        except Exception as exc:
            log.warning("saved embedding graph %s does not load (%s): tracing again", path, exc)
    encoder = _trace(model, precision)
    if encoder is None or expected is None:
        return encoder
    _save(encoder.graph, path)
    write_manifest(path, manifest_of(model, expected))
    return encoder


def _load_graph(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript, still what traces
        return torch.jit.load(str(path))  # type: ignore[no-untyped-call]


def _save(graph: Any, path: Path) -> None:
    """Save the graph atomically (a concurrent start loads the old file or the new one); one
    that can't be saved is traced again at the next start."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trace-", suffix=".pt")
        os.close(fd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(graph, tmp)
        os.replace(tmp, path)
    except Exception as exc:
        log.warning("traced embedding graph not saved to %s (%s)", path, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


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
    texts = list(CHECK_TEXTS)
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
    encoder = TracedEncoder(graph, model_features(model))
    check = model.preprocess(list(CHECK_TEXTS))
    with torch.inference_mode():
        eager = module(check["input_ids"], check["attention_mask"])
    for _ in range(3):  # the profiling executor optimises the graph over its first runs
        got = torch.tensor(encoder(list(CHECK_TEXTS)))
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
