"""The offline answerer: the source sentence that best answers a question, quoted and cited,
with a second only when it may hold what the first lacks.
(Words, stems and sentences come from ``core.text``; a tabular source's rows and objects,
answered with their relevant fields, from ``core.generation.records``.)"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.generation.base import Source
from core.generation.records import Record, relevant_fields, render, split_records
from core.text import PRONOUN_I, has_digit, split_paragraphs, terms, unknown_names, words

_BRACKET_REF = re.compile(r"\s*\[\^?\d+\]")
# What answers "when" (and "how soon", "how often"): a year or a date, and in a team's
# documents a weekday, a clock time, a frequency or a span of time ("within five working days",
# "stable for one hour").
_COUNT = r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|thirty)"
_YEAR_OR_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2}|\d+(st|nd|rd|th)|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|century|centuries|decade|"
    r"mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|saturdays?|sundays?|"
    r"\d{1,2}:\d{2}|\d{1,2} ?[ap]\.?m\b\.?|noon|midnight|"
    r"daily|weekly|monthly|quarterly|yearly|annually|"
    rf"{_COUNT} (?:(?:working|business|calendar) )?(?:minute|hour|day|week|month|year)s?)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"hundred|thousand|million|billion|dozen)\b",
    re.IGNORECASE,
)
_MAX_SENTENCE_CHARS = 600
# A quoted sentence longer than _LONG_SENTENCE keeps the clauses from the first of the
# question's words to the last and _CLAUSE_SLACK characters on either side, to a clause break.
_LONG_SENTENCE = 200
_CLAUSE_SLACK = 40
_CLAUSE_BREAK = re.compile(r"(?:[,;:]| [—–]) ")
_WORD = re.compile(r"[^\W_]+")
_K1, _B = 1.2, 0.75
_REDUNDANT_JACCARD = 0.6
# A sentence scoring within _NEAR_TIE of the best is quoted with it: the scores cannot tell
# the two apart, and either may hold the answer. A best sentence with at most _THIN_LEAD
# words beyond the question's names the topic, not the answer. Tuned on
# bench/answer_quality.py (median answer length against correct and cited).
_NEAR_TIE = 0.25
_THIN_LEAD = 1
# A best sentence chosen by its meaning more than its words (it holds at most _PAIR_COVERAGE
# of the question's terms, idf-weighted: a paraphrase) brings the other sentence of its
# paragraph when that paragraph is two short sentences (_PAIR_CHARS together): which of the
# two answers is what the scores cannot tell ("start a war room for an outage" is nearest to
# "The bot opens a dedicated channel...", and the sentence before it says to type /incident).
_PAIR_COVERAGE = 0.3
_PAIR_CHARS = 200
# The next sentence goes on with the best one ("It was commissioned by Odo.") when it opens
# with one of these and shares a question term, or is short.
_CONTINUATIONS = frozenset(
    {"it", "its", "this", "these", "such", "they", "their", "he", "she", "but"}
)
_SHORT_SENTENCE = 60
_EVIDENCE_SATURATION = 0.4
# The sentence's dense cosine to the question joins its lexical score with this weight, and a
# sentence that shares no term with the question may still answer when its cosine reaches
# _DENSE_ALONE (a paraphrase); both tuned on bench/answer_quality.py's calibration split.
DENSE_WEIGHT = 1.0
_DENSE_ALONE = 0.35
# ... or _DENSE_TYPED when it holds what the question expects ("When does my expense money
# hit my bank account?": "Approved claims are paid ... on the 25th of each month.", 0.31).
_DENSE_TYPED = 0.3
_NEGATIONS = frozenset({"not", "never", "no", "none", "nobody", "nothing", "neither", "nor"})


@dataclass(frozen=True, slots=True)
class Support:
    """How the best sentence supports the question: the lexical evidence the abstention gate
    (``core.generation.gate``) weighs, each in [0, 1] unless said otherwise."""

    coverage: float  # idf-weighted share of the question's content terms in the sentence
    bigrams: float  # share of the question's term bigrams in the sentence
    dense: float  # the sentence's dense cosine to the question (0 when not given)
    bm25: float  # the sentence's BM25 over the question's idf sum (about 0 to 2.2)
    names: float  # share of the question's names, numbers and dates in the sentence (1: none)
    typed: float  # 1 the expected answer type (a number, a date) is there, 0 not, 0.5 no type
    negation_kept: bool  # the question's negation (if any) is in what is quoted of its passage
    source_index: int  # which source (retrieval order) holds the sentence
    unknown_names: tuple[str, ...] = ()  # the question's names and years no source mentions


@dataclass(frozen=True, slots=True)
class ExtractiveResult:
    """Quoted sentences with [n] markers; ``score`` in [0, 1] is the confidence to threshold."""

    text: str
    used_sources: tuple[Source, ...]
    score: float
    # per cited chunk id, its best-scoring quoted sentence: what its citation should quote
    best_sentences: dict[str, str] = field(default_factory=dict)
    support: Support | None = None
    # per source (retrieval order), its best sentence's score; () when nothing was relevant
    source_scores: tuple[float, ...] = ()


@dataclass(slots=True)
class _Candidate:
    source_index: int
    position: int
    text: str
    terms: list[str]
    score: float = 0.0
    coverage: float = 0.0
    bigrams: float = 0.0
    bm25: float = 0.0
    dense: float = 0.0
    lexical: float = 0.0  # the score without the dense cosine
    record: Record | None = None  # a CSV row or JSON object, answered by its fields
    paragraph: tuple[int, int] = (0, 1)  # its paragraph's number in the source, its sentences
    asks: bool = False  # a question ("Need new software?"): it stands for the next sentence
    typed: bool = False  # it holds the answer type the question expects (a date for "when")
    shown: str = ""  # what the answer quotes of it

    @property
    def relevant(self) -> bool:
        if self.typed:
            return self.coverage > 0 or self.dense >= _DENSE_TYPED
        return self.coverage > 0 or self.dense >= _DENSE_ALONE


def _candidates(sources: Sequence[Source], dense: Mapping[str, float]) -> list[_Candidate]:
    found = []
    for index, source in enumerate(sources):
        for position, (text, record, paragraph) in enumerate(_pieces(source.text)):
            sentence_terms = terms(text)
            if sentence_terms:
                c = _Candidate(index, position, text, sentence_terms, record=record)
                c.paragraph = paragraph
                c.asks = record is None and _asks(text)
                c.dense = dense.get(text, 0.0) if record is None else _record_dense(text, dense)
                found.append(c)
    return found


def _asks(sentence: str) -> bool:
    return sentence.rstrip(" \t\n\"')]*_").endswith("?")


def _pieces(text: str) -> list[tuple[str, Record | None, tuple[int, int]]]:
    """A source's sentences; a tabular source's records, each whole, and its other text's
    sentences, in order; each with its paragraph (its number in the source, its sentences)."""
    table = split_records(text)
    items: list[str | Record] = [text] if table is None else list(table)
    pieces: list[tuple[str, Record | None, tuple[int, int]]] = []
    paragraph = 0
    for item in items:
        if isinstance(item, Record):
            pieces.append((item.text, item, (paragraph, 1)))
            paragraph += 1
            continue
        for sentences in split_paragraphs(item):
            pieces.extend((sentence, None, (paragraph, len(sentences))) for sentence in sentences)
            paragraph += 1
    return pieces


def _record_dense(text: str, dense: Mapping[str, float]) -> float:
    """A record's cosine: that of the stored sentence that holds it (the sentence splitter
    runs a chunk's rows together), or of those it holds."""
    flat = " ".join(text.split())
    return max((d for s, d in dense.items() if flat in s or s in flat), default=0.0)


