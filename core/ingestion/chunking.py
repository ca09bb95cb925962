"""Split extracted text into overlapping, structure-aware chunks for embedding.

Every chunk is an exact slice of the source (``chunk.text == text[chunk.start:chunk.end]``),
at most ``size`` characters long, and never blank. A chunk ends at the strongest break found in
the second half of its window: a markdown heading (a chunk never runs into the next section),
then a paragraph, a sentence, a line, a word, and as a last resort a hard cut inside one very
long word. The next chunk starts where the previous one ended, except after a sentence, line or
word break, where it backs up by at most ``overlap`` characters to the start of a sentence (or a
line, or a word when the break was mid-sentence). Headings and paragraphs are natural seams, so
no overlap is carried across them. The work is done with offsets and regular expressions on
small windows, so it is linear in the length of the text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! ? (plus closing quotes or brackets) before a space and a character
# that is not a lower-case letter, so "e.g. this" and "3.5" do not end a sentence.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[^\sa-z])")
_SENTENCE_START = re.compile(r"[.!?…]+[\"'”’)\]]*\s+(?=[^\sa-z])")
_LINE_START = re.compile(r"\n\s*(?=\S)")
_WORD_START = re.compile(r"\s+(?=\S)")
_LAST_SPACE = re.compile(r".*\s", re.DOTALL)
_NON_SPACE = re.compile(r"\S")

# Break strengths, strongest first; _END is the end of the text.
_HEADING_BREAK, _PARAGRAPH, _SENTENCE, _LINE, _WORD, _HARD, _END = range(7)
_LOOKAHEAD = 64


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of extracted text: ``text == source[start:end]``.

    ``page`` is the 1-based PDF page the chunk starts on (None without a page map) and
    ``section`` the text of the nearest markdown heading at or before the chunk.
    """

    index: int
    text: str
    start: int
    end: int
    page: int | None
    section: str | None


@dataclass(frozen=True, slots=True)
class _Heading:
    start: int
    end: int
    title: str
    opens_section: bool  # False when only blank lines separate it from the heading before


def chunk_text(
    text: str,
    *,
    size: int = 1000,
    overlap: int = 200,
    pages: Sequence[tuple[int, int]] = (),
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``size`` characters (see the module docstring).

    ``pages`` maps start offsets to page numbers, as in ``ExtractedText.pages``. Raises
    ``ValueError`` unless ``size > overlap >= 0``. Deterministic: the same input always gives
    the same chunks.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"need size > overlap >= 0, got size={size}, overlap={overlap}")
    headings = _find_headings(text)
    heading_starts = [h.start for h in headings]
    section_breaks = [h.start for h in headings if h.opens_section]
    page_map = sorted(pages)
    page_starts = [start for start, _ in page_map]
    chunks: list[Chunk] = []
    for index, (start, end) in enumerate(_spans(text, size, overlap, section_breaks)):
        page = None
        at = bisect.bisect_right(page_starts, start) - 1
        if at >= 0:
            page = page_map[at][1]
        section = _section_at(headings, heading_starts, start, end)
        chunks.append(Chunk(index, text[start:end], start, end, page, section))
    return chunks


def _spans(text: str, size: int, overlap: int, section_breaks: list[int]) -> list[tuple[int, int]]:
    first = _NON_SPACE.search(text)
    if first is None:
        return []
    spans: list[tuple[int, int]] = []
    opens_section = set(section_breaks)
    start, previous_end = first.start(), 0
    while True:
        end, level = _choose_end(
            text, start, size=size, previous_end=previous_end, section_breaks=section_breaks
        )
        spans.append((start, end))
        following = _NON_SPACE.search(text, end)
        if following is None:
            return spans
        fallback = following.start()
        if fallback in opens_section:  # never carry overlap into a new section
            start = fallback
        else:
            start = _next_start(
                text, start, end, level=level, size=size, overlap=overlap, fallback=fallback
            )
        previous_end = end


