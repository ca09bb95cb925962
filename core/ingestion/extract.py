"""Turn an uploaded file's bytes into plain text, refusing in plain words what can't be read.

The type is decided from the content as well as the name: PDF and Word files are recognised by
their magic bytes, and a whole HTML page is parsed as HTML whatever it is called. A file called
.pdf or .docx must really be one. Other text keeps the type its name gives (a .txt file that
happens to hold JSON is indexed as the text it is); a file without an extension is sniffed.
Headings from Word and HTML become markdown '#' lines so the chunker can see the structure.
Everything here is synchronous CPU work: callers run ``extract`` in a worker thread.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import docx
from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from core.errors import UnsupportedFile

_MIB = 1024 * 1024
_KINDS_BY_EXTENSION = {
    ".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx",
    ".html": "html", ".htm": "html", ".csv": "csv", ".json": "json",
}  # fmt: skip
SUPPORTED_EXTENSIONS = frozenset(_KINDS_BY_EXTENSION)
_CAN_READ = "I can read .txt, .md, .pdf, .docx, .html, .csv and .json"
_EXTENSION = re.compile(r"\.([a-z][a-z0-9]{0,9})$")
_BINARY_SIGNATURES = (
    (b"MZ", "a Windows program"), (b"\x7fELF", "a program"), (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"), (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"PK", "a zip archive"),
)  # fmt: skip
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_MARKDOWN_HINT = re.compile(r"^(?: {0,3}#{1,6}[ \t]+\S| {0,3}```)", re.MULTILINE)
_FIRST_HEADING = re.compile(r"^ {0,3}#[ \t]+(\S.*?)[ \t#]*$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_DOCX_HEADING = re.compile(r"Heading ([1-6])\b")
_HTML_DROP = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_HTML_BLOCKS = (
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote",
    "pre", "ul", "ol", "dl", "dt", "dd", "table", "figure", "figcaption", "form", "hr",
    "address", "details", "summary",
)  # fmt: skip
_PDF_ERRORS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
               AssertionError, OSError, RecursionError, ZeroDivisionError)  # fmt: skip
_DOCX_ERRORS = (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, TypeError,
                AttributeError, IndexError, etree.LxmlError, OSError)  # fmt: skip
_MAX_ZIP_MEMBERS = 10_000


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """Plain text of a file. ``pages`` holds ``(start_offset, page_number)`` for PDFs."""

    text: str
    kind: str  # "txt" | "md" | "pdf" | "docx" | "html" | "csv" | "json"
    pages: tuple[tuple[int, int], ...] = ()
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """How big a file may be, and how much text it may expand to."""

    max_bytes: int = 20 * _MIB
    max_chars: int = 5_000_000


@dataclass(frozen=True, slots=True)
class _Sniffed:
    kind: str
    text: str = ""  # the decoded text, for text-based kinds
    json_value: Any = None


class _Collector:
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
            raise UnsupportedFile(self.filename, _expands_past(self.max_chars))

    def text(self, separator: str) -> str:
        return separator.join(self.parts)


def detect_kind(data: bytes, filename: str) -> str:
    """Decide what a file is from its content and name: "txt", "md", "pdf", "docx", "html",
    "csv" or "json". Raises ``UnsupportedFile`` for other types, binary data, or a .pdf or
    .docx name on something else."""
    return _sniff(data, filename).kind


def precheck(filename: str, size: int, *, limits: ExtractLimits = ExtractLimits()) -> None:
    """Refuse by name and declared size alone, before anything is downloaded."""
    _check_extension(filename)
    _check_size(filename, size, limits)


def _check_size(filename: str, size: int, limits: ExtractLimits) -> None:
    if size > limits.max_bytes:
        shown, limit = _size(size, trim=False), _size(limits.max_bytes)
        raise UnsupportedFile(filename, f"it is {shown} and the limit is {limit}")


def extract(
    data: bytes, filename: str, *, limits: ExtractLimits = ExtractLimits()
) -> ExtractedText:
    """Extract the text of a file, or raise ``UnsupportedFile`` saying why it can't be indexed:
    unsupported type, damaged, password-protected, empty, too big, or too much text."""
    precheck(filename, len(data), limits=limits)
    sniffed = _sniff(data, filename)
    if sniffed.kind == "pdf":
        result = _extract_pdf(data, filename, limits)
    elif sniffed.kind == "docx":
        result = _extract_docx(data, filename, limits)
    else:
        result = _extract_text(sniffed, filename, limits)
    if not result.text.strip():
        why = "it contains no text"
        if result.kind == "pdf":
            why += " (it may be scanned pages without a text layer)"
        raise UnsupportedFile(filename, why)
    if len(result.text) > limits.max_chars:
        raise UnsupportedFile(filename, _expands_past(limits.max_chars))
    return result


def _check_extension(filename: str) -> str:
    match = _EXTENSION.search(filename.lower())
    extension = f".{match.group(1)}" if match else ""
    if extension and extension not in _KINDS_BY_EXTENSION:
        raise UnsupportedFile(filename, f"it is a {extension} file, and {_CAN_READ}")
    return extension


def _sniff(data: bytes, filename: str) -> _Sniffed:
    extension = _check_extension(filename)
    if not data.strip():
        raise UnsupportedFile(filename, "it contains no text")
    if data[:1024].lstrip()[:5] == b"%PDF-" or (extension == ".pdf" and b"%PDF-" in data[:1024]):
        return _Sniffed("pdf")
    if extension == ".pdf":
        raise UnsupportedFile(filename, "it is named .pdf but is not a PDF (damaged or misnamed)")
    if data.startswith(b"PK") and _is_docx(data):
        return _Sniffed("docx")
    if extension == ".docx":
        raise UnsupportedFile(filename, _docx_mismatch(data))
    text = _decode(data)
    if text is None:
        description = next((d for magic, d in _BINARY_SIGNATURES if data.startswith(magic)), None)
        if data.startswith(_OLE_MAGIC):
            description = "an old-style Office file (.doc, .xls or .ppt)"
        why = f"it is {description}" if description else "it looks like a binary file, not text"
        raise UnsupportedFile(filename, f"{why}, and {_CAN_READ}")
    return _sniff_text(_normalise(text), extension)


def _sniff_text(text: str, extension: str) -> _Sniffed:
    head = text[:512].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or extension in (".html", ".htm"):
        return _Sniffed("html", text)
    if extension in (".json", "") and text.lstrip()[:1] in ("{", "["):
        parsed = _parse_json(text)
        if parsed is not None:
            return _Sniffed("json", text, parsed[0])
    if extension == ".csv" or (extension == "" and _looks_like_csv(text)):
        return _Sniffed("csv", text)
    if extension in (".md", ".markdown") or (extension == "" and _MARKDOWN_HINT.search(text)):
        return _Sniffed("md", text)
    return _Sniffed("txt", text)


def _decode(data: bytes) -> str | None:
    """Decode text: UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252/Latin-1 only if
    the result looks like text. None means binary."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        if b"\x00" in data[:8192]:
            return None
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if len(_CONTROL.findall(text)) > 1 + len(text) // 100:
        return None
    return text


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.removeprefix("\ufeff")