# "when" asks for a time where it opens the question or a clause of it, or follows a verb of
# knowing ("do you know when"); not in "Can I take my laptop home when I leave?".
_ASKS_WHEN = re.compile(
    r"(?:^\W*|[,;:]\s*|\b(?:and|but|so|since|until|know|tell me|say|find out|remind me) )when\b"
)


def _expected_type(question: str) -> re.Pattern[str] | None:
    lowered = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall)\b", lowered):
        return _NUMBER
    if _ASKS_WHEN.search(lowered) or re.search(
        r"\b(what year|which year|what century|what date|what time|how soon|how often)\b",
        lowered,
    ):
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
        c.bm25 = bm25 / idf_sum if idf_sum else 0.0
        c.coverage = sum(idf[t] for t in query if t in tf) / idf_sum if idf_sum else 0.0
        c.bigrams = (
            len(query_bigrams & _bigrams(c.terms)) / len(query_bigrams) if query_bigrams else 0.0
        )
    for c, bm25 in zip(candidates, bm25s, strict=True):
        typed = 0.0
        if expected is not None:
            found = {m.group(0).lower() for m in expected.finditer(c.text)}
            typed = 0.1 if found - question_words else -0.05
            c.typed = typed > 0
        rank_prior = 0.03 * (1 - c.source_index / max(n_sources, 1))
        relative = bm25 / best_bm25 if best_bm25 else 0.0
        c.lexical = c.coverage + 0.25 * c.bigrams + 0.2 * relative + typed + rank_prior
        c.score = c.lexical + DENSE_WEIGHT * c.dense
        c.asks = c.asks and typed <= 0  # a question may hold the value asked for (a number)
    _answered_by_the_next(candidates)


