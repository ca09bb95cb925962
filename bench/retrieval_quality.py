"""Retrieval hit@k on two SQuAD 2.0 dev articles: dense, BM25 and hybrid, over store options.

    .venv/bin/python bench/retrieval_quality.py [--append docs/benchmarks.md]

Each article is one document (paragraphs joined by blank lines), chunked by
``core.ingestion.chunking.chunk_text``; a question is a hit at k when one of the top-k chunks
contains a gold answer (case-insensitive). Data: SQuAD 2.0 (Rajpurkar, Jia and Liang, 2018),
CC BY-SA 4.0.
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

from core.retrieval.base import VectorRecord
from core.retrieval.embedder import SentenceTransformerEmbedder
from core.retrieval.milvus import MilvusVectorStore

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
KS = (1, 3, 5)


@dataclass(frozen=True)
class Config:
    name: str
    size: int = 1000
    overlap: int = 200
    title: bool = False
    analyzer: str | None = None
    rrf_k: int = 60
    candidates: int = 50


CONFIGS = [
    Config("size 1000/200"),
    Config("size 1000/200 + title", title=True),
    Config("size 1000/200 + title, english analyzer", title=True, analyzer="english"),
    Config("size 500/100 + title, english analyzer", 500, 100, True, "english"),
    Config("size 700/150 + title, english analyzer", 700, 150, True, "english"),
    Config("paragraphs", 0, 0),
    Config("paragraphs + title", 0, 0, title=True),
    Config("size 1500/300 + title", 1500, 300, title=True),
    Config("size 1000/200 + title, english, rrf k=20", title=True, analyzer="english", rrf_k=20),
    Config(
        "size 1000/200 + title, english, cand 20", title=True, analyzer="english", candidates=20
    ),
]


def chunk(text: str, size: int, overlap: int) -> list[str]:
    if size == 0:  # one chunk per paragraph
        return [p for p in text.split("\n\n") if p.strip()]
    try:
        from core.ingestion.chunking import chunk_text
    except ImportError:  # the chunker is not there yet: paragraphs
        return [p for p in text.split("\n\n") if p.strip()]
    return [c.text for c in chunk_text(text, size=size, overlap=overlap)]


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
    rows: list[tuple[str, str, str]] = []  # (document id, stored text, embedded text)
    for title, text in docs:
        doc_id = str(uuid.uuid4())
        for c in chunk(text, cfg.size, cfg.overlap):
            rows.append((doc_id, c, f"{title}\n\n{c}" if cfg.title else c))
    analyzer = {"type": cfg.analyzer} if cfg.analyzer else None
    store = MilvusVectorStore(
        str(tmp / f"{uuid.uuid4().hex}.db"),
        dimension=embedder.dimension,
        rrf_k=cfg.rrf_k,
        candidates=cfg.candidates,
        analyzer=analyzer,
    )
    await store.open()
    try:
        vectors = await embedder.embed_documents([r[2] for r in rows])
        await store.upsert(
            [
                VectorRecord(str(uuid.uuid4()), ws, ns, d, text, v)
                for (d, text, _), v in zip(rows, vectors, strict=True)
            ]
        )
        out: dict[str, Any] = {"config": cfg.name, "chunks": len(rows)}
        for mode in ("dense", "bm25", "hybrid"):
            hits = dict.fromkeys(KS, 0)
            for (q, answers), qv in zip(questions, qvecs, strict=True):
                found = await store.search(
                    query_text=q,
                    query_vector=qv,
                    workspace_id=ws,
                    namespace_ids=[ns],
                    limit=max(KS),
                    mode=mode,
                )
                texts = [h.text.lower() for h in found]
                for k in KS:
                    hits[k] += any(a in t for t in texts[:k] for a in answers)
            out[mode] = {k: hits[k] / len(questions) for k in KS}
        return out
    finally:
        await store.close()


def table(results: list[dict[str, Any]], n_questions: int) -> str:
    lines = [
        f"{n_questions} answerable questions; hit@1 / hit@3 / hit@5",
        "",
        "| config | chunks | dense | BM25 | hybrid (RRF) |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for r in results:
        cells = [" / ".join(f"{r[m][k]:.3f}" for k in KS) for m in ("dense", "bm25", "hybrid")]
        lines.append(f"| {r['config']} | {r['chunks']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--append", type=Path, help="append the table to this markdown file")
    parser.add_argument("--only", type=int, nargs="*", help="indexes of CONFIGS to run")
    args = parser.parse_args()
    docs, questions = load()
    embedder = SentenceTransformerEmbedder()
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
