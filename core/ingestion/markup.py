"""HTML to plain text, streamed: an lxml target parser turns parse events straight into text.

No tree is built, so memory grows with the text, not with the markup, and elements are counted
as they open: a page with more than ``max_elements`` is refused part-way through. Headings become
'#' lines, list items '- ', table rows 'a | b'; scripts, styles, templates and the head are
dropped with everything inside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from core.errors import UnsupportedFile

_BLANK_RUNS = re.compile(r"\n{3,}")
_FEED = 64 * 1024  # characters per feed: a refusal stops the parser within one of these
_DROP = frozenset(("script", "style", "noscript", "template", "head", "svg", "iframe", "object"))
_PREFORMATTED = frozenset(("pre", "textarea"))
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset((
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote",
    "pre", "ul", "ol", "dl", "dt", "dd", "table", "figure", "figcaption", "form", "hr",
    "address", "details", "summary",
))  # fmt: skip


class _TooManyElements(Exception):
    pass


@dataclass
class _Capture:
    """Text gathered inside one element (a heading, a table row, the title) until it closes."""

    depth: int
    parts: list[str] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)  # table rows: their td/th cells
    in_cell: bool = False


class _TextTarget:
    """lxml parser target: every ``start`` has its ``end``, even for void and unclosed tags."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self.elements = 0
        self.depth = 0
        self.parts: list[str] = []
        self.closers: list[str] = []  # what each open element writes when it closes
        self.dropped_at = 0  # depth of the dropped element being skipped (0: none)
        self.heading: tuple[int, _Capture] | None = None
        self.row: _Capture | None = None
        self.title: _Capture | None = None
        self.title_text: str | None = None
        self.pending: list[str] = []  # one text node, which lxml may hand over in pieces
        self.preformatted = 0  # open <pre> and <textarea> elements

    def start(self, tag: str, attrib: object) -> None:
        self._flush()
        self.elements += 1
        if self.elements > self.max_elements:
            raise _TooManyElements
        self.depth += 1
        self.preformatted += tag in _PREFORMATTED
        if tag == "title" and self.title is None and self.title_text is None:
            self.title = _Capture(self.depth)
        self.closers.append(self._open(tag))

    def _open(self, tag: str) -> str:
        """Write what opens ``tag``; return what closes it."""
        if self.dropped_at:
            return ""
        if tag in _DROP:  # inside a heading or a row too
            self.dropped_at = self.depth
        elif self.heading is not None:
            return ""
        elif self.row is not None:
            if self.depth == self.row.depth + 1 and tag in ("td", "th"):
                self.row.cells.append([])
                self.row.in_cell = True
        elif tag in _HEADINGS:
            self.heading = (_HEADINGS[tag], _Capture(self.depth))
        elif tag == "tr":
            self.row = _Capture(self.depth)
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            return "\n\n"
        return ""

    def end(self, tag: str) -> None:
        self._flush()
        closer = self.closers.pop() if self.closers else ""
        depth, self.depth = self.depth, self.depth - 1
        self.preformatted -= tag in _PREFORMATTED
        if self.title is not None and depth == self.title.depth:
            self.title_text = " ".join(" ".join(self.title.parts).split())
            self.title = None
        if self.dropped_at:
            self.dropped_at = 0 if depth == self.dropped_at else self.dropped_at
        elif self.heading is not None:
            level, capture = self.heading
            if depth == capture.depth:
                text = " ".join(" ".join(capture.parts).split())
                self.parts.append(f"\n\n{'#' * level} {text}\n\n" if text else "")
                self.heading = None
        elif self.row is not None:
            self._end_in_row(depth)
        else:
            self.parts.append(closer)

    def _end_in_row(self, depth: int) -> None:
        row = self.row
        assert row is not None
        if depth == row.depth + 1:
            row.in_cell = False
        elif depth == row.depth:
            cells = (" ".join(s.strip() for s in cell if s.strip()) for cell in row.cells)
            self.parts.append(" | ".join(c for c in cells if c) + "\n")
            self.row = None

    def data(self, text: str) -> None:
        self.pending.append(text)

    def _flush(self) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending.clear()
        if not self.preformatted and text.isspace():
            text = "\n" if "\n" in text else " "  # blank runs outside <pre> count once
        if self.title is not None:
            self.title.parts.append(text)
        if self.dropped_at:
            return
        if self.heading is not None:
            self.heading[1].parts.append(text)
        elif self.row is not None:
            if self.row.in_cell:
                self.row.cells[-1].append(text)
        else:
            self.parts.append(text)

    def comment(self, text: str) -> None:
        self._flush()  # a comment separates two pieces of text, as a tag does

    def close(self) -> None:
        self._flush()


def html_to_text(
    markup: str, filename: str, *, max_elements: int = 1_000_000
) -> tuple[str, str | None]:
    """Visible text of an HTML page and its title (the first ``<title>``, or None). Raises
    ``UnsupportedFile`` as soon as the page opens more than ``max_elements`` elements."""
    target = _TextTarget(max_elements)
    parser = etree.HTMLParser(target=target, recover=True, no_network=True)
    try:
        for start in range(0, len(markup), _FEED):
            parser.feed(markup[start : start + _FEED])
        parser.close()
    except _TooManyElements:
        raise UnsupportedFile(
            filename, f"it has more than {max_elements:,} HTML elements"
        ) from None
    except etree.LxmlError as exc:
        raise UnsupportedFile(filename, "the HTML is damaged and can't be read") from exc
    lines = (" ".join(line.split()) for line in "".join(target.parts).split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip(), target.title_text or None