def _answered_by_the_next(candidates: list[_Candidate]) -> None:
    """A question in a source ("Need new software?", a saved thread's first post) matches
    what is asked but answers nothing: the sentence after it, its answer, takes on its match
    (the best of the two for each measure), and the question is never quoted as the best."""
    previous: _Candidate | None = None
    for c in candidates:
        if previous is not None and previous.asks and previous.source_index == c.source_index:
            c.coverage = max(c.coverage, previous.coverage)
            c.bigrams = max(c.bigrams, previous.bigrams)
            c.bm25 = max(c.bm25, previous.bm25)
            c.lexical = max(c.lexical, previous.lexical)
            c.score = max(c.score, previous.score)
        previous = c


def _bigrams(seq: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(seq))


def _select(
    candidates: list[_Candidate],
    max_sentences: int,
    expected: re.Pattern[str] | None,
    asked: set[str],
) -> list[_Candidate]:
    """The best sentence, and a further one only when it may hold what the best lacks: a
    near tie, or the next sentence when it adds a question term or the expected answer type
    (a date for "when") that the best lacks, goes on with it, or follows a best sentence that
    says little beyond the question's own words; or the other sentence of a short
    two-sentence paragraph whose best sentence shares few words with the question. A question
    in a source is never the best and comes only before the sentence answering it; so does the
    sentence a best one opening with "This" points back to."""
    ranked = sorted(candidates, key=lambda c: (c.asks, -c.score, c.source_index, c.position))
    if not ranked or not ranked[0].relevant:
        return []
    top = ranked[0]
    held = set(top.terms) & asked
    typed = expected is None or expected.search(top.text) is not None
    thin = len(set(top.terms) - asked) <= _THIN_LEAD
    chosen = [top]
    # "Need new software? Request it in ...", "... the algorithm quicksort. This solves ...":
    # the sentence before and the best one read as one
    before = _before(candidates, top)
    joined = before if before is not None and (before.asks or _points_back(top)) else None
    if joined is not None:
        chosen.append(joined)
    for c in ranked[1:]:
        if len(chosen) >= max_sentences or c.asks:
            break
        near = top.score - c.score <= _NEAR_TIE
        completes = not typed and expected is not None and expected.search(c.text) is not None
        if top.coverage <= _PAIR_COVERAGE and _paired(top, c):
            needed = True
        elif _follows(top, c):
            needed = near or thin or completes or bool(set(c.terms) & asked - held)
            needed = needed or _continues(c)
        else:
            # A sentence elsewhere must share a word with the question too: every sentence
            # of the right passage is close to the question in meaning.
            needed = near and c.coverage > 0
        if needed and all(_jaccard(c.terms, o.terms) < _REDUNDANT_JACCARD for o in chosen):
            chosen.append(c)
            held |= set(c.terms) & asked
            typed = typed or completes
    # The answer leads: the best sentence (with the one completing it, or its paragraph's
    # other sentence, in their order) first, the rest after it in document order.
    lead = {(top.source_index, top.position), (top.source_index, top.position + 1)}
    if joined is not None:
        lead.add((joined.source_index, joined.position))
    lead |= {(c.source_index, c.position) for c in chosen if _paired(top, c)}
    return sorted(
        chosen, key=lambda c: ((c.source_index, c.position) not in lead, c.source_index, c.position)
    )


