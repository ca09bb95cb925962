"""The offline answerer: the few source sentences that best answer a question, quoted and cited.

Also the small lexical toolkit (sentences, stemmed terms) that prompt and citation code share.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # prompt.py imports this module at runtime; Source is only a type here
    from core.generation.prompt import Source

_STOPWORD_LIST = """\
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having here how i if in into is it its itself just let me
    more most my no nor not of off on once only or other our ours out over own same she he
    her him his should so some such than that the their theirs them then there these they
    this those through to too under until up upon very was we were what when where which
    while who whom whose why will with would you your yours s t d ll ve re m
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_BRACKET_REF = re.compile(r"\s*\[\^?\d+\]")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?:\[\^?\d+\])*\s+")
_BULLET = re.compile(r"\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_ABBREVIATION_LIST = """\
    mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co corp no fig vol approx dept est jan
    feb mar apr jun jul aug sep sept oct nov dec u.s a.m p.m ca cf al gen col lt rev
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
_YEAR_OR_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2}|\d+(st|nd|rd|th)|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|century|centuries|decade)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"hundred|thousand|million|billion|dozen)\b",
    re.IGNORECASE,
)
# Headings, table rows and fenced code are no answer sentences: they are dropped before splitting.
_NOT_PROSE = re.compile(
    r"^ {0,3}#{1,6}[ \t][^\n]*$"  # a heading
    r"|^ {0,3}\|[^\n]*$"  # a table row
    r"|^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$",  # a fenced code block
    re.MULTILINE,
)
_MAX_SENTENCE_CHARS = 600
_K1, _B = 1.2, 0.75
_EXTRA_SENTENCE_RATIO = 0.6  # a further sentence must score this share of the best one
_REDUNDANT_JACCARD = 0.6
_HEADER = "From the sources:"
_EVIDENCE_SATURATION = 0.4
_NEGATIONS = frozenset({"not", "never", "no", "none", "nobody", "nothing", "neither", "nor"})


@dataclass(frozen=True, slots=True)
class ExtractiveResult:
    """Quoted sentences with [n] markers; ``score`` in [0, 1] is the confidence to threshold."""

    text: str
    used_sources: tuple[Source, ...]
    score: float
    # per cited chunk id, its best-scoring quoted sentence: what its citation should quote
    best_sentences: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix stripper so that rule/ruled/rules/ruling meet (not a full Porter).

    Memoised: citation quotes and the reranker stem the same few thousand words over and over,
    and a cache hit costs a tenth of the stripping. Accents are folded first (fiancée and
    fiancee, naïve and naive meet): people type questions without them."""
    word = word.lower().replace("’", "'")
    if not word.isascii():
        word = _fold_accents(word)
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("sses", "ss")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    stripped = word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "su":
                break
            stripped = word[: -len(suffix)]
            break
    doubled = len(stripped) > 3 and stripped[-1] == stripped[-2] and stripped[-1] not in "lsz"
    if stripped != word and doubled:
        stripped = stripped[:-1]
    return stripped.removesuffix("e") if len(stripped) > 3 else stripped


def _fold_accents(word: str) -> str:
    """``word`` without combining marks (é -> e, ü -> u); letters without a base form (ð, ø,
    and every non-Latin script's own letters) stay as they are."""
    decomposed = unicodedata.normalize("NFKD", word)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", folded)


def words(text: str) -> list[str]:
    """The words of ``text`` as written."""
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    """Words that are not stopwords, as written, first occurrence only, in order."""
    seen: set[str] = set()
    result = []
    for word in words(text):
        key = word.lower()
        if key in STOPWORDS or key in seen:
            continue
        seen.add(key)
        result.append(word)
    return result


def terms(text: str) -> list[str]:
    """Stemmed, lower-cased content terms of ``text`` with repeats (for scoring)."""
    return [stem(w) for w in words(text) if w.lower() not in STOPWORDS]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraph breaks and list items split; line wraps do not."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n", _NOT_PROSE.sub("\n\n", text)):
        for item in _BULLET.split(block):
            flat = " ".join(item.split())
            if flat:
                sentences.extend(_split_flat(flat))
    return sentences


def _split_flat(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        following = text[end : end + 1]
        if not following or not (
            # a capital, a digit, a quote, or Markdown code or emphasis (`docs/slack.md` has ...)
            following.isupper() or following.isdigit() or following in "\"'“(`*"
        ):
            continue
        last_word = text[start : match.start() + 1].rsplit(" ", 1)[-1].lower().rstrip(".")
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        pieces.append(text[start:end].strip())
        start = end
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


@dataclass(slots=True)
class _Candidate:
    source_index: int
    position: int
    text: str
    terms: list[str]
    score: float = 0.0
    coverage: float = 0.0
    bigrams: float = 0.0


def _candidates(sources: Sequence[Source]) -> list[_Candidate]:
    found = []
    for index, source in enumerate(sources):
        for position, sentence in enumerate(split_sentences(source.text)):
            sentence_terms = terms(sentence)
            if sentence_terms:
                found.append(_Candidate(index, position, sentence, sentence_terms))
    return found


def _expected_type(question: str) -> re.Pattern[str] | None:
    lowered = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall)\b", lowered):
        return _NUMBER
    if re.search(r"\b(when|what year|which year|what century|what date|what time)\b", lowered):
        return _YEAR_OR_DATE
    return None


