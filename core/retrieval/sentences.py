"""Sentence vectors stored with a chunk: the vectors of ``core.text.split_sentences(content)``,
in that order, as one float16 array (half the bytes of float32; a cosine moves by about 1e-3,
far below what the evidence gate tells apart). Packed at indexing, read with the chunk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from core.text import split_sentences

STORED = np.float16


def pack(vectors: Sequence[Sequence[float]]) -> bytes:
    """One chunk's sentence vectors as bytes (empty for a chunk without sentences: a chunk
    stored with NULL is one whose sentences were never embedded)."""
    if not vectors:
        return b""
    return np.asarray(vectors, dtype=STORED).tobytes()


def unpack(blob: bytes | None, *, sentences: int, dimension: int) -> np.ndarray | None:
    """The ``sentences`` x ``dimension`` float32 matrix of ``blob``, or ``None`` when the blob
    is missing or does not fit (stored by another model, or split by another splitter)."""
    width = np.dtype(STORED).itemsize * dimension
    if not blob or sentences < 1 or len(blob) != sentences * width:
        return None
    return np.frombuffer(blob, dtype=STORED).reshape(sentences, dimension).astype(np.float32)


async def with_sentence_vectors(
    embed: Callable[[list[str]], Awaitable[list[list[float]]]],
    texts: Sequence[str],
    contents: Sequence[str],
) -> tuple[list[list[float]], list[bytes]]:
    """Embed ``texts`` and, in the same pass, every distinct sentence of ``contents`` (each a
    chunk's content): the texts' vectors, and each content's packed sentence vectors."""
    sentences = [split_sentences(content) for content in contents]
    unique = list(dict.fromkeys(s for found in sentences for s in found))
    embedded = await embed([*texts, *unique]) if texts or unique else []
    by_sentence = dict(zip(unique, embedded[len(texts) :], strict=True))
    packed = [pack([by_sentence[s] for s in found]) for found in sentences]
    return embedded[: len(texts)], packed
