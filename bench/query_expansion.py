"""Query expansion mined from a corpus' own text: abbreviations and co-occurring terms
(options of bench/vocabulary.py; not in the product, see docs/benchmarks.md).

A question asked in a team's own shorthand ("PTO", "IC") or in words that sit next to the
corpus' words ("page" beside "acknowledge") does not share the words of the passage that
answers it. Two tables built from the chunk texts bridge part of that gap:

- ``Abbreviations``: "paid time off (PTO)", "PTO (paid time off)" (the short form's letters
  found in order in the long form, each word of it starting with one: Schwartz and Hearst,
  2003) and the acronym of a run of capitalised words ("Jira Service Management" -> JSM).
  A query that holds one form gains the other.
- ``Cooccurrence``: pointwise mutual information of stemmed terms over sentence windows; a
  query gains the few terms that co-occur most strongly with its own.

The expanded words are surface forms as the corpus writes them (the BM25 analyzer of the
store does not stem).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from core.text import STOPWORDS, split_sentences, stem, terms, words

_PAREN = re.compile(r"\(([^()]{1,80})\)")
_SHORT = re.compile(r"^[A-Za-z][A-Za-z0-9&-]{1,9}$")
_CAPITALISED = re.compile(r"\b(?:[A-Z][a-z]+[ \t]+){1,4}[A-Z][a-z]+\b")


@dataclass
class Abbreviations:
    """Short form (lower case) -> long forms as written, and back."""

    long_forms: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def mine(cls, texts: Iterable[str]) -> Abbreviations:
        """Every abbreviation the texts define (see the module's docstring)."""
        found = cls()
        for text in texts:
            flat = " ".join(text.split())
            for match in _PAREN.finditer(flat):
                inside = match.group(1).strip()
                before = words(flat[: match.start()])
                if _SHORT.match(inside) and _has_capital(inside):
                    long_form = _long_form(inside, before[-(len(inside) + 3) :])
                    if long_form:
                        found.add(inside, long_form)
                elif before and _SHORT.match(before[-1]) and _has_capital(before[-1]):
                    long_form = _long_form(before[-1], words(inside))
                    if long_form and long_form.split()[0] == words(inside)[0]:
                        found.add(before[-1], long_form)
            for match in _CAPITALISED.finditer(text):
                phrase = match.group()
                before = text[: match.start()].rstrip(" \t")
                # a name runs inside a sentence: a heading or a sentence's first word is not one
                if (
                    before
                    and before[-1] not in ".!?:\n#"
                    and not STOPWORDS & set(phrase.lower().split())
                ):
                    found.add("".join(w[0] for w in phrase.split()), phrase)
        return found

    def add(self, short: str, long_form: str) -> None:
        self.long_forms.setdefault(short.lower(), set()).add(long_form)

    def expand(self, query: str) -> list[str]:
        """Words to add to ``query``: the long forms of its abbreviations and the short forms
        of the long forms it spells out. A lower-case query word counts as an abbreviation
        only when it is no stopword ("it" is not IT)."""
        query_words = words(query)
        lowered = " ".join(w.lower() for w in query_words)
        out: list[str] = []
        for word in query_words:
            key = word.lower()
            if key in self.long_forms and (word.isupper() or key not in STOPWORDS):
                for long_form in sorted(self.long_forms[key]):
                    out.extend(w.lower() for w in words(long_form))
        for short, long_forms in self.long_forms.items():
            if any(f" {lf.lower()} " in f" {lowered} " for lf in long_forms):
                out.append(short)
        seen = {w.lower() for w in query_words}
        return [w for w in dict.fromkeys(out) if w not in seen]


def _has_capital(word: str) -> bool:
    return any(c.isupper() for c in word)


def _long_form(short: str, candidates: Sequence[str]) -> str | None:
    """The shortest tail of ``candidates`` (words before or inside the parentheses) whose
    words start with the short form's letters in order, Schwartz-Hearst style: every word of
    it is used, and the first letter of the short form starts the first word."""
    letters = [c.lower() for c in short if c.isalnum()]
    for size in range(1, min(len(candidates), len(letters) + 2) + 1):
        tail = candidates[-size:] if size <= len(candidates) else candidates
        if tail[0].lower() in STOPWORDS:
            continue
        if _spells(letters, [w.lower() for w in tail]):
            return " ".join(tail)
    return None


def _spells(letters: list[str], tail: list[str]) -> bool:
    """Whether ``tail`` spells ``letters``: each word contributes its first letter, then
    possibly more of its letters in order; stopwords may contribute nothing."""
    if not letters:
        return all(w in STOPWORDS for w in tail)
    if not tail:
        return False
    word, rest = tail[0], tail[1:]
    if word in STOPWORDS and _spells(letters, rest):
        return True
    if word[0] != letters[0]:
        return False
    # the word covers letters[0:n] for some n >= 1, those after the first found in order in it
    taken, pos = 1, 1
    options = [1]
    while taken < len(letters):
        found = word.find(letters[taken], pos)
        if found < 0:
            break
        taken, pos = taken + 1, found + 1
        options.append(taken)
    return any(_spells(letters[n:], rest) for n in reversed(options))


@dataclass
class Cooccurrence:
    """Stemmed terms that share sentences, scored by PMI, with each stem's commonest surface
    word (the words the BM25 analyzer matches)."""

    windows: int = 0
    df: Counter[str] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    surface: dict[str, str] = field(default_factory=dict)

    @classmethod
    def mine(cls, texts: Iterable[str]) -> Cooccurrence:
        """Count terms and term pairs over the sentences of ``texts``."""
        found = cls()
        spelled: dict[str, Counter[str]] = {}
        for text in texts:
            for sentence in split_sentences(text):
                for word in words(sentence):
                    key = word.lower()
                    if key not in STOPWORDS:
                        spelled.setdefault(stem(key), Counter())[key] += 1
                unique = sorted(set(terms(sentence)))
                found.windows += 1
                found.df.update(unique)
                found.pairs.update(combinations(unique, 2))
        found.surface = {s: c.most_common(1)[0][0] for s, c in spelled.items()}
        return found

    def expand(
        self, query: str, *, top: int = 3, min_pairs: int = 2, max_share: float = 0.1
    ) -> list[str]:
        """Up to ``top`` surface words that co-occur in at least ``min_pairs`` sentences with
        a query term, by their best PMI with one; never the query's own terms, numbers, or
        terms in more than ``max_share`` of the sentences."""
        own = set(terms(query))
        best: dict[str, float] = {}
        n = max(self.windows, 1)
        for (a, b), together in self.pairs.items():
            if together < min_pairs or (a in own) == (b in own):
                continue
            other = b if a in own else a
            if not other.isalpha() or self.df[other] > n * max_share:
                continue
            pmi = math.log(together * n / (self.df[a] * self.df[b]))
            if pmi > best.get(other, 0.0):
                best[other] = pmi
        chosen = sorted(best, key=lambda t: (-best[t], t))[:top]
        return [self.surface.get(t, t) for t in chosen]