def _parse_json(text: str) -> tuple[Any] | None:
    """The parsed value (in a 1-tuple, since null is a value), or None if it isn't JSON.
    JSON Lines (one value per line) parses to a list."""
    try:
        return (json.loads(text),)
    except (ValueError, RecursionError):
        pass
    try:
        return ([json.loads(line) for line in text.splitlines() if line.strip()],)
    except (ValueError, RecursionError):
        return None


def _looks_like_csv(text: str) -> bool:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return False
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if len(lines) < 3:
        return False
    widths = {len(row) for row in csv.reader(lines[:-1], dialect)}
    return len(widths) == 1 and widths.pop() >= 2


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _docx_mismatch(data: bytes) -> str:
    if data.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            return "the Word document is password-protected"
        return "it is an old-style Word file (.doc); save it as .docx and send it again"
    return "the Word document is damaged and can't be read"


def _extract_text(sniffed: _Sniffed, filename: str, limits: ExtractLimits) -> ExtractedText:
    text, kind = sniffed.text, sniffed.kind
    if kind == "html":
        body, title = _html_to_text(text)
        return ExtractedText(body, kind, (), title)
    if kind in ("txt", "md"):
        if len(text) > limits.max_chars:
            raise UnsupportedFile(
                filename, f"it has more than {limits.max_chars:,} characters of text"
            )
        title = None
        if kind == "md" and (heading := _FIRST_HEADING.search(text)) is not None:
            title = heading.group(1)
        return ExtractedText(text, kind, (), title)
    collector = _Collector(filename, limits.max_chars)
    if kind == "json":
        _json_lines(sniffed.json_value, collector)
    else:
        _csv_lines(text, filename, collector)
    return ExtractedText(collector.text("\n"), kind)


