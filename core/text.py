"""Words and sentences of English text, shared by retrieval (reranking) and generation
(prompts, extractive answers, citation quotes): tokenising, stopwords, a light stemmer and a
sentence splitter that knows Markdown's headings, tables, lists and code."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

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
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?:\[\^?\d+\])*\s+")
_BULLET = re.compile(r"\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_ABBREVIATION_LIST = """\
    mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co corp no fig vol approx dept est jan
    feb mar apr jun jul aug sep sept oct nov dec u.s a.m p.m ca cf al gen col lt rev
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
PRONOUN_I = frozenset({"i", "i'm", "i've", "i'll", "i'd"})
_POSSESSIVE = re.compile(r"['’]s$")
# Capitalised words that name no thing a source must mention: "Can I work from home on
# Fridays?" is answered by a rule for every day.
_CALENDAR_LIST = """\
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december
"""
_NOT_NAMES = PRONOUN_I | frozenset(
    f"{day}{plural}" for day in _CALENDAR_LIST.split() for plural in ("", "s")
)
_GREETING = re.compile(
    r"^\W*(?:hi|hey|hello|hiya|yo|dear|thanks|thank you|thx|ty|cheers|morning|good morning"
    r"|good afternoon|ok|okay)\W*$",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(1\d{3}|20\d{2})(['’]?s)?$")  # 1974, 1970s, 1100's
_NEAR_SPELLING = 0.8  # difflib ratio from which a word is a misspelling of a name
# Texts up to this long (chunks, sentences, questions) have their words and sentences
# memoised; longer ones are worked out each time.
_MEMO_CHARS = 4000
_NOUN_CAPITALS = 0.28  # more capitalised words inside sentences: a language capitalising nouns
_TELLING = 30  # words inside sentences before their capitals say which language
# Headings, table rows and fenced code are no answer sentences: they are dropped before splitting.
_NOT_PROSE = re.compile(
    r"^ {0,3}#{1,6}[ \t][^\n]*$"  # a heading
    r"|^ {0,3}\|[^\n]*$"  # a table row
    r"|^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$",  # a fenced code block
    re.MULTILINE,
)


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix stripper so that rule/ruled/rules/ruling meet (not a full Porter).

    Memoised: citation quotes and the reranker stem the same few thousand words over and over,
    and a cache hit costs a tenth of the stripping. Accents are folded first (fiancée and
    fiancee, naïve and naive meet): people type questions without them."""
    word = _fold(word)
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
    """Stemmed, lower-cased content terms of ``text`` with repeats (for scoring). A capital
    letter standing alone inside a sentence ("team A", "plan B", "Building C") is a name,
    kept as written, not the article or pronoun it would be in lower case; so is an
    abbreviation that would be a stopword in lower case ("IT", "AM") unless the text shouts."""
    return list(_memo(_terms, text))


def _memo(fn: Callable[[str], T], text: str) -> T:
    """``fn(text)`` through its cache when ``text`` is a chunk, a sentence or a question; a
    longer text (a whole thread, say) is worked out afresh rather than kept."""
    return fn(text) if len(text) <= _MEMO_CHARS else fn.__wrapped__(text)  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1 << 15)
def _terms(text: str) -> tuple[str, ...]:
    """:func:`terms`, memoised: every question weighs the sentences of its sources, and a
    burst of questions on one corpus weighs the same sentences again and again (half the
    event loop's time in bench/concurrency.py before)."""
    out = []
    shouted: bool | None = None
    for match in _WORD.finditer(text):
        word = match.group()
        if _is_letter_name(text, match.start(), word):
            out.append(word)
        elif word.lower() not in STOPWORDS:
            out.append(stem(word))
        elif len(word) > 1 and word.isupper():
            # "IT", "AM", "OR": an abbreviation written like a stopword is a term, kept as
            # written ("the IT desk" is not "it"), unless the whole text is in capitals
            if shouted is None:
                shouted = _shouted(text)
            if not shouted:
                out.append(word)
    return tuple(out)


def _shouted(text: str) -> bool:
    """Whether most of ``text``'s words (of two letters or more) are in capitals."""
    long = [w for w in words(text) if len(w) > 1]
    return sum(w.isupper() for w in long) * 2 > len(long)


def _is_letter_name(text: str, start: int, word: str) -> bool:
    if len(word) != 1 or not word.isupper() or word == "I":
        return False
    return _inside_sentence(text[:start].rstrip())


def _inside_sentence(before: str) -> bool:
    """Whether a word after ``before`` (stripped) is inside a sentence, not opening one."""
    return bool(before) and before[-1] not in ".!?:;\n\"'“‘(>*-•"


def unknown_names(question: str, texts: Iterable[str]) -> tuple[str, ...]:
    """The names and years ``question`` asks about that none of ``texts`` mentions, even
    misspelt: "Can I use ChatGPT for work?" asked of sources that never say "ChatGPT" is not
    answered by them, nor "What did Turing invent in 1974?" by sources without 1974 (a decade
    or century, "the 1100s", is mentioned by any year in it).

    A name is a capitalised word of three letters or more inside a sentence of the question
    that is not a stopword, not "I", not a weekday or a month, not an all-capital abbreviation
    (RAM, API: the sources may spell them out), without digits and not the one a greeting
    addresses ("Hi Sam, ..."), its possessive dropped. A title-case question has none, and
    neither has one asked of texts written in a language that capitalises its nouns (German:
    about a third of the words inside its sentences, against at most a fifth in name-dense
    English). A name is mentioned when a word of the texts is it, starts with it ("Mac":
    macOS), is its start ("Germany": German), shares its stem ("Marry": married) or is a near
    spelling of it ("Hatmanis": Hartmanis)."""
    found = [m for m in _WORD.finditer(question) if m.group().lower() not in STOPWORDS]
    years = [m.group() for m in found if _YEAR.match(m.group())]
    names = [
        _POSSESSIVE.sub("", m.group()) for m in found if _is_name(question, m.start(), m.group())
    ]
    if _title_case(question):
        names = []
    if not names and not years:
        return ()
    texts = list(texts)
    if names and _capitalised_share(texts) > _NOUN_CAPITALS:
        names = []
    mentions = _Mentions(texts)
    return tuple(w for w in dict.fromkeys([*years, *names]) if not mentions(w))


def is_year(word: str) -> bool:
    """Whether ``word`` is a year as :func:`unknown_names` reads one (1974, the 1970s)."""
    return _YEAR.match(word) is not None


def mentioned(word: str, texts: Iterable[str]) -> bool:
    """Whether ``texts`` mention ``word``, a name or a year, as :func:`unknown_names` counts
    a mention (a near spelling, a stem, a prefix; a year's decade or century)."""
    return _Mentions(texts)(word)


class _Mentions:
    """The words of some texts, asked whether they mention a name or a year."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = list(texts)
        self._vocabulary: set[str] = set().union(*(_memo(_vocabulary, t) for t in self._texts))
        self._stems: set[str] | None = None

    def __call__(self, word: str) -> bool:
        if is_year(word):
            return _year_mentioned(word, self._vocabulary)
        if self._stems is None:
            self._stems = set().union(*(_memo(_stems, t) for t in self._texts))
        return stem(word) in self._stems or _mentioned(_fold(word), self._vocabulary)


# A question's sources are chunks that other questions read too: what the names veto needs
# of each (its folded words, their stems, its capitals) is kept per chunk text, for the
# latest 1,024 chunks (about 10 kB each for the two word sets).
@functools.lru_cache(maxsize=1 << 10)
def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(_fold(w) for w in _WORD.findall(text))


@functools.lru_cache(maxsize=1 << 10)
def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in _memo(_vocabulary, text))


@functools.lru_cache(maxsize=1 << 10)
def _capitals(text: str) -> tuple[int, int]:
    """Words inside the sentences of ``text``, and how many of them are capitalised."""
    inside = capitalised = 0
    for sentence in split_sentences(text):
        for match in _WORD.finditer(sentence):
            if match.start():
                inside += 1
                capitalised += match.group()[0].isupper()
    return inside, capitalised


def _year_mentioned(year: str, vocabulary: set[str]) -> bool:
    """Whether a year ("1974") or its decade or century ("1970s", "1100's") is in the texts:
    the year itself, or any year of that decade or century."""
    match = _YEAR.match(year)
    if match is None:
        return True
    digits, plural = match.group(1, 2)
    if not plural:
        return digits in vocabulary or year.lower() in vocabulary
    prefix = digits.rstrip("0") if digits.endswith("00") else digits[:3]
    prefix = prefix if len(prefix) >= 2 else digits[:2]
    return any(len(w) >= 4 and w[:4].isdigit() and w.startswith(prefix) for w in vocabulary)


def _title_case(question: str) -> bool:
    inside = words(question)[1:]
    return len(inside) >= 3 and all(w[0].isupper() or w[0].isdigit() for w in inside)


def _capitalised_share(texts: Sequence[str]) -> float:
    """The share of the words inside the texts' sentences that are capitalised (0 when the
    texts hold too few words to tell)."""
    counts = [_memo(_capitals, text) for text in texts]
    inside = sum(n for n, _ in counts)
    capitalised = sum(c for _, c in counts)
    return capitalised / inside if inside >= _TELLING else 0.0


def _is_name(text: str, start: int, word: str) -> bool:
    if len(word) < 3 or not word[0].isupper() or word.isupper() or has_digit(word):
        return False
    if _fold(_POSSESSIVE.sub("", word)) in _NOT_NAMES:
        return False
    before = text[:start].rstrip()
    if _GREETING.match(before):
        return False  # "Hi Sam, ..." addresses someone; it asks about nothing
    return _inside_sentence(before)


def has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _fold(word: str) -> str:
    word = word.lower().replace("’", "'")
    return word if word.isascii() else _fold_accents(word)


def _mentioned(name: str, vocabulary: set[str]) -> bool:
    if name in vocabulary:
        return True
    for word in vocabulary:
        if (len(name) >= 3 and word.startswith(name)) or (len(word) >= 4 and name.startswith(word)):
            return True
        if (
            len(name) >= 5
            and word[:1] == name[:1]
            and difflib.SequenceMatcher(None, name, word).ratio() >= _NEAR_SPELLING
        ):
            return True
    return False


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraph breaks and list items split; line wraps do not."""
    return [sentence for paragraph in split_paragraphs(text) for sentence in paragraph]


def split_paragraphs(text: str) -> list[list[str]]:
    """The sentences of ``text`` (:func:`split_sentences`) by paragraph, a list item being
    a paragraph of its own."""
    return [list(p) for p in _memo(_paragraphs, text)]


@functools.lru_cache(maxsize=1 << 12)
def _paragraphs(text: str) -> tuple[tuple[str, ...], ...]:
    """:func:`split_paragraphs`, memoised per text: a chunk is split by every question that
    retrieves it (its sentence cosines, the answerer, the reranker, the names veto)."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", _NOT_PROSE.sub("\n\n", text)):
        for item in _BULLET.split(block):
            flat = " ".join(item.split())
            if flat:
                paragraphs.append(tuple(_split_flat(flat)))
    return tuple(p for p in paragraphs if p)


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
