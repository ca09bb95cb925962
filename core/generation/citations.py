"""Check the [n] markers of a model's answer against the sources it was given.

Models cite sources that were never listed ([7] of 3), cite [0], repeat themselves ([1][1]),
write footnotes ([^1]), nest brackets ([[1]]) or put brackets in code. Everything is reduced to
valid markers, renumbered densely in order of first use, each with a short supporting quote.
While an answer streams, :class:`StreamPreview` shows each marker so checked as soon as later
text can no longer change it, so the final text extends what streamed.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.generation.base import Source
from core.text import split_sentences, terms
from core.types import Citation

_NUMBER = r"\^?\s*-?\d+"
_ONE = rf"\[\s*{_NUMBER}(?:\s*(?:[,;]|[-–](?=\s*\d))\s*{_NUMBER})*\s*\]"
_MARKER = rf"(?:\[\s*{_ONE}\s*\]|{_ONE})"
# A run of adjacent markers ("[1][2]", "[1], [3]"), not a markdown link "[1](http…)".
_GROUP = re.compile(rf"{_MARKER}(?:[ \t]*[,;]?[ \t]*{_MARKER})*(?!\()")
_ITEM = re.compile(r"(-?\d+)(?:\s*[-–]\s*(\d+))?")
_CODE = re.compile(r"(```|~~~)[\s\S]*?(?:\1|\Z)|`[^`\n]*`")
_SENTENCE_BREAK = re.compile(r"[.!?](?=\s)|\n")
_MAX_DIGITS = 6
_MAX_RANGE = 20
QUOTE_CHARS = 200
_K1, _B = 1.2, 0.75  # BM25, as everywhere else here


def parse_and_validate(text: str, sources: Sequence[Source]) -> tuple[str, list[Citation]]:
    """Rewrite ``text`` with valid, densely renumbered markers and build its citations.

    A marker is valid when it names the ``n`` of a given source. ``[1, 2]``, ``[1][2]``,
    ``[1-2]``, ``[^1]`` and ``[[1]]`` are understood; brackets inside inline code and fenced
    blocks are left alone; invalid markers are removed with their leading space; repeats in
    one run collapse. Output runs read ``[1][2]``. Citations come in their new order, each
    with a quote (≤ ~200 characters) of the source sentence that best matches the claim.
    """
    by_n = {source.n: source for source in sources}
    checked = _Checked()
    rewritten = _check(text, by_n, lambda cited, claim: _supporting(cited, claim, sources), checked)
    citations = [
        _citation(new, by_n[old], " ".join(checked.claims[old]))
        for old, new in sorted(checked.renumber.items(), key=lambda item: item[1])
    ]
    return rewritten.strip(), citations


class StreamPreview:
    """The previews of one streamed answer, checked against its ``sources``.

    Called with the text so far, it returns what may be shown: the text up to the first
    marker that later text may still change (a run of markers not yet closed, a claim not yet
    written, a backtick that may still open code around it) or being written, each marker
    before it as the final answer will show it, checked and renumbered by
    :func:`parse_and_validate`'s own rules. Brackets in code stay. So each preview extends
    the one before, and the final text extends each of them.

    It is called on every streamed delta: what was checked is kept and not checked again while
    the text grows.
    """

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = sources
        self._by_n = {source.n: source for source in sources}
        self._checked = _Checked()
        self._raw = ""  # the text checked so far, as the model wrote it

    def __call__(self, text: str) -> str:
        if not text.startswith(self._raw):
            self._checked, self._raw = _Checked(), ""
        shown = _check(text, self._by_n, self._keep, self._checked, streaming=True)
        self._raw = text[: self._checked.cursor]
        return shown.strip()  # a blank shows with what follows it

    def _keep(self, cited: list[int], claim: str) -> list[int]:
        return _supporting(cited, claim, self._sources)


def preview(text: str, sources: Sequence[Source]) -> str:
    """One preview of a streamed answer (see :class:`StreamPreview`, which a stream keeps)."""
    return StreamPreview(sources)(text)


@dataclass(slots=True)
class _Checked:
    """A text's markers checked up to ``cursor``: the text up to there, rewritten, and the
    markers kept so far (their new numbers, their claims)."""

    cursor: int = 0
    text: str = ""
    renumber: dict[int, int] = field(default_factory=dict)
    claims: dict[int, list[str]] = field(default_factory=dict)


def _check(
    text: str,
    by_n: Mapping[int, Source],
    keep: Callable[[list[int], str], list[int]],
    checked: _Checked,
    *,
    streaming: bool = False,
) -> str:
    """``text`` rewritten, its markers checked in order from ``checked.cursor`` on (into
    ``checked``). Streaming, the text stops before the first marker that later text may
    still change, or one being written."""
    protected = [m.span() for m in _CODE.finditer(text)]
    # a backtick that opens no code span yet may open one that covers what follows it
    stray = _last_line_stray(text, protected) if streaming else len(text)
    out = [checked.text]
    cursor = checked.cursor
    pending: int | None = None  # where a marker that may still change starts
    for match in _GROUP.finditer(text, cursor):
        start, end = match.span()
        if streaming and (end > stray or _CLOSED.match(text, end) is None):
            pending = start
            break
        if any(a < end and start < b for a, b in protected):
            continue
        claim, written = _claim_of(text, start, end)
        if streaming and not written:
            pending = start
            break
        out.append(text[cursor:start])
        cursor = end
        valid = [n for n in _numbers(match.group(0)) if n in by_n]
        valid = keep(valid, claim) if valid else []
        if not valid:
            _drop_marker(out, text[end : end + 1])
            continue
        for n in valid:
            checked.renumber.setdefault(n, len(checked.renumber) + 1)
            checked.claims.setdefault(n, []).append(claim)
        out.append("".join(f"[{checked.renumber[n]}]" for n in dict.fromkeys(valid)))
    checked.cursor, checked.text = cursor, "".join(out)
    if not streaming:
        return checked.text + text[cursor:]
    # shown up to it, without the blanks (or an opening bracket) before it
    return checked.text + _PARTIAL.sub("", text[cursor:pending])


def _last_line_stray(text: str, protected: Sequence[tuple[int, int]]) -> int:
    """Where a backtick on the last line opens no code span (yet); inline code ends with its
    line, so a stray backtick on an earlier line never will."""
    at = text.find("`", text.rfind("\n") + 1)
    while at >= 0:
        if not any(a <= at < b for a, b in protected):
            return at
        at = text.find("`", at + 1)
    return len(text)


# How much of a claim (its content terms, stemmed) its cited sources must hold together, and
# how much one of them must hold to keep its marker.
SUPPORTED = 0.5
UNSUPPORTED = 0.2
# a marker being written at the end of the text so far
_PARTIAL = re.compile(r"[ \t]*\[[\s\d^,;\-–\[]*$")
# what ends a run of markers for good: past blanks and a comma, anything but the start of
# another marker
_CLOSED = re.compile(r"[ \t]*[,;]?[ \t]*(?:[^ \t\[,;]|\[(?!\s*(?:[\^\[\-–\d]|$)))")
# numbers that make a claim checkable: times, amounts, years (not a lone digit: list items)
_DIGITS = re.compile(r"\d+[.:,]\d+(?:[.:,]\d+)*|\d{2,}")


def _share(claim: str, held: Sequence[Source]) -> float:
    """The share of the claim's content terms that the sources' titles and texts hold."""
    wanted = set(terms(claim))
    if not wanted:
        return 1.0
    text = " ".join(f"{source.title} {source.text}" for source in held)
    return len(wanted & set(terms(text))) / len(wanted)


def support(claim: str, held: Sequence[Source]) -> float:
    """How far the sources, together, hold the claim: the share of its content terms they
    hold, or 0 when a number of the claim (a time, an amount, a year) is in none of them."""
    numbers = set(_DIGITS.findall(claim))
    if numbers and not numbers <= {n for s in held for n in _DIGITS.findall(s.text)}:
        return 0.0
    return _share(claim, held)


def _supporting(cited: list[int], claim: str, sources: Sequence[Source]) -> list[int]:
    """The markers a claim keeps. When the cited sources together hold the claim, each that
    holds a part of it stays. Otherwise the claim is re-pointed to the given source that holds
    it; when none does, the cited sources that hold a part of it stay (nothing better exists)
    and the others go. A claim of fewer than two content terms ("It is old") is not judged."""
    if len(set(terms(claim))) < 2:
        return cited
    by_n = {source.n: source for source in sources}
    if support(claim, [by_n[n] for n in cited]) >= SUPPORTED:
        return [n for n in cited if _share(claim, [by_n[n]]) >= UNSUPPORTED]
    best = max(sources, key=lambda source: (support(claim, [source]), -source.n))
    if support(claim, [best]) >= SUPPORTED:
        return [best.n]  # cited to the wrong source: the one that holds it
    return [n for n in cited if support(claim, [by_n[n]]) >= UNSUPPORTED]


def _numbers(group: str) -> list[int]:
    found: list[int] = []
    for first, last in _ITEM.findall(group):
        if len(first.lstrip("-")) > _MAX_DIGITS or len(last) > _MAX_DIGITS:
            continue
        low = int(first)
        high = int(last) if last else low
        if low <= high <= low + _MAX_RANGE:
            found.extend(range(low, high + 1))
    return found


def _drop_marker(out: list[str], following: str) -> None:
    """Remove an invalid marker's leading blanks, keeping words on both sides apart."""
    if not out:
        return
    out[-1] = out[-1].rstrip(" \t")
    before = "".join(out)[-1:]
    if following.isalnum() and before and not before.isspace():
        out[-1] += " "


