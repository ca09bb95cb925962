"""Ingestion throughput: chunks/s from text to searchable in milvus-lite (embed + upsert).

    .venv/bin/python bench/ingest_throughput.py [--repeat 3] [--append docs/benchmarks.md]

Chunks: the two SQuAD 2.0 dev articles of /work/shared/eval chunked 1000/200 by
``core.ingestion.chunking.chunk_text``, repeated ``--repeat`` times (with a counter so no two
texts are equal). Baseline, in the same run: plain ``SentenceTransformer.encode`` of the same
chunks (default batch size 32, float32), with no store at all, before and after the variants.
Every variant and both baselines run in a process of their own, so each peak RSS is its own. The
bf16 rows run only where the CPU has native bfloat16 (emulated, it is 3x slower than float32).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.ingestion.chunking import chunk_text
from core.retrieval.base import VectorRecord
from core.retrieval.embedder import (
    SentenceTransformerEmbedder,
    auto_backend,
    cpu_has_bf16,
    default_model_path,
)
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


def run_variant(spec: str, repeat: int) -> dict[str, object]:
    """One variant in this process (a child of ``main``): its rate, engine and own peak RSS."""
    texts = chunks(repeat)
    if spec == "baseline":
        return {"rate": baseline(texts), "engine": "encode", "rss": peak_rss_mib()}
    backend, batch, traced = spec.split(":")
    with tempfile.TemporaryDirectory() as tmp:
        rate, engine = asyncio.run(ingest(texts, backend, int(batch), traced == "1", Path(tmp)))
    return {"rate": rate, "engine": engine, "rss": peak_rss_mib()}


def child(spec: str, repeat: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--repeat", str(repeat), "--variant", spec],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--append", type=Path)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one child's variant
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.repeat)))
        return
    native = cpu_has_bf16()
    variants = [v for v in VARIANTS if native or v[0] != "torch-bf16"]
    n = len(chunks(args.repeat))
    # Each variant, and the baseline before and after them, in a process of its own: its peak
    # RSS is its own, and the baseline brackets the machine's speed during the run.
    first = child("baseline", args.repeat)
    print(f"baseline encode: {first['rate']:.1f} chunks/s", flush=True)
    rows = []
    for backend, batch, traced in variants:
        got = child(f"{backend}:{batch}:{int(traced)}", args.repeat)
        rows.append((backend, batch, got))
        print(f"{backend} {got['engine']} batch {batch}: {got['rate']:.1f} chunks/s", flush=True)
    last = child("baseline", args.repeat)
    base = (float(first["rate"]) + float(last["rate"])) / 2  # type: ignore[arg-type]
    lines = [
        f"{n} chunks of <= 1000 chars; CPU flags: auto = {auto_backend()}"
        f"{'' if native else ' (no native bfloat16: the bf16 rows are skipped)'}; baseline"
        f" plain encode {first['rate']:.1f} before and {last['rate']:.1f} chunks/s after the"
        f" variants (mean {base:.1f}; its own peak RSS {first['rss']:.0f} MiB)",
        "",
        "| embedder backend | graph | batch | chunks/s (embed + upsert) | vs baseline"
        " | peak RSS (MiB, own process) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for backend, batch, got in rows:
        rate = float(got["rate"])  # type: ignore[arg-type]
        lines.append(
            f"| {backend} | {got['engine']} | {batch} | {rate:.1f} | {rate / base:.2f}x"
            f" | {got['rss']:.0f} |"
        )
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
