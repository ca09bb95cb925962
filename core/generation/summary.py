"""Requests for a document in brief ("Summarise the handbook"), and the offline summary.

A summary request names a document rather than asking a fact, so the evidence gate, which
weighs how well a sentence answers a question, does not apply: when the named document is
readable in the place, its opening chunks are the sources and the answer walks through them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

from core.generation.base import Source
from core.text import split_sentences, words

_REQUEST = re.compile(
    r"^\s*(?:(?:please|pls|can you|could you)\s+)?"
    r"(?:summari[sz]e|give me (?:an overview|a summary) of|an overview of|overview of|"
    r"what(?:'s| is) in|tl;?dr(?: of)?)\s+(?P<title>.+?)[\s.?!]*$",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^(?:the|our|this|that)\s+", re.IGNORECASE)
MAX_POINTS = 4
MIN_WORDS = 5  # a heading or a label is not a point


def requested_title(text: str) -> str | None:
    """The document a summary request names ("Summarise the Team handbook" -> "Team
    handbook"), or None when ``text`` is not one."""
    match = _REQUEST.match(text)
    if match is None:
        return None
    return _LEADING.sub("", match.group("title").strip()).strip() or None


def title_key(title: str) -> tuple[str, ...]:
    """How a title is compared: its words, without a file extension or case."""
    stem = PurePath(title).stem if "." in title[-6:] else title
    return tuple(w.casefold() for w in words(stem.replace("_", " ").replace("-", " ")))


def matches(requested: str, title: str) -> bool:
    """Whether ``requested`` names the document ``title`` (all the title's words, or the
    request's words all in the title)."""
    want, have = title_key(requested), title_key(title)
    if not want or not have:
        return False
    return want == have or set(have) <= set(want) or set(want) <= set(have)


def summary_points(sources: Sequence[Source]) -> tuple[str, dict[str, str]]:
    """The offline summary: each source's opening sentences in document order (a share of
    :data:`MAX_POINTS` each, at least one), as a list with citation markers, and the sentence
    quoted per chunk."""
    each = max(1, MAX_POINTS // max(1, len(sources)))
    lines: list[str] = []
    quoted: dict[str, str] = {}
    for source in sources[:MAX_POINTS]:
        body = "\n".join(
            line for line in source.text.splitlines() if not line.lstrip().startswith("#")
        )
        sentences = [s.strip() for s in split_sentences(body) if _a_point(s)][:each]
        if sentences:
            lines.append(f"- {' '.join(sentences)} [{source.n}]")
            quoted[source.chunk_id] = sentences[0]
    return "\n".join(lines), quoted


def _a_point(sentence: str) -> bool:
    """A whole sentence worth quoting: enough words, and its start (not a chunk's cut)."""
    first = sentence.strip()[:1]
    return len(words(sentence)) >= MIN_WORDS and (first.isupper() or first.isdigit())