def _claim_of(text: str, start: int, end: int) -> tuple[str, bool]:
    """The sentence a marker closes (or, at the start of a line, the one it opens), and
    whether it is written to its end."""
    before = _GROUP.sub("", text[:start]).rstrip()
    boundaries = [m.end() for m in _SENTENCE_BREAK.finditer(before[:-1])]
    claim = before[boundaries[-1] if boundaries else 0 :]
    if terms(claim):
        return claim.strip(), True
    after = _GROUP.sub("", text[end:])
    stop = _SENTENCE_BREAK.search(after.lstrip())
    claim = after.lstrip()[: stop.end() if stop else len(after)].strip()
    return claim, stop is not None and _broken(text[end:])


def _broken(rest: str) -> bool:
    """Whether ``rest`` holds a sentence break that later text cannot move: every run of
    markers before it closed, and no bracket before it that may still open one around it."""
    runs = [m.span() for m in _GROUP.finditer(rest)]
    for found in _SENTENCE_BREAK.finditer(rest):
        at = found.start()
        head = rest[:at]
        if any(a <= at < b for a, b in runs) or not _GROUP.sub("", head).strip():
            continue
        closed = all(_CLOSED.match(rest, b) for a, b in runs if a < at)
        return closed and _PARTIAL.search(_GROUP.sub("", head)) is None
    return False


