"""Turn an uploaded file's bytes into plain text, refusing in plain words what can't be read.

The type is decided from the content as well as the name: PDF and Word files are recognised by
their magic bytes, and a whole HTML page is parsed as HTML whatever it is called. A file called
.pdf or .docx must really be one. Other text keeps the type its name gives (a .txt file that
happens to hold JSON is indexed as the text it is); a file without an extension is sniffed.
Headings from Word and HTML become markdown '#' lines so the chunker can see the structure.
Everything here is synchronous CPU work: ``core.ingestion.parsing`` runs it in a worker process.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from core.errors import UnsupportedFile
from core.ingestion.markup import html_to_text
from core.ingestion.text import (
    ExtractedText,
    ExtractLimits,
    TextCollector,
    expands_past,
    normalise,
    size_words,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ExtractLimits",
    "ExtractedText",
    "detect_kind",
    "extract",
    "precheck",
]

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
_JSON_ESCAPE = re.compile(r"\\.", re.DOTALL)
_JSON_STRING = re.compile(r'"[^"]*"')


@dataclass(frozen=True, slots=True)
class _Sniffed:
    kind: str
    text: str = ""  # the decoded text, for text-based kinds
    json_value: Any = None


def detect_kind(data: bytes, filename: str) -> str:
    """Decide what a file is from its content and name: "txt", "md", "pdf", "docx", "html",
    "csv" or "json". Raises ``UnsupportedFile`` for other types, binary data, or a .pdf or
    .docx name on something else."""
    return _sniff(data, filename, ExtractLimits()).kind


def precheck(filename: str, size: int, *, limits: ExtractLimits = ExtractLimits()) -> None:
    """Refuse by name and declared size alone, before anything is downloaded."""
    _check_extension(filename)
    _check_size(filename, size, limits)


def _check_size(filename: str, size: int, limits: ExtractLimits) -> None:
    if size > limits.max_bytes:
        shown, limit = size_words(size, trim=False), size_words(limits.max_bytes)
        raise UnsupportedFile(filename, f"it is {shown} and the limit is {limit}")


def extract(
    data: bytes, filename: str, *, limits: ExtractLimits = ExtractLimits()
) -> ExtractedText:
    """Extract the text of a file, or raise ``UnsupportedFile`` saying why it can't be indexed:
    unsupported type, damaged, password-protected, empty, too big, or too much text."""
    # pypdf and python-docx are imported where a file is read, not by every importer of this module
    from core.ingestion.formats import read_docx, read_pdf

    precheck(filename, len(data), limits=limits)
    sniffed = _sniff(data, filename, limits)
    if sniffed.kind == "pdf":
        result = read_pdf(data, filename, limits)
    elif sniffed.kind == "docx":
        result = read_docx(data, filename, limits)
    else:
        result = _extract_text(sniffed, filename, limits)
    if not result.text.strip():
        why = "it contains no text"
        if result.kind == "pdf":
            why += " (it may be scanned pages without a text layer)"
        raise UnsupportedFile(filename, why)
    if len(result.text) > limits.max_chars:
        raise UnsupportedFile(filename, expands_past(limits.max_chars))
    return result


def _check_extension(filename: str) -> str:
    match = _EXTENSION.search(filename.lower())
    extension = f".{match.group(1)}" if match else ""
    if extension and extension not in _KINDS_BY_EXTENSION:
        raise UnsupportedFile(filename, f"it is a {extension} file, and {_CAN_READ}")
    return extension


def _sniff(data: bytes, filename: str, limits: ExtractLimits) -> _Sniffed:
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
    return _sniff_text(normalise(text), extension, filename, limits)


def _sniff_text(text: str, extension: str, filename: str, limits: ExtractLimits) -> _Sniffed:
    head = text[:512].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or extension in (".html", ".htm"):
        return _Sniffed("html", text)
    if extension in (".json", "") and text.lstrip()[:1] in ("{", "["):
        _check_json_values(text, filename, limits.max_json_values)
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


def _check_json_values(text: str, filename: str, max_values: int) -> None:
    """Refuse JSON with more than ``max_values`` values before ``json.loads`` builds them.
    Counted on the text: commas and opening brackets, less those inside strings (found once
    escapes are dropped, so each quote pairs with the next, in one linear pass)."""
    if len(text) <= max_values or _punctuation(text) <= max_values:
        return  # every value takes a character, and no more values than punctuation
    bare = _JSON_ESCAPE.sub("", text)
    inside = sum(_punctuation(string.group()) for string in _JSON_STRING.finditer(bare))
    if _punctuation(bare) - inside > max_values:
        raise UnsupportedFile(filename, f"it has more than {max_values:,} JSON values")


def _punctuation(text: str) -> int:
    return text.count(",") + text.count("[") + text.count("{")


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
        body, title = html_to_text(text, filename, max_elements=limits.max_elements)
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
    from core.ingestion.formats import csv_lines, json_lines

    collector = TextCollector(filename, limits.max_chars)
    if kind == "json":
        json_lines(sniffed.json_value, collector)
    else:
        csv_lines(text, filename, collector)
    return ExtractedText(collector.text("\n"), kind)
