"""What extraction produces and the pieces that both the sniffing and the format readers share.

Split out of ``extract`` so that ``formats`` (the per-format readers) and ``extract`` (sniffing,
decoding, limits and dispatch) can both use them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UnsupportedFile

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """Plain text of a file. ``pages`` holds ``(start_offset, page_number)`` for PDFs."""

    text: str
    kind: str  # "txt" | "md" | "pdf" | "docx" | "html" | "csv" | "json"
    pages: tuple[tuple[int, int], ...] = ()
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """How big a file may be, how much text it may expand to, and how many parts of each kind
    a reader takes: counted while it reads, so a file is refused before it fills memory."""

    max_bytes: int = 20 * MIB
    max_chars: int = 5_000_000
    max_paragraphs: int = 100_000  # Word paragraphs, table cells' included
    max_elements: int = 1_000_000  # HTML elements; XML elements of a Word document
    max_json_values: int = 1_000_000
    max_pages: int = 2_000  # PDF pages


class TextCollector:
    """Gathers pieces of text and refuses as soon as they pass the character cap."""

    def __init__(self, filename: str, max_chars: int) -> None:
        self.filename = filename
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.length = 0

    def add(self, part: str) -> None:
        self.parts.append(part)
        self.length += len(part) + 1
        if self.length > self.max_chars:
            raise UnsupportedFile(self.filename, expands_past(self.max_chars))

    def text(self, separator: str) -> str:
        return separator.join(self.parts)


def normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.removeprefix("\ufeff")


def expands_past(max_chars: int) -> str:
    return f"it expands to more than {max_chars:,} characters of text"


def size_words(size: int, *, trim: bool = True) -> str:
    """25.0 MB, or 20 MB with ``trim``; kilobytes below a megabyte."""
    if size < 1024:
        return f"{size} bytes"
    number, unit = (size / MIB, "MB") if size >= MIB else (size / 1024, "KB")
    shown = f"{number:.1f}"
    return f"{shown.removesuffix('.0') if trim else shown} {unit}"