def _citation(n: int, source: Source, claim: str) -> Citation:
    return Citation(
        n=n,
        chunk_id=uuid.UUID(str(source.chunk_id)),
        document_id=uuid.UUID(str(source.document_id)),
        title=source.title,
        quote=best_quote(source.text, claim),
        source_url=source.source_url,
        start=source.start,
        end=source.end,
        score=source.score,
    )


def quote_sentences(
    citations: Sequence[Citation], sentences: Mapping[str, str], focus: str
) -> list[Citation]:
    """``citations`` with each quote taken from the sentence given for its chunk id (cut to
    ``QUOTE_CHARS`` around ``focus``'s terms); citations of other chunks keep theirs.

    A quoted (extractive) answer knows which of its sentences answers best; a citation marker
    closes a run of sentences of one source, and the last of them is not always that one.
    """
    return [
        replace(c, quote=best_quote(sentence, focus))
        if (sentence := sentences.get(str(c.chunk_id))) is not None
        else c
        for c in citations
    ]


def best_quote(source_text: str, claim: str, *, limit: int = QUOTE_CHARS) -> str:
    """The source sentence that best matches ``claim``, cut to about ``limit`` chars.

    Sentences are scored with BM25 against the claim's terms, IDF over the source's own
    sentences: a term that only one sentence holds (a name, a number) outweighs words that
    every sentence shares, and a long sentence does not win by length alone. The first
    sentence wins a tie.
    """
    sentences = split_sentences(source_text)
    if not sentences:
        return ""
    wanted = set(terms(claim))
    sentence_terms = [terms(s) for s in sentences]
    n = len(sentences)
    df = Counter(t for st in sentence_terms for t in set(st) if t in wanted)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
    avg_len = max(sum(len(st) for st in sentence_terms) / n, 1.0)

    def score(i: int) -> float:
        tf = Counter(t for t in sentence_terms[i] if t in idf)
        norm = _K1 * (1 - _B + _B * len(sentence_terms[i]) / avg_len)
        return sum(idf[t] * c * (_K1 + 1) / (c + norm) for t, c in tf.items())

    best = sentences[max(range(n), key=lambda i: (score(i), -i))]
    best = re.sub(r"\s*\[\^?\d+\]", "", best).strip()
    return _window(best, idf, limit)


def _window(sentence: str, weights: dict[str, float], limit: int) -> str:
    """About ``limit`` chars of ``sentence`` around its weightiest stretch of claim terms."""
    if len(sentence) <= limit:
        return sentence
    hits = []
    for m in re.finditer(r"[^\W_]+", sentence):
        found = terms(m[0])
        if found and found[0] in weights:
            hits.append((m.start(), weights[found[0]]))
    # Start a little before the point where a window of ``limit`` holds the most weight.
    start = max(
        (p for p, _ in hits),
        key=lambda p: sum(w for q, w in hits if p <= q < p + limit - 30),
        default=0,
    )
    start = sentence.rfind(" ", 0, max(start - 20, 0)) + 1 if start > 30 else 0
    piece = sentence[start : start + limit]
    if start + limit < len(sentence):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return ("… " if start else "") + piece.strip()