# A best sentence opening with one of these points back to the sentence before it.
_ANAPHORS = frozenset({"this", "these"})


def _before(candidates: Sequence[_Candidate], top: _Candidate) -> _Candidate | None:
    """The sentence just before ``top`` in its paragraph, if any."""
    return next(
        (
            c
            for c in candidates
            if (c.source_index, c.position + 1) == (top.source_index, top.position)
            and c.paragraph[0] == top.paragraph[0]
        ),
        None,
    )


def _points_back(top: _Candidate) -> bool:
    """``top`` opens with "This" or "These": what it says is named in the sentence before."""
    opening = [w.lower() for w in words(top.text)[:1]]
    return top.record is None and bool(opening) and opening[0] in _ANAPHORS


def _paired(top: _Candidate, c: _Candidate) -> bool:
    """``c`` is the other sentence of ``top``'s paragraph, a short one of two sentences."""
    return (
        top.record is None
        and c.source_index == top.source_index
        and c.paragraph == top.paragraph
        and top.paragraph[1] == 2
        and len(top.text) + len(c.text) <= _PAIR_CHARS
    )


def _follows(top: _Candidate, c: _Candidate) -> bool:
    """``c`` is the sentence right after ``top`` in its source (records stand alone)."""
    return (
        top.record is None
        and c.record is None
        and (c.source_index, c.position) == (top.source_index, top.position + 1)
    )


def _continues(c: _Candidate) -> bool:
    """``c`` opens by pointing back ("It", "This", "But") and is short or on the question."""
    opening = [w.lower() for w in words(c.text)[:1]]
    return (
        bool(opening)
        and opening[0] in _CONTINUATIONS
        and (c.coverage > 0 or len(c.text) < _SHORT_SENTENCE)
    )


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
    names = _names(question_words)
    value *= 0.5 ** sum(w.lower() not in corpus for w in names)
    if _negated(question_words) and not _negated(words(best.text)):
        value *= 0.6
    expected = _expected_type(question)
    if expected is not None and not expected.search(answer):
        value *= 0.8
    return round(min(max(value, 0.0), 1.0), 4)


def _negated(sentence_words: Sequence[str]) -> bool:
    return any(
        w.lower() in _NEGATIONS or w.lower().endswith(("n't", "n’t")) for w in sentence_words
    )


def _clip(sentence: str) -> str:
    sentence = _BRACKET_REF.sub("", sentence).strip()
    if len(sentence) <= _MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:_MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"


def _trim(sentence: str, question: str) -> str:
    """A long sentence cut to its clauses about the question, each cut marked "…": from the
    first of the question's words (or of the answer type it expects, a date for "when") to
    the last, and ``_CLAUSE_SLACK`` characters on to the next clause break either side. An
    answer sits among the question's words or next to them; a clause beyond is about
    something else."""
    if len(sentence) <= _LONG_SENTENCE:
        return sentence
    asked = set(terms(question))
    spans = [m.span() for m in _WORD.finditer(sentence) if set(terms(m.group(0))) & asked]
    expected = _expected_type(question)
    if expected is not None:
        asked_words = {w.lower() for w in words(question)}
        spans += [m.span() for m in expected.finditer(sentence) if m[0].lower() not in asked_words]
    if not spans:
        return sentence
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    breaks = _CLAUSE_BREAK.finditer(sentence, last + _CLAUSE_SLACK)
    end = next((m.start() for m in breaks), len(sentence))
    before = _CLAUSE_BREAK.finditer(sentence, 0, max(first - _CLAUSE_SLACK, 0))
    start = max((m.end() for m in before), default=0)
    piece = sentence[start:end]
    if end < len(sentence):
        piece = piece.rstrip(",;:—– ") + " …"
    return f"… {piece}" if start else piece


def _render(chosen: list[_Candidate], sources: Sequence[Source]) -> str:
    lines: list[str] = []
    previous: _Candidate | None = None
    for c in chosen:
        text = c.shown or _clip(c.text)
        if previous is not None and _follows(previous, c) and lines:
            marker = f" [{sources[c.source_index].n}]"
            lines[-1] = f"{lines[-1].removesuffix(marker)} {text}{marker}"
        else:
            lines.append(f"> {text} [{sources[c.source_index].n}]")
        previous = c
    return "\n".join(lines)


