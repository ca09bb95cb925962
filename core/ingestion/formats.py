"""Per-format readers: PDF, Word (.docx), CSV and JSON to plain text (HTML: ``markup``).

``extract`` decides what a file is and calls the reader for it. Headings from Word become
markdown '#' lines so the chunker can see the structure. Each reader refuses with
``UnsupportedFile`` in plain words when the file is damaged, locked or expands too far, and
counts pages, paragraphs and elements while it reads, before a library holds them all.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from itertools import zip_longest
from typing import Any

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from core.errors import UnsupportedFile
from core.ingestion.text import ExtractedText, ExtractLimits, TextCollector, normalise, size_words

_DOCX_HEADING = re.compile(r"Heading ([1-6])\b")
_PDF_ERRORS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
               AssertionError, OSError, RecursionError, ZeroDivisionError)  # fmt: skip
_DOCX_ERRORS = (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, TypeError,
                AttributeError, IndexError, etree.LxmlError, OSError)  # fmt: skip
_MAX_ZIP_MEMBERS = 10_000
_W_P = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}p"
_XML_PART = re.compile(r"\.(?:xml|rels)$", re.IGNORECASE)


def read_pdf(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    collector = TextCollector(filename, limits.max_chars)
    pages: list[tuple[int, int]] = []
    offset = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _unlock(reader, filename)
        _check_pages(reader, filename, limits.max_pages)
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


def _check_pages(reader: PdfReader, filename: str, max_pages: int) -> None:
    """Walk the page tree and refuse past ``max_pages`` pages, before pypdf lists every page
    (it builds all of them at the first ``len``). Loops and trees of nothing are damage."""
    stack: list[Any] = [reader.root_object.raw_get("/Pages")]
    seen: set[tuple[int, int]] = set()
    pages = nodes = 0
    while stack:
        reference = stack.pop()
        key = (reference.idnum, reference.generation) if hasattr(reference, "idnum") else None
        if key is not None and key in seen:
            raise ValueError("the page tree has a loop")
        if key is not None:
            seen.add(key)
        node = reference.get_object()
        nodes += 1
        if "/Kids" in node:
            stack.extend(node.raw_get("/Kids").get_object())
        else:
            pages += 1
        if pages > max_pages:
            raise UnsupportedFile(filename, f"it has more than {max_pages:,} pages")
        if nodes > 2 * max_pages + 1000:
            raise ValueError("the page tree is mostly empty")


def _pdf_title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return title.strip() or None if isinstance(title, str) else None


def read_docx(data: bytes, filename: str, limits: ExtractLimits) -> ExtractedText:
    _check_unpacked_size(data, filename, limits)
    _check_elements(data, filename, limits)
    collector = TextCollector(filename, limits.max_chars)
    title: str | None = None
    try:
        document = docx.Document(io.BytesIO(data))
        styles = _paragraph_styles(document)
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                line, is_title = _docx_paragraph(block, styles)
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


def _check_elements(data: bytes, filename: str, limits: ExtractLimits) -> None:
    """Stream every XML part, counting paragraphs and elements, and refuse as soon as either
    passes its cap: python-docx builds a tree of each part, some 600 bytes a paragraph.
    Entities are never expanded (no billion laughs) and nothing is fetched (no XXE)."""
    paragraphs = elements = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if not _XML_PART.search(name):
                    continue
                with archive.open(name) as part:
                    for counted in _xml_elements(part):
                        elements += 1
                        paragraphs += counted.tag == _W_P
                        if paragraphs > limits.max_paragraphs:
                            why = f"it has more than {limits.max_paragraphs:,} paragraphs"
                            raise UnsupportedFile(filename, why)
                        if elements > limits.max_elements:
                            why = f"it has more than {limits.max_elements:,} XML elements"
                            raise UnsupportedFile(filename, why)
    except _DOCX_ERRORS as exc:
        raise UnsupportedFile(filename, "the Word document is damaged and can't be read") from exc


def _xml_elements(part: Any) -> Iterator[Any]:
    """Each element of an XML stream as it closes; finished elements are freed as it goes."""
    events = etree.iterparse(
        part, events=("end",), resolve_entities=False, no_network=True, load_dtd=False
    )
    for _, element in events:
        yield element
        element.clear(keep_tail=True)
        while element.getprevious() is not None:
            del element.getparent()[0]


def _paragraph_styles(document: Any) -> dict[str | None, str]:
    """Paragraph style names by style id, None for the default style: what ``paragraph.style``
    finds, looked up once. python-docx scans every style for the default on each paragraph
    without a style of its own, a millisecond a paragraph."""
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    names: dict[str | None, str] = {None: (default.name or "") if default is not None else ""}
    for style in document.styles:
        if style.type == WD_STYLE_TYPE.PARAGRAPH and style.style_id is not None:
            names[style.style_id] = style.name or ""
    return names


def _docx_paragraph(paragraph: Paragraph, styles: dict[str | None, str]) -> tuple[str, bool]:
    """A paragraph as a line of text; headings become '#' lines. Also: is it the Title?"""
    text = paragraph.text.strip()
    if not text:
        return "", False
    style = styles.get(paragraph._p.style, styles[None])
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
    by blank lines and written without the list index. A stack of iterators, not of children:
    a list of millions holds no path string until its turn comes."""
    records = value if isinstance(value, list) else [value]
    for number, record in enumerate(records):
        if number and collector.parts and collector.parts[-1]:
            collector.add("")
        stack: list[Iterator[tuple[str, Any]]] = [iter((("", record),))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                continue
            path, item = step
            if isinstance(item, dict | list):
                stack.append(_json_children(path, item))
            else:
                scalar = item if isinstance(item, str) else json.dumps(item)
                collector.add(f"{path}: {scalar}" if path else scalar)


def _json_children(path: str, item: dict[str, Any] | list[Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(item, dict):
        for key, value in item.items():
            yield (f"{path}.{key}" if path else str(key)), value
    else:
        for index, value in enumerate(item):
            yield f"{path}[{index}]", value
