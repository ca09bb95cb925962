"""Words and sentences of English text, shared by retrieval (reranking) and generation
(prompts, extractive answers, citation quotes): tokenising, stopwords, a light stemmer and a
sentence splitter that knows Markdown's headings, tables, lists and code."""

from __future__ import annotations

import functools
import re
import unicodedata

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
    """Stemmed, lower-cased content terms of ``text`` with repeats (for scoring). A capital
    letter standing alone inside a sentence ("team A", "plan B", "Building C") is a name,
    kept as written, not the article or pronoun it would be in lower case."""
    out = []
    for match in _WORD.finditer(text):
        word = match.group()
        if _is_letter_name(text, match.start(), word):
            out.append(word)
        elif word.lower() not in STOPWORDS:
            out.append(stem(word))
    return out


def _is_letter_name(text: str, start: int, word: str) -> bool:
    if len(word) != 1 or not word.isupper() or word == "I":
        return False
    before = text[:start].rstrip()
    return bool(before) and before[-1] not in ".!?:;\n\"'“‘(>*-•"


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
