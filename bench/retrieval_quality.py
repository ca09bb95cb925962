"""Retrieval hit@k on two SQuAD 2.0 dev articles: dense, BM25 and hybrid, over store options.

    .venv/bin/python bench/retrieval_quality.py [--append docs/benchmarks.md]

Each article is one document (paragraphs joined by blank lines), chunked as the product does
(``core.ingestion.chunking.chunk_text``, default 1000/200); Milvus gets what ingestion gives it,
``embedding_text(title, section, chunk)`` for the dense vector and the BM25 text. A question is
a hit at k when one of the top-k chunks (their text, without the title line) contains a gold
answer (case-insensitive). "hybrid + rerank" is what ``Retriever.search`` does: the top
``RERANK_DEPTH`` fused candidates reordered by ``SentenceReranker``. Data: SQuAD 2.0
(Rajpurkar, Jia and Liang, 2018), CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from core.ingestion.service import embedding_text
from core.retrieval.base import VectorRecord
from core.retrieval.embedder import SentenceTransformerEmbedder
from core.retrieval.milvus import MilvusVectorStore
from core.retrieval.rerank import SentenceReranker
from core.retrieval.retriever import RERANK_DEPTH

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
KS = (1, 3, 5)


STEM_ANALYZER: dict[str, Any] = {
    "tokenizer": "standard",
    "filter": [
        "lowercase",
        {"type": "stop", "stop_words": ["_english_"]},
        {"type": "stemmer", "language": "english"},
    ],
}
MODES = ("dense", "bm25", "hybrid", "hybrid + rerank")


@dataclass(frozen=True)
class Config:
    name: str
    size: int = 1000
    overlap: int = 200
    analyzer: dict[str, Any] | None = None
    rrf_k: int = 60
    candidates: int = 50


CONFIGS = [
    Config("product: size 1000/200, title line"),
    Config("size 1000/200, title line, stop+stem analyzer", analyzer=STEM_ANALYZER),
    Config("paragraphs, title line", 0, 0),
    Config("size 700/150, title line", 700, 150),
    Config("size 1500/300, title line", 1500, 300),
]


def chunk(text: str, size: int, overlap: int) -> list[tuple[str, str | None]]:
    """(chunk text, section) as ingestion makes them; size 0: one chunk per paragraph."""
    if size == 0:
        return [(p, None) for p in text.split("\n\n") if p.strip()]
    from core.ingestion.chunking import chunk_text

    return [(c.text, c.section) for c in chunk_text(text, size=size, overlap=overlap)]


def load() -> tuple[list[tuple[str, str]], list[tuple[str, list[str]]]]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    docs, questions = [], []
    for article in data["data"]:
        title = article["title"].replace("_", " ")
        docs.append((title, "\n\n".join(p["context"] for p in article["paragraphs"])))
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if not qa.get("is_impossible") and qa["answers"]:
                    questions.append((qa["question"], [a["text"].lower() for a in qa["answers"]]))
    return docs, questions


async def evaluate(
    cfg: Config,
    embedder: SentenceTransformerEmbedder,
    docs: list[tuple[str, str]],
    questions: list[tuple[str, list[str]]],
    qvecs: list[list[float]],
    tmp: Path,
) -> dict[str, Any]:
    ws, ns = str(uuid.uuid4()), str(uuid.uuid4())
    rows: list[tuple[str, str, str]] = []  # (document id, chunk text, embedding/BM25 text)
    for title, text in docs:
        doc_id = str(uuid.uuid4())
        for c, section in chunk(text, cfg.size, cfg.overlap):
            rows.append((doc_id, c, embedding_text(title, section, c)))
    store = MilvusVectorStore(
        str(tmp / f"{uuid.uuid4().hex}.db"),
        dimension=embedder.dimension,
        rrf_k=cfg.rrf_k,
        candidates=cfg.candidates,
        analyzer=cfg.analyzer,
    )
    await store.open()
    try:
        vectors = await embedder.embed_documents([r[2] for r in rows])
        records = [
            VectorRecord(str(uuid.uuid4()), ws, ns, d, stored, v)
            for (d, _, stored), v in zip(rows, vectors, strict=True)
        ]
        await store.upsert(records)
        content = {r.chunk_id: row[1] for r, row in zip(records, rows, strict=True)}
        out: dict[str, Any] = {"config": cfg.name, "chunks": len(rows)}
        reranker, rerank_s = SentenceReranker(), []
        for mode in MODES:
            hits = dict.fromkeys(KS, 0)
            for (q, answers), qv in zip(questions, qvecs, strict=True):
                found = await store.search(
                    query_text=q,
                    query_vector=qv,
                    workspace_id=ws,
                    namespace_ids=[ns],
                    limit=RERANK_DEPTH if mode == "hybrid + rerank" else max(KS),
                    mode=mode.split(" ")[0],
                )
                texts = [content[h.chunk_id] for h in found]
                if mode == "hybrid + rerank":
                    t = time.perf_counter()
                    order = reranker.rerank(q, texts)
                    rerank_s.append(time.perf_counter() - t)
                    texts = [texts[i] for i, _ in order]
                texts = [t.lower() for t in texts]
                for k in KS:
                    hits[k] += any(a in t for t in texts[:k] for a in answers)
            out[mode] = {k: hits[k] / len(questions) for k in KS}
        out["rerank_ms"] = float(np.percentile(rerank_s, 50)) * 1e3
        return out
    finally:
        await store.close()


def table(results: list[dict[str, Any]], n_questions: int) -> str:
    lines = [
        f"{n_questions} answerable questions; hit@1 / hit@3 / hit@5",
        "",
        "| config | chunks | dense | BM25 | hybrid (RRF) | hybrid + rerank | rerank p50 (ms) |",
        "| --- | ---: | --- | --- | --- | --- | ---: |",
    ]
    for r in results:
        cells = [" / ".join(f"{r[m][k]:.3f}" for k in KS) for m in MODES]
        lines.append(
            f"| {r['config']} | {r['chunks']} | " + " | ".join(cells) + f" | {r['rerank_ms']:.1f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--append", type=Path, help="append the table to this markdown file")
    parser.add_argument("--only", type=int, nargs="*", help="indexes of CONFIGS to run")
    parser.add_argument(
        "--backend", default="auto", help="embedder backend (auto, torch, torch-bf16, onnx-int8)"
    )
    parser.add_argument("--eager", action="store_true", help="run the model untraced")
    args = parser.parse_args()
    docs, questions = load()
    embedder = SentenceTransformerEmbedder(backend=args.backend, trace=not args.eager)
    print(f"embedder backend {embedder.backend}, engine {embedder.engine}", flush=True)
    t0 = time.perf_counter()
    qvecs = await embedder.embed_documents([q for q, _ in questions])
    configs = [CONFIGS[i] for i in args.only] if args.only else CONFIGS
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in configs:
            r = await evaluate(cfg, embedder, docs, questions, qvecs, Path(tmp))
            print(r, flush=True)
            results.append(r)
    out = table(results, len(questions))
    print(out)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.append:
        with args.append.open("a", encoding="utf-8") as f:
            f.write(f"\n{out}\n")


if __name__ == "__main__":
    asyncio.run(main())
