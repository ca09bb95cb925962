"""Per-format readers: PDF, Word (.docx), HTML, CSV and JSON to plain text.

``extract`` decides what a file is and calls the reader for it. Headings from Word and HTML
become markdown '#' lines so the chunker can see the structure. Each reader refuses with
``UnsupportedFile`` in plain words when the file is damaged, locked or expands too far.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
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
from core.ingestion.text import ExtractedText, ExtractLimits, TextCollector, normalise, size_words

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


def read_pdf(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    collector = TextCollector(filename, limits.max_chars)
    pages: list[tuple[int, int]] = []
    offset = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _unlock(reader, filename)
        title = _pdf_title(reader)
        for number, page in enumerate(reader.pages, start=1):
            page_text = normalise(page.extract_text() or "").strip()
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


def read_docx(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    _check_unpacked_size(data, filename, limits)
    collector = TextCollector(filename, limits.max_chars)
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
        raise UnsupportedFile(filename, f"it expands to more than {size_words(cap)} when unpacked")


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


def html_to_text(markup: str) -> tuple[str, str | None]:
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


def csv_lines(text: str, filename: str, collector: TextCollector) -> None:
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


def json_lines(value: Any, collector: TextCollector) -> None:
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
