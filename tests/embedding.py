"""Texts and helpers shared by the embedder tests (torch paths and the int8 ONNX model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.retrieval.embedder import default_model_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# A question, a long passage, one letter, a sentence, and a text past the model's 256 tokens.
VARIED_TEXTS = [
    "Who founded the duchy?",
    "Hybrid search fuses a dense leg and a BM25 leg with reciprocal rank fusion. " * 12,
    "A",
    "Which channels search the docs namespace, and since when?",
    " ".join(f"term{i} of a text longer than the model's window" for i in range(120)),
]


def cos(a: list[float], b: list[float]) -> float:
    """Cosine of two unit vectors."""
    return sum(x * y for x, y in zip(a, b, strict=True))


def cls_pooling_model() -> SentenceTransformer:
    """The packaged transformer with CLS pooling: a model neither compiled form reproduces."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    return SentenceTransformer(
        modules=[Transformer(default_model_path()), Pooling(384, pooling_mode="cls")],
        device="cpu",
    ).eval()