def extractive_answer(
    question: str,
    sources: Sequence[Source],
    *,
    max_sentences: int = 4,
    dense: Mapping[str, float] | None = None,
) -> ExtractiveResult:
    """Answer with the best supporting sentences of ``sources`` (retrieval order), quoted.

    Sentences are scored by BM25-weighted overlap with the question, idf-weighted keyword
    coverage, shared bigrams and the expected answer type (a date for "when", a number for
    "how many"); retrieval rank breaks ties. The answer opens with the best one; a further
    one (up to ``max_sentences``, none redundant) only when the scores cannot tell it from the
    best, or when it is the next sentence and adds a question term or the expected answer
    type that the best lacks, or goes on with it ("It was ..."). The best (with the sentence
    completing it) leads, the others follow in document order, each quoted line closed by its
    source's [n]; a long sentence is cut to its clauses about the question (``_trim``).
    Nothing relevant gives an empty text and score 0. The work is small (a few chunks); no
    thread is needed.

    ``dense`` maps a sentence to its dense cosine to the question
    (``Retriever.sentence_similarities``); it bridges the words a paraphrase does not share.
    """
    if not terms(question):
        return ExtractiveResult("", (), 0.0)
    candidates = _candidates(sources, dense or {})
    _score_all(question, candidates, len(sources))
    expected = _expected_type(question)
    chosen = _select(candidates, max(1, max_sentences), expected, set(terms(question)))
    if not chosen:
        return ExtractiveResult("", (), 0.0)
    for c in chosen:
        if c.record is None:
            c.shown = _trim(_clip(c.text), question)
        else:
            fields = relevant_fields(
                c.record, terms(question), expected=expected, question_words=words(question)
            )
            c.shown = _clip(render(fields))
    best = max(chosen, key=lambda c: (c.score, not c.asks))  # a question quoted is no best
    used = tuple(sources[i] for i in dict.fromkeys(c.source_index for c in chosen))
    text = _render(chosen, sources)
    best_sentences: dict[str, str] = {}
    for c in sorted(chosen, key=lambda c: (-c.score, c.asks)):
        best_sentences.setdefault(str(sources[c.source_index].chunk_id), c.text)
    scores = [0.0] * len(sources)
    for c in candidates:
        scores[c.source_index] = max(scores[c.source_index], c.score)
    return ExtractiveResult(
        text,
        used,
        _confidence(question, best, text, sources),
        best_sentences,
        _support(question, best, sources, chosen),
        tuple(round(score, 4) for score in scores),
    )


def _support(
    question: str, best: _Candidate, sources: Sequence[Source], chosen: Sequence[_Candidate]
) -> Support:
    question_words = words(question)
    names = {w.lower() for w in _names(question_words)}
    held = {w.lower() for w in words(best.text)}
    expected = _expected_type(question)
    if expected is None:
        typed = 0.5
    else:
        found = {m.group(0).lower() for m in expected.finditer(best.text)}
        typed = 1.0 if found - {w.lower() for w in question_words} else 0.0
    return Support(
        coverage=round(best.coverage, 4),
        bigrams=round(best.bigrams, 4),
        dense=round(best.dense, 4),
        bm25=round(best.bm25, 4),
        names=round(len(names & held) / len(names), 4) if names else 1.0,
        typed=typed,
        # the negation asked about may be in a sentence quoted with the best one from its
        # passage ("...if I don't answer a page?": "If nobody acknowledges within 5 minutes")
        negation_kept=not _negated(question_words)
        or any(_negated(words(c.text)) for c in chosen if c.source_index == best.source_index),
        source_index=best.source_index,
        unknown_names=unknown_names(question, (s.text for s in sources)),
    )


def _names(question_words: Sequence[str]) -> list[str]:
    """The question's names, numbers and dates: capitalised words past the first (not the
    pronoun "I" and its contractions), digits."""
    return [
        w
        for i, w in enumerate(question_words)
        if (i and w[0].isupper() and w.lower().replace("’", "'") not in PRONOUN_I) or has_digit(w)
    ]