def _extract_pdf(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    collector = _Collector(filename, limits.max_chars)
    pages: list[tuple[int, int]] = []
    offset = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _unlock(reader, filename)
        title = _pdf_title(reader)
        for number, page in enumerate(reader.pages, start=1):
            page_text = _normalise(page.extract_text() or "").strip()
            if not page_text:
                continue
            if pages:
                offset += 2  # the "\n\n" joining pages
            pages.append((offset, number))
            collector.add(page_text)
            offset += len(page_text)
    except _PDF_ERRORS as exc:
        raise UnsupportedFile(filename, "the PDF is damaged and can't be read") from exc
    return ExtractedText(collector.text("\n\n"), "pdf", tuple(pages), title)


def _unlock(reader: PdfReader, filename: str) -> None:
    """Open a PDF that is encrypted with an empty user password; refuse a real password."""
    try:
        unlocked = reader.decrypt("")
    except (DependencyError, NotImplementedError) as exc:
        raise UnsupportedFile(filename, "the PDF is encrypted in a way I can't open") from exc
    if unlocked == PasswordType.NOT_DECRYPTED:
        raise UnsupportedFile(filename, "the PDF is password-protected")


def _pdf_title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return title.strip() or None if isinstance(title, str) else None


def _extract_docx(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    _check_unpacked_size(data, filename, limits)
    collector = _Collector(filename, limits.max_chars)
    title: str | None = None
    try:
        document = docx.Document(io.BytesIO(data))
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                line, is_title = _docx_paragraph(block)
                if line:
                    collector.add(line)
                    if is_title and title is None:
                        title = line.lstrip("# ")
            elif rows := _docx_table(block):
                collector.add(rows)
        title = (document.core_properties.title or "").strip() or title
    except _DOCX_ERRORS as exc:
        raise UnsupportedFile(filename, "the Word document is damaged and can't be read") from exc
    return ExtractedText(collector.text("\n\n"), "docx", (), title)


def _check_unpacked_size(data: bytes, filename: str, limits: ExtractLimits) -> None:
    """Refuse a zip bomb from the sizes in the zip directory, before anything is unpacked.
    python-docx reads every part, and zipfile never unpacks past a member's declared size."""
    cap = max(4 * limits.max_bytes, 10 * limits.max_chars)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsupportedFile(filename, "the Word document is damaged and can't be read") from exc
    if len(members) > _MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > cap:
        raise UnsupportedFile(filename, f"it expands to more than {_size(cap)} when unpacked")


def _docx_paragraph(paragraph: Paragraph) -> tuple[str, bool]:
    """A paragraph as a line of text; headings become '#' lines. Also: is it the Title?"""
    text = paragraph.text.strip()
    if not text:
        return "", False
    style = paragraph.style.name if paragraph.style is not None else ""
    style = style or ""
    if style == "Title":
        return "# " + " ".join(text.split()), True
    if heading := _DOCX_HEADING.match(style):
        return "#" * int(heading.group(1)) + " " + " ".join(text.split()), False
    if style.startswith("List"):
        return "- " + text, False
    return text, False


def _docx_table(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            value = " ".join(cell.text.split())
            if not cells or value != cells[-1]:  # merged cells repeat their text
                cells.append(value)
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _html_to_text(markup: str) -> tuple[str, str | None]:
    """Visible text with headings as '#' lines, list items as '- ' and table rows as
    'a | b'. An explicit stack, not tree edits: BeautifulSoup's inserts are linear in the
    number of siblings, which makes editing a big flat page quadratic."""
    soup = BeautifulSoup(markup, "lxml")
    title = " ".join(soup.title.get_text(" ").split()) or None if soup.title else None
    parts: list[str] = []
    stack: list[PageElement | str] = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and not isinstance(node, NavigableString):
            parts.append(node)  # a closing separator pushed below
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA
                parts.append(node)
        elif isinstance(node, Tag) and node.name not in _HTML_DROP:
            parts.append(_html_tag_text(node, stack))
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip(), title


def _html_tag_text(tag: Tag, stack: list[PageElement | str]) -> str:
    """The text that opens ``tag``; pushes its children (and what closes it) onto the stack."""
    if tag.name in _HTML_HEADINGS:
        heading = " ".join(tag.get_text(" ").split())
        return f"\n\n{'#' * int(tag.name[1])} {heading}\n\n" if heading else ""
    if tag.name == "tr":
        cells = [c.get_text(" ", strip=True) for c in tag.find_all(("td", "th"), recursive=False)]
        return " | ".join(c for c in cells if c) + "\n"
    if tag.name == "br":
        return "\n"
    opening = "\n- " if tag.name == "li" else ""
    if tag.name in _HTML_BLOCKS:
        opening = "\n\n"
        stack.append("\n\n")
    stack.extend(reversed(tag.contents))
    return opening


def _csv_lines(text: str, filename: str, collector: _Collector) -> None:
    """Each row as "column: value; column: value", named by the header row."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:16384], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    header: list[str] | None = None
    try:
        for row in csv.reader(io.StringIO(text), dialect):
            cells = [" ".join(cell.split()) for cell in row]
            if not any(cells):
                continue
            if header is None:
                header = [name or f"column {i}" for i, name in enumerate(cells, start=1)]
                continue
            pairs = enumerate(zip_longest(header, cells, fillvalue=""), start=1)
            collector.add("; ".join(f"{n or f'column {i}'}: {v}" for i, (n, v) in pairs if v))
    except csv.Error as exc:
        raise UnsupportedFile(filename, "the CSV file is malformed and can't be read") from exc


def _json_lines(value: Any, collector: _Collector) -> None:
    """Flatten JSON to "path.to[0].key: value" lines; records of a top-level list are separated
    by blank lines and written without the list index."""
    records = value if isinstance(value, list) else [value]
    for number, record in enumerate(records):
        if number and collector.parts and collector.parts[-1]:
            collector.add("")
        stack: list[tuple[str, Any]] = [("", record)]
        while stack:
            path, item = stack.pop()
            if isinstance(item, dict):
                children = [(f"{path}.{key}" if path else str(key), v) for key, v in item.items()]
                stack.extend(reversed(children))
            elif isinstance(item, list):
                stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(item)]))
            else:
                scalar = item if isinstance(item, str) else json.dumps(item)
                collector.add(f"{path}: {scalar}" if path else scalar)


def _expands_past(max_chars: int) -> str:
    return f"it expands to more than {max_chars:,} characters of text"


def _size(size: int, *, trim: bool = True) -> str:
    """25.0 MB, or 20 MB with ``trim``; kilobytes below a megabyte."""
    if size < 1024:
        return f"{size} bytes"
    number, unit = (size / _MIB, "MB") if size >= _MIB else (size / 1024, "KB")
    shown = f"{number:.1f}"
    return f"{shown.removesuffix('.0') if trim else shown} {unit}"
