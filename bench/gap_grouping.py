"""Gap grouping: do questions about one fact land in one group, and others stay apart?

The SQuAD 2.0 subset (/work/shared/eval; Rajpurkar, Jia and Liang, 2018; CC BY-SA 4.0): two
questions of one paragraph that share a gold answer ask about the same fact; any other pair
asks about different facts. The answerable questions are grouped as `/lore gaps` groups them
(``core.gaps.group_by_meaning`` over the product embedder's vectors) and scored pairwise:

- precision: of the pairs put in one group, the share that ask about the same fact;
- recall: of the same-fact pairs, the share put in one group;
- apart: of the different-fact pairs within one paragraph (the hard ones), the share kept apart.

Baseline in the same run: the same clustering over TF-IDF word vectors, at its best threshold.
The ratio is the product's F1 over the baseline's.

    .venv/bin/python bench/gap_grouping.py [--thresholds 0.5,0.55,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import cpu  # noqa: E402
from core.gaps import DEFAULT_THRESHOLD, group_by_meaning  # noqa: E402

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Asked:
    text: str
    paragraph: int
    answers: frozenset[str]


@dataclass(frozen=True)
class Score:
    threshold: float
    groups: int
    precision: float
    recall: float
    apart: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load() -> list[Asked]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    out, paragraph = [], 0
    for article in data["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if not qa.get("is_impossible"):
                    gold = frozenset(a["text"].strip().lower() for a in qa["answers"])
                    out.append(Asked(qa["question"], paragraph, gold))
            paragraph += 1
    return out


def score(asked: list[Asked], groups: list[list[int]], threshold: float) -> Score:
    label = {i: g for g, members in enumerate(groups) for i in members}
    together = same = same_together = near = near_apart = 0
    for a, b in combinations(range(len(asked)), 2):
        one_group = label[a] == label[b]
        one_fact = asked[a].paragraph == asked[b].paragraph and bool(
            asked[a].answers & asked[b].answers
        )
        together += one_group
        same += one_fact
        same_together += one_group and one_fact
        if asked[a].paragraph == asked[b].paragraph and not one_fact:
            near += 1
            near_apart += not one_group
    return Score(
        threshold,
        len(groups),
        same_together / together if together else 1.0,
        same_together / same if same else 1.0,
        near_apart / near if near else 1.0,
    )


def tfidf(texts: list[str]) -> list[list[float]]:
    docs = [Counter(_WORD.findall(t.lower())) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = {w: i for i, w in enumerate(df)}
    out = []
    for d in docs:
        v = [0.0] * len(vocab)
        for w, n in d.items():
            v[vocab[w]] = n * math.log(len(docs) / df[w])
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        out.append([x / norm for x in v])
    return out


def sweep(asked: list[Asked], vectors: list[list[float]], thresholds: list[float]) -> list[Score]:
    return [score(asked, group_by_meaning(vectors, t), t) for t in thresholds]


async def embed(texts: list[str]) -> tuple[list[list[float]], str, float]:
    from core.retrieval.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    await embedder.embed_documents(texts[:8])  # load the model outside the timing
    started = time.perf_counter()
    vectors = await embedder.embed_documents(texts)
    return vectors, embedder.model_name, time.perf_counter() - started


def table(name: str, scores: list[Score], chosen: float | None) -> list[str]:
    out = []
    for s in scores:
        bold = chosen is not None and math.isclose(s.threshold, chosen)
        cells = [
            f"{name} {s.threshold:.2f}",
            str(s.groups),
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            f"{s.f1:.3f}",
            f"{s.apart:.3f}",
        ]
        if bold:
            cells = [f"**{c}**" for c in cells]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--thresholds", default="0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8", help="to sweep"
    )
    args = parser.parse_args()
    thresholds = sorted({*(float(t) for t in args.thresholds.split(",")), DEFAULT_THRESHOLD})
    asked = load()
    vectors, model, seconds = asyncio.run(embed([a.text for a in asked]))
    started = time.perf_counter()
    product = sweep(asked, vectors, thresholds)
    group_seconds = (time.perf_counter() - started) / len(thresholds)
    baseline = sweep(asked, tfidf([a.text for a in asked]), [t / 2 for t in thresholds])
    best_base = max(baseline, key=lambda s: s.f1)
    chosen = next(s for s in product if math.isclose(s.threshold, DEFAULT_THRESHOLD))
    best = max(product, key=lambda s: s.f1)
    same = sum(
        1 for a, b in combinations(asked, 2) if a.paragraph == b.paragraph and a.answers & b.answers
    )
    model_name, flags = cpu()
    print(f"machine: {model_name}, {os.cpu_count()} CPUs, {flags}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d}; model {model}")
    print(f"{len(asked)} answerable questions, {same} same-fact pairs")
    print(f"embedding {seconds:.2f} s; grouping {group_seconds * 1000:.0f} ms per threshold")
    print("| grouping, threshold | groups | precision | recall | F1 | apart (same paragraph) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in table("embeddings", product, DEFAULT_THRESHOLD) + table("TF-IDF", baseline, None):
        print(row)
    print(
        f"product (threshold {DEFAULT_THRESHOLD}): F1 {chosen.f1:.3f}; best embedding threshold "
        f"{best.threshold} (F1 {best.f1:.3f}); baseline best TF-IDF {best_base.threshold} "
        f"(F1 {best_base.f1:.3f}); ratio {chosen.f1 / best_base.f1:.2f}x"
    )


if __name__ == "__main__":
    main()
