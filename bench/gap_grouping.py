"""Gap grouping: do questions about one fact land in one group, and others stay apart?

Two sets, each grouped as `/lore gaps` groups them (``core.gaps.group_by_meaning`` over the
product embedder's vectors of ``core.gaps.compared_text``) and scored pairwise:

- The team-style set (bench/teamset/): the handbooks' questions (questions.jsonl) and
  rewordings.jsonl, whose rows each say that a question asks the same as one of
  questions.jsonl (``of``): a paraphrase already there (``id``), or a rewording the way people
  ask in chat (``question``: short forms, greetings, a colleague mentioned, other words).
  Questions of one original ask about one fact; every other pair asks about different facts
  (the hardest share a subject: full-time employees' PTO and interns' PTO). Split by handbook:
  hr is the calibration part, on which ``core.gaps``' threshold and floor were chosen; oncall
  and it, grouped together, are held out.
- The SQuAD 2.0 subset (/work/shared/eval; Rajpurkar, Jia and Liang, 2018; CC BY-SA 4.0): two
  questions of one paragraph that share a gold answer ask about the same fact; any other pair
  asks about different facts.

- precision: of the pairs put in one group, the share that ask about the same fact;
- recall: of the same-fact pairs, the share put in one group;
- apart: of the different-fact pairs within one handbook (SQuAD: one paragraph), the share
  kept apart.

Baseline in the same run: the same average-linkage clustering over TF-IDF word vectors of the
questions as asked, its threshold chosen on the calibration part as the product's was; its
best threshold on each part is shown too.

    .venv/bin/python bench/gap_grouping.py [--thresholds -0.1,-0.05,0,...]
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import cpu  # noqa: E402
from core.gaps import (  # noqa: E402
    DEFAULT_THRESHOLD,
    FLOOR,
    NEIGHBOURS,
    GapConfig,
    average_linkage,
    compared_text,
    group_by_meaning,
)

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")
TEAMSET = Path(__file__).resolve().parent / "teamset"
CALIBRATION = ("hr",)
_WORD = re.compile(r"[a-z0-9]+")
FINE = [round(x, 2) for x in np.arange(-0.2, 0.31, 0.01)]  # the product's thresholds fitted
FINE_TFIDF = [round(x, 2) for x in np.arange(0.05, 0.61, 0.01)]
SHOWN_TFIDF = [0.1, 0.2, 0.3, 0.4, 0.5]


@dataclass(frozen=True)
class Asked:
    text: str
    paragraph: int  # SQuAD: its paragraph; the team-style set: its handbook
    answers: frozenset[str]  # SQuAD: its gold answers; the team-style set: its original's id


@dataclass(frozen=True)
class Part:
    name: str
    asked: list[Asked]

    def same_fact(self) -> tuple[np.ndarray, np.ndarray]:
        """Upper-triangle masks: pairs about one fact; different-fact pairs of one paragraph."""
        n = len(self.asked)
        para = np.array([a.paragraph for a in self.asked])
        near = np.triu(para[:, None] == para[None, :], 1)
        same = np.zeros((n, n), dtype=bool)
        for i, j in zip(*np.nonzero(near), strict=True):
            same[i, j] = bool(self.asked[i].answers & self.asked[j].answers)
        return same, near & ~same


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


def load_squad() -> list[Asked]:
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


def load_teamset() -> dict[str, list[Asked]]:
    """Per handbook: its questions and the rewordings of them, each labelled with the id of
    the question it rewords (its own id for an original)."""
    rows = [json.loads(line) for line in (TEAMSET / "questions.jsonl").read_text().splitlines()]
    rewordings = [
        json.loads(line) for line in (TEAMSET / "rewordings.jsonl").read_text().splitlines()
    ]
    original = {r["id"]: r["of"] for r in rewordings if "id" in r}
    handbook = {r["id"]: r["set"] for r in rows}
    names = sorted(set(handbook.values()))
    out: dict[str, list[Asked]] = {name: [] for name in names}
    for r in rows:
        fact = original.get(r["id"], r["id"])
        out[r["set"]].append(Asked(r["question"], names.index(r["set"]), frozenset({fact})))
    for r in rewordings:
        if "question" in r:
            name = handbook[r["of"]]
            out[name].append(Asked(r["question"], names.index(name), frozenset({r["of"]})))
    return out


def score(part: Part, groups: list[list[int]], threshold: float) -> Score:
    same, near = part.same_fact()
    label = np.empty(len(part.asked), dtype=np.int64)
    for g, members in enumerate(groups):
        label[members] = g
    together = np.triu(label[:, None] == label[None, :], 1)
    hits = int((together & same).sum())
    return Score(
        threshold,
        len(groups),
        hits / together.sum() if together.any() else 1.0,
        hits / same.sum() if same.any() else 1.0,
        float((near & ~together).sum() / near.sum()) if near.any() else 1.0,
    )


def tfidf(texts: list[str]) -> np.ndarray:
    docs = [Counter(_WORD.findall(t.lower())) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = {w: i for i, w in enumerate(df)}
    out = np.zeros((len(docs), len(vocab)))
    for k, d in enumerate(docs):
        for w, n in d.items():
            out[k, vocab[w]] = n * math.log(len(docs) / df[w])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out @ out.T


def product_sweep(part: Part, vectors: list[list[float]], thresholds: list[float]) -> list[Score]:
    texts = [a.text for a in part.asked]
    return [
        score(part, group_by_meaning(texts, vectors, GapConfig(threshold=t)), t) for t in thresholds
    ]


def tfidf_sweep(part: Part, thresholds: list[float]) -> list[Score]:
    sim = tfidf([a.text for a in part.asked])
    return [score(part, average_linkage(sim, t), t) for t in thresholds]


async def embed(texts: list[str]) -> tuple[list[list[float]], str, float]:
    from core.retrieval.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    await embedder.embed_documents(texts[:8])  # load the model outside the timing
    started = time.perf_counter()
    vectors = await embedder.embed_documents([compared_text(t) for t in texts])
    return vectors, embedder.model_name, time.perf_counter() - started


def at(scores: list[Score], threshold: float) -> Score:
    return next(s for s in scores if math.isclose(s.threshold, threshold))


def best(scores: list[Score]) -> Score:
    return max(scores, key=lambda s: s.f1)


def row(name: str, s: Score, *, bold: bool = False, note: str = "") -> str:
    cells = [
        f"{name} {s.threshold:.2f}{note}",
        str(s.groups),
        f"{s.precision:.3f}",
        f"{s.recall:.3f}",
        f"{s.f1:.3f}",
        f"{s.apart:.3f}",
    ]
    if bold:
        cells = [f"**{c}**" for c in cells]
    return "| " + " | ".join(cells) + " |"


def neighbour_cosine(vectors: list[list[float]]) -> float:
    """The mean cosine of a question to its NEIGHBOURS nearest others (where FLOOR comes from)."""
    x = np.asarray(vectors)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return float(np.sort(sim, axis=1)[:, -NEIGHBOURS:].mean())


def report(part: Part, vectors: list[list[float]], shown: list[float], tfidf_t: float) -> Score:
    product = product_sweep(part, vectors, sorted({*FINE, *shown}))
    baseline = tfidf_sweep(part, sorted({*FINE_TFIDF, *SHOWN_TFIDF}))
    same, near = part.same_fact()
    print(
        f"\n{part.name}: {len(part.asked)} questions, {int(same.sum())} same-fact pairs, "
        f"{int(near.sum())} different-fact pairs within one handbook or paragraph"
    )
    print("| grouping, threshold | groups | precision | recall | F1 | apart |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for t in shown:
        chosen = math.isclose(t, DEFAULT_THRESHOLD)
        print(row("product", at(product, t), bold=chosen, note=" (default)" if chosen else ""))
    own = best(baseline)
    for t in sorted({*SHOWN_TFIDF, tfidf_t, own.threshold}):
        note = " (chosen on hr)" if math.isclose(t, tfidf_t) else ""
        note += " (best here)" if math.isclose(t, own.threshold) else ""
        print(row("TF-IDF", at(baseline, t), note=note))
    mine, fair = at(product, DEFAULT_THRESHOLD), at(baseline, tfidf_t)
    print(
        f"product F1 {mine.f1:.3f}; TF-IDF at hr's threshold {fair.f1:.3f} "
        f"({mine.f1 / max(fair.f1, 1e-9):.2f}x), at its best here {own.f1:.3f} "
        f"({mine.f1 / max(own.f1, 1e-9):.2f}x); product's best here {best(product).f1:.3f} "
        f"at {best(product).threshold:.2f}"
    )
    return best(product)


def timing(texts: list[str], vectors: list[list[float]]) -> float:
    started = time.perf_counter()
    for _ in range(3):
        group_by_meaning(texts, vectors)
    return (time.perf_counter() - started) / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="-0.1,-0.05,0,0.05,0.1,0.15,0.2", help="shown")
    args = parser.parse_args()
    shown = sorted({*(round(float(t), 2) for t in args.thresholds.split(",")), DEFAULT_THRESHOLD})
    team = load_teamset()
    parts = [
        Part("team-style, calibration (hr)", [a for n in CALIBRATION for a in team[n]]),
        Part(
            "team-style, held out (oncall and it)",
            [a for n in sorted(team) if n not in CALIBRATION for a in team[n]],
        ),
        Part("SQuAD subset", load_squad()),
    ]
    texts = [a.text for p in parts for a in p.asked]
    vectors, model, seconds = asyncio.run(embed(texts))
    spans, start = [], 0
    for p in parts:
        spans.append(vectors[start : start + len(p.asked)])
        start += len(p.asked)
    calibration = parts[0]
    fitted = best(product_sweep(calibration, spans[0], FINE))
    tfidf_t = best(tfidf_sweep(calibration, FINE_TFIDF)).threshold
    model_name, flags = cpu()
    print(f"machine: {model_name}, {os.cpu_count()} CPUs, {flags}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d}; model {model}")
    print(
        f"config: threshold {DEFAULT_THRESHOLD}, neighbours {NEIGHBOURS}, floor {FLOOR}; on hr "
        f"the best threshold is {fitted.threshold:.2f} (F1 {fitted.f1:.3f}) and a question's "
        f"mean cosine to its {NEIGHBOURS} nearest is {neighbour_cosine(spans[0]):.3f}; "
        f"TF-IDF's best threshold on hr {tfidf_t:.2f}"
    )
    print(
        f"embedding {len(texts)} questions {seconds:.2f} s; grouping {len(texts)} questions "
        f"{timing(texts, vectors) * 1000:.0f} ms, {len(spans[2])} "
        f"{timing([a.text for a in parts[2].asked], spans[2]) * 1000:.0f} ms"
    )
    for part, vecs in zip(parts, spans, strict=True):
        report(part, vecs, shown, tfidf_t)


if __name__ == "__main__":
    main()
