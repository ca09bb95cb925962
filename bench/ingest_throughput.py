"""Ingestion throughput: chunks/s from text to searchable in milvus-lite (embed + upsert).

    .venv/bin/python bench/ingest_throughput.py [--repeat 3] [--append docs/benchmarks.md]

Chunks: the two SQuAD 2.0 dev articles of /work/shared/eval chunked 1000/200 by
``core.ingestion.chunking.chunk_text``, repeated ``--repeat`` times (with a counter so no two
texts are equal). Baseline, in the same run: plain ``SentenceTransformer.encode`` of the same
chunks (default batch size 32, float32), with no store at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.ingestion.chunking import chunk_text
from core.retrieval.base import VectorRecord
from core.retrieval.embedder import SentenceTransformerEmbedder, default_model_path
from core.retrieval.milvus import MilvusVectorStore

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
# (backend, batch, traced): "eager" rows run sentence-transformers' own forward (trace=False).
VARIANTS = [
    ("torch", 16, False),
    ("torch", 16, True),
    ("torch-bf16", 16, False),
    ("torch-bf16", 16, True),
    ("torch-bf16", 8, True),
    ("onnx-int8", 16, True),
]


def chunks(repeat: int) -> list[str]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    base = []
    for article in data["data"]:
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        base += [c.text for c in chunk_text(text, size=1000, overlap=200)]
    return [f"{c} ({r})" for r in range(repeat) for c in base]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(texts: list[str]) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(default_model_path(), device="cpu", local_files_only=True)
    model.encode(texts[:8])
    t = time.perf_counter()
    model.encode(texts, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - t)


async def ingest(
    texts: list[str], backend: str, batch: int, traced: bool, tmp: Path
) -> tuple[float, str]:
    embedder = SentenceTransformerEmbedder(backend=backend, batch_size=batch, trace=traced)
    await embedder.embed_documents(texts[:8])  # load + warm up
    store = MilvusVectorStore(str(tmp / f"{uuid.uuid4().hex}.db"), dimension=embedder.dimension)
    await store.open()
    ws, ns, doc = (str(uuid.uuid4()) for _ in range(3))
    try:
        t = time.perf_counter()
        for s in range(0, len(texts), 64):  # as an ingestion job would: one document's batch
            part = texts[s : s + 64]
            vectors = await embedder.embed_documents(part)
            await store.upsert(
                [
                    VectorRecord(str(uuid.uuid4()), ws, ns, doc, x, v)
                    for x, v in zip(part, vectors, strict=True)
                ]
            )
        rate = len(texts) / (time.perf_counter() - t)
        assert await store.count() == len(texts)
    finally:
        await store.close()
    return rate, embedder.engine


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--append", type=Path)
    args = parser.parse_args()
    texts = chunks(args.repeat)
    base = baseline(texts)
    print(f"baseline encode: {base:.1f} chunks/s, peak RSS {peak_rss_mib():.0f} MiB", flush=True)
    lines = [
        f"{len(texts)} chunks of <= 1000 chars; baseline plain encode: {base:.1f} chunks/s",
        "",
        "| embedder backend | graph | batch | chunks/s (embed + upsert) | vs baseline"
        " | peak RSS (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for backend, batch, traced in VARIANTS:
            rate, graph = await ingest(texts, backend, batch, traced, Path(tmp))
            row = (
                f"| {backend} | {graph} | {batch} | {rate:.1f} | {rate / base:.2f}x"
                f" | {peak_rss_mib():.0f} |"
            )
            print(row, flush=True)
            lines.append(row)
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
