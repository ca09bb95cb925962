"""Hybrid search latency on milvus-lite against exact NumPy brute force, synthetic chunks.

    .venv/bin/python bench/retrieval_latency.py [--sizes 20000 100000] [--index FLAT]
        [--queries 200] [--append docs/benchmarks.md]

Chunks: 2 workspaces x 4 namespaces, 60 words each from a 5,000-word vocabulary (Zipf-like),
unit 384-d vectors clustered round 2,000 centres (``--vectors random``: no clusters). Each
query: one hybrid search (dense + BM25, RRF) filtered to one workspace and one namespace, top
``--limit`` (20), then each leg alone. Baseline: exact dense top 5 by NumPy over the same
vectors of that namespace; the dense leg's recall@5 is measured against it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.retrieval.base import VectorRecord
from core.retrieval.milvus import MilvusVectorStore

DIM = 384


def corpus(n: int, rng: random.Random) -> tuple[list[str], list[int]]:
    vocab = [f"w{i}" for i in range(5000)]
    weights = [1 / (i + 1) for i in range(5000)]
    texts = [" ".join(rng.choices(vocab, weights, k=60)) for _ in range(n)]
    return texts, [rng.randrange(8) for _ in range(n)]


def vectors(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        vecs = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        centres = rng.standard_normal((2000, DIM), dtype=np.float32)
        noise = rng.standard_normal((n, DIM), dtype=np.float32) * 0.6
        vecs = centres[rng.integers(0, 2000, n)] + noise
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def queries(vecs: np.ndarray, count: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        qv = rng.standard_normal((count, DIM), dtype=np.float32)
    else:
        qv = (
            vecs[rng.integers(0, len(vecs), count)]
            + rng.standard_normal((count, DIM), dtype=np.float32) * 0.05
        )
    return qv / np.linalg.norm(qv, axis=1, keepdims=True)


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


async def run(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    rng = random.Random(n)
    nprng = np.random.default_rng(n)
    texts, groups = corpus(n, rng)
    vecs = vectors(n, args.vectors, nprng)
    workspaces = [str(uuid.uuid4()) for _ in range(2)]
    namespaces = [str(uuid.uuid4()) for _ in range(8)]  # namespace g lives in workspace g % 2
    store = MilvusVectorStore(
        str(tmp / f"lat{n}.db"),
        dimension=DIM,
        index_type=args.index,
        nlist=args.nlist,
        nprobe=args.nprobe,
    )
    t0 = time.perf_counter()
    await store.open()
    records = [
        VectorRecord(
            str(uuid.uuid4()),
            workspaces[g % 2],
            namespaces[g],
            str(uuid.uuid4()),
            texts[i],
            vecs[i].tolist(),
        )
        for i, g in enumerate(groups)
    ]
    for s in range(0, n, 5000):
        await store.upsert(records[s : s + 5000])
    if args.flush:
        await store.flush()
    build = time.perf_counter() - t0
    group_arr = np.array(groups)
    qs = [
        (rng.randrange(8), " ".join(rng.sample(texts[rng.randrange(n)].split(), 4)))
        for _ in range(args.queries)
    ]
    qv = queries(vecs, args.queries, args.vectors, nprng)
    lat, brute, agree = [], [], 0.0
    legs: dict[str, list[float]] = {"dense": [], "bm25": []}
    for warm in range(5):  # warm-up
        g, text = qs[warm]
        await store.search(
            query_text=text,
            query_vector=qv[warm].tolist(),
            workspace_id=workspaces[g % 2],
            namespace_ids=[namespaces[g]],
        )
    for i, (g, text) in enumerate(qs):
        for mode, into in (("hybrid", lat), ("dense", legs["dense"]), ("bm25", legs["bm25"])):
            t = time.perf_counter()
            await store.search(
                query_text=text,
                query_vector=qv[i].tolist(),
                workspace_id=workspaces[g % 2],
                namespace_ids=[namespaces[g]],
                limit=args.limit,
                mode=mode,
            )
            into.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = np.flatnonzero(group_arr == g)
        top = rows[np.argsort(-(vecs[rows] @ qv[i]))[:5]]
        brute.append(time.perf_counter() - t)
        dense = await store.search(
            query_text=text,
            query_vector=qv[i].tolist(),
            mode="dense",
            workspace_id=workspaces[g % 2],
            namespace_ids=[namespaces[g]],
        )
        ids = {records[j].chunk_id for j in top}
        agree += len(ids & {h.chunk_id for h in dense}) / 5
    await store.close()
    return {
        "n": n,
        "build_s": build,
        "p50": pct(lat, 50) * 1e3,
        "p99": pct(lat, 99) * 1e3,
        "np_p50": pct(brute, 50) * 1e3,
        "dense_p50": pct(legs["dense"], 50) * 1e3,
        "bm25_p50": pct(legs["bm25"], 50) * 1e3,
        "recall": agree / args.queries,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20000, 100000])
    parser.add_argument("--index", default="FLAT")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--vectors", choices=("clustered", "random"), default="clustered")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--append", type=Path)
    parser.add_argument("--flush", action="store_true", help="seal segments after loading")
    args = parser.parse_args()
    index = args.index
    if index == "IVF_FLAT":
        index += f" (nlist {args.nlist}, nprobe {args.nprobe})"
    lines = [
        f"dense index {index}{', flushed' if args.flush else ''}; {args.vectors} vectors;"
        f" {args.queries} queries; 1 namespace of 8 per query; top {args.limit}",
        "",
        "| chunks | build (s) | hybrid p50 (ms) | hybrid p99 (ms) | dense leg p50 | BM25 leg p50 |"
        " NumPy dense p50 (ms) | hybrid/NumPy p50 | dense recall@5 vs exact |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            r = await run(n, args, Path(tmp))
            print(r, flush=True)
            lines.append(
                f"| {n} | {r['build_s']:.1f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                f"{r['dense_p50']:.2f} | {r['bm25_p50']:.2f} | {r['np_p50']:.2f} | "
                f"{r['p50'] / r['np_p50']:.1f}x | {r['recall']:.3f} |"
            )
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