def _score_all(question: str, candidates: list[_Candidate], n_sources: int) -> None:
    query = list(dict.fromkeys(terms(question)))
    if not query or not candidates:
        return
    total = len(candidates)
    df = Counter(t for c in candidates for t in set(c.terms))
    idf = {t: math.log(1 + (total - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
    idf_sum = sum(idf.values())
    avg_len = sum(len(c.terms) for c in candidates) / total
    query_bigrams = _bigrams(query) | _bigrams(terms(question))
    expected = _expected_type(question)
    question_words = {w.lower() for w in words(question)}
    best_bm25 = 0.0
    bm25s = []
    for c in candidates:
        tf = Counter(c.terms)
        norm = _K1 * (1 - _B + _B * len(c.terms) / avg_len)
        bm25 = sum(idf[t] * tf[t] * (_K1 + 1) / (tf[t] + norm) for t in query if t in tf)
        bm25s.append(bm25)
        best_bm25 = max(best_bm25, bm25)
        c.coverage = sum(idf[t] for t in query if t in tf) / idf_sum if idf_sum else 0.0
        c.bigrams = (
            len(query_bigrams & _bigrams(c.terms)) / len(query_bigrams) if query_bigrams else 0.0
        )
    for c, bm25 in zip(candidates, bm25s, strict=True):
        typed = 0.0
        if expected is not None:
            found = {m.group(0).lower() for m in expected.finditer(c.text)}
            typed = 0.1 if found - question_words else -0.05
        rank_prior = 0.03 * (1 - c.source_index / max(n_sources, 1))
        relative = bm25 / best_bm25 if best_bm25 else 0.0
        c.score = c.coverage + 0.25 * c.bigrams + 0.2 * relative + typed + rank_prior


def _bigrams(seq: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(seq))


def _select(
    candidates: list[_Candidate], max_sentences: int, expected: re.Pattern[str] | None
) -> list[_Candidate]:
    ranked = sorted(candidates, key=lambda c: (-c.score, c.source_index, c.position))
    if not ranked or ranked[0].coverage <= 0:
        return []
    top = ranked[0]
    # The sentence after the best one often completes it ("... A storm dispersed the
    # fleet."), unless the best one already holds the date or number that was asked for.
    next_too = expected is None or not expected.search(top.text)
    chosen = [top]
    for c in ranked[1:]:
        if len(chosen) >= max_sentences:
            break
        follows = next_too and (c.source_index, c.position) == (top.source_index, top.position + 1)
        if not follows and (c.coverage <= 0 or c.score < _EXTRA_SENTENCE_RATIO * top.score):
            continue
        if all(_jaccard(c.terms, o.terms) < _REDUNDANT_JACCARD for o in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda c: (c.source_index, c.position))


def _jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def _confidence(question: str, best: _Candidate, answer: str, sources: Sequence[Source]) -> float:
    """How likely the quoted sentences answer the question, in [0, 1].

    Lexical evidence saturates (covering ~40% of the question's idf weight already counts
    as on topic); then it is cut for what an answer cannot lack: a name or number of the
    question that no source mentions, the negation the question asks about, or the
    expected answer type (a date for "when", a number for "how many").
    """
    value = min(1.0, (0.75 * best.coverage + 0.25 * best.bigrams) / _EVIDENCE_SATURATION)
    corpus = " ".join(s.text for s in sources).lower()
    question_words = words(question)
    names = [w for i, w in enumerate(question_words) if (i and w[0].isupper()) or _has_digit(w)]
    value *= 0.5 ** sum(w.lower() not in corpus for w in names)
    if _negated(question_words) and not _negated(words(best.text)):
        value *= 0.6
    expected = _expected_type(question)
    if expected is not None and not expected.search(answer):
        value *= 0.8
    return round(min(max(value, 0.0), 1.0), 4)


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _negated(sentence_words: Sequence[str]) -> bool:
    return any(
        w.lower() in _NEGATIONS or w.lower().endswith(("n't", "n’t")) for w in sentence_words
    )


def _clip(sentence: str) -> str:
    sentence = _BRACKET_REF.sub("", sentence).strip()
    if len(sentence) <= _MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:_MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"


def _render(chosen: list[_Candidate], sources: Sequence[Source]) -> str:
    lines: list[str] = []
    previous: _Candidate | None = None
    for c in chosen:
        text = _clip(c.text)
        adjacent = previous is not None and (previous.source_index, previous.position + 1) == (
            c.source_index,
            c.position,
        )
        if adjacent and lines:
            marker = f" [{sources[c.source_index].n}]"
            lines[-1] = f"{lines[-1].removesuffix(marker)} {text}{marker}"
        else:
            lines.append(f"> {text} [{sources[c.source_index].n}]")
        previous = c
    return "\n".join([_HEADER, *lines])


def extractive_answer(
    question: str, sources: Sequence[Source], *, max_sentences: int = 3
) -> ExtractiveResult:
    """Answer with the best supporting sentences of ``sources`` (retrieval order), quoted.

    Sentences are scored by BM25-weighted overlap with the question, idf-weighted keyword
    coverage, shared bigrams and the expected answer type (a date for "when", a number for
    "how many"); retrieval rank breaks ties. Up to ``max_sentences`` non-redundant ones are
    kept in document order, each followed by its source's [n]. Nothing relevant gives an
    empty text and score 0. The work is small (a few chunks); no thread is needed.
    """
    candidates = _candidates(sources)
    _score_all(question, candidates, len(sources))
    chosen = _select(candidates, max(1, max_sentences), _expected_type(question))
    if not chosen:
        return ExtractiveResult("", (), 0.0)
    best = max(chosen, key=lambda c: c.score)
    used = tuple(sources[i] for i in dict.fromkeys(c.source_index for c in chosen))
    text = _render(chosen, sources)
    best_sentences: dict[str, str] = {}
    for c in sorted(chosen, key=lambda c: -c.score):
        best_sentences.setdefault(str(sources[c.source_index].chunk_id), c.text)
    return ExtractiveResult(text, used, _confidence(question, best, text, sources), best_sentences)
