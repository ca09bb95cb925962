"""Citation quotes: does the quote under a source hold the answer the claim cites it for?

    .venv/bin/python bench/citation_quotes.py

Every citation shows a short quote of its chunk (``citations.best_quote``): the sentence that
best matches the answer sentence that cites it, cut to ``QUOTE_CHARS``. On the 293 answerable
questions of the two SQuAD 2.0 dev articles (Rajpurkar, Jia and Liang, 2018; CC BY-SA 4.0),
chunked as ingestion chunks them, the claim is written the way a model writes an answer
sentence: the question's words and the gold answer ("When were the Normans in Normandy: 10th
and 11th centuries."). The cited chunk is the first chunk holding the answer. A quote is
right when it holds the answer (case-insensitive).

Also checked: in extractive mode the claim is a sentence of the chunk itself, and its quote
must be that sentence ("self-quotes").

Baseline in the same run: a simpler rule (the sentence sharing the most distinct terms with
the claim, the window holding the most of them).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.generation.citations import QUOTE_CHARS, best_quote
from core.ingestion.chunking import chunk_text
from core.text import split_sentences, terms

DATA = Path("/work/shared/eval/squad-v2-dev-2-articles.json")

Quote = Callable[[str, str], str]


def baseline_quote(source_text: str, claim: str, limit: int = QUOTE_CHARS) -> str:
    """The baseline rule: most distinct shared terms; window with most matches."""
    sentences = split_sentences(source_text)
    if not sentences:
        return ""
    wanted = set(terms(claim))
    best = max(sentences, key=lambda s: len(wanted.intersection(terms(s))))
    best = re.sub(r"\s*\[\^?\d+\]", "", best).strip()
    if len(best) <= limit:
        return best
    hits = [m.start() for m in re.finditer(r"[^\W_]+", best) if wanted.intersection(terms(m[0]))]
    start = max(hits or [0], key=lambda p: sum(p <= q < p + limit - 30 for q in hits))
    start = best.rfind(" ", 0, max(start - 20, 0)) + 1 if start > 30 else 0
    piece = best[start : start + limit]
    if start + limit < len(best):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return ("… " if start else "") + piece.strip()


def cases() -> list[tuple[str, str, str]]:
    """(cited chunk, claim, gold answer) per answerable question."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    out = []
    for article in data["data"]:
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        chunks = [c.text for c in chunk_text(text)]
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                answer = qa["answers"][0]["text"]
                chunk = next((c for c in chunks if answer.lower() in c.lower()), None)
                if chunk is not None:
                    out.append((chunk, f"{qa['question'].rstrip('?')}: {answer}.", answer))
    return out


def score(quote: Quote, found: list[tuple[str, str, str]]) -> tuple[int, int, int, float]:
    t0 = time.perf_counter()
    right = sum(answer.lower() in quote(chunk, claim).lower() for chunk, claim, answer in found)
    elapsed = time.perf_counter() - t0
    chunks = {chunk for chunk, _, _ in found}
    sentences = [(c, s) for c in chunks for s in split_sentences(c) if terms(s)]
    selfq = sum(quote(c, s).removeprefix("… ")[:40] in s for c, s in sentences)
    return right, selfq, len(sentences), elapsed / len(found) * 1e6


def main() -> None:
    found = cases()
    print(f"{len(found)} claims; quotes of at most {QUOTE_CHARS} characters\n")
    print("| rule | quote holds the answer | extractive self-quotes | per quote |")
    print("| --- | ---: | ---: | ---: |")
    results = {}
    for name, fn in (("baseline (most shared terms)", baseline_quote), ("best_quote", best_quote)):
        right, selfq, n_sentences, us = score(fn, found)
        results[name] = right
        print(
            f"| {name} | {right}/{len(found)} = {right / len(found):.3f} "
            f"| {selfq}/{n_sentences} | {us:.0f} µs |"
        )
    base, new = results.values()
    print(f"\nratio to baseline: {new / base:.3f}x")


if __name__ == "__main__":
    main()