def _choose_end(
    text: str, start: int, *, size: int, previous_end: int, section_breaks: list[int]
) -> tuple[int, int]:
    """Where the chunk starting at ``start`` ends, and the strength of that break."""
    limit = start + size
    at = bisect.bisect_right(section_breaks, start)
    if at < len(section_breaks) and section_breaks[at] <= limit:
        return _rstrip(text, start, section_breaks[at]), _HEADING_BREAK
    if len(text) <= limit:
        return _rstrip(text, start, len(text)), _END
    # Each end must pass the previous chunk's end, or the chunk would sit inside the overlap.
    weak_floor = max(start + 1, previous_end + 1)
    for floor in (max(start + size // 2, weak_floor), weak_floor):
        for level, finder in _FINDERS:
            found = finder(text, floor, limit)
            if found >= 0:
                end = _rstrip(text, start, found)
                if end >= floor:
                    return end, level
    return _rstrip(text, start, limit), _HARD


def _paragraph_break(text: str, low: int, high: int) -> int:
    last = -1
    for match in _PARAGRAPH_BREAK.finditer(text, low, min(len(text), high + _LOOKAHEAD)):
        if match.start() > high:
            break
        last = match.start()
    return last


def _sentence_break(text: str, low: int, high: int) -> int:
    last = -1
    for match in _SENTENCE_END.finditer(text, max(0, low - 8), min(len(text), high + _LOOKAHEAD)):
        if match.end() > high:
            break
        if match.end() >= low:
            last = match.end()
    return last


def _line_break(text: str, low: int, high: int) -> int:
    return text.rfind("\n", low, high + 1)


def _word_break(text: str, low: int, high: int) -> int:
    match = _LAST_SPACE.match(text, low, high + 1)
    return -1 if match is None else match.end() - 1


_FINDERS = (
    (_PARAGRAPH, _paragraph_break),
    (_SENTENCE, _sentence_break),
    (_LINE, _line_break),
    (_WORD, _word_break),
)


def _next_start(
    text: str, start: int, end: int, *, level: int, size: int, overlap: int, fallback: int
) -> int:
    """Where the next chunk starts: back up into ``[end - overlap, end)`` at a clean boundary."""
    if overlap == 0 or level in (_HEADING_BREAK, _PARAGRAPH, _END):
        return fallback
    # Keep at least half of the next window for new text (a long run of spaces may follow).
    low = max(end - overlap, start + 1, fallback - size // 2)
    patterns = [_SENTENCE_START]
    if level >= _LINE:
        patterns.append(_LINE_START)
    if level >= _WORD:
        patterns.append(_WORD_START)
    for pattern in patterns:
        for match in pattern.finditer(text, max(start, low - 8), end):
            if low <= match.end() < end:
                return match.end()
    return fallback


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _find_headings(text: str) -> list[_Heading]:
    if "#" not in text:
        return []
    fences = _fenced_ranges(text)
    fence_starts = [low for low, _ in fences]
    headings: list[_Heading] = []
    for match in _HEADING.finditer(text):
        at = bisect.bisect_right(fence_starts, match.start()) - 1
        if at >= 0 and match.start() < fences[at][1]:
            continue
        after_heading = bool(headings) and not text[headings[-1].end : match.start()].strip()
        headings.append(_Heading(match.start(), match.end(), match.group(2), not after_heading))
    return headings


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks, where a '# comment' line is not a heading."""
    ranges: list[tuple[int, int]] = []
    opened: tuple[int, str] | None = None
    for match in _FENCE.finditer(text):
        fence = match.group(1)
        if opened is None:
            opened = (match.start(), fence)
        elif fence[0] == opened[1][0] and len(fence) >= len(opened[1]):
            ranges.append((opened[0], match.end()))
            opened = None
    if opened is not None:
        ranges.append((opened[0], len(text)))
    return ranges


def _section_at(headings: list[_Heading], starts: list[int], start: int, end: int) -> str | None:
    at = bisect.bisect_right(starts, start) - 1
    if at < 0:
        return None
    # A chunk that opens on a run of headings ("# Guide" then "## Setup") belongs to the last.
    while at + 1 < len(headings) and not headings[at + 1].opens_section:
        if headings[at + 1].start >= end:
            break
        at += 1
    return headings[at].title
