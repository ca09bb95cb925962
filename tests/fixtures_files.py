"""Build real document files in memory for tests: PDFs, encrypted PDFs, .docx and zip bombs."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import docx
from pypdf import PdfReader, PdfWriter


def _pdf_string(line: str) -> bytes:
    escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def make_pdf(pages: Sequence[Sequence[str]], *, title: str | None = None) -> bytes:
    """A minimal valid PDF, written byte by byte: one Helvetica text line per string.

    ``pages`` holds each page's lines; an empty page has no text at all (like a scan).
    """
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for pid, lines in zip(page_ids, pages, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (pid + 1)
        )
        ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
        ops += [_pdf_string(line) + b" Tj T*" for line in lines]
        ops.append(b"ET")
        stream = b"\n".join(ops) if lines else b""
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_ref = b""
    if title is not None:
        objects.append(b"<< /Title " + _pdf_string(title) + b" >>")
        info_ref = b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + info_ref + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def encrypt_pdf(data: bytes, *, user_password: str, owner_password: str = "owner") -> bytes:
    """Encrypt a PDF with RC4-128 (pypdf does RC4 without the cryptography package)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(
    blocks: Sequence[tuple[str, str]],
    *,
    table: Sequence[Sequence[str]] = (),
    title: str | None = None,
) -> bytes:
    """A real .docx from python-docx. ``blocks`` are (style, text): style "h1".."h6",
    "title", "bullet" or "p". The table, if any, comes last."""
    document = docx.Document()
    for style, text in blocks:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1]))
        elif style == "title":
            document.add_heading(text, level=0)
        elif style == "bullet":
            document.add_paragraph(text, style="List Bullet")
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    if title is not None:
        document.core_properties.title = title
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def add_zip_member(data: bytes, name: str, *, zeros: int) -> bytes:
    """Copy a zip (a .docx) with member ``name`` added or replaced by ``zeros`` zero bytes:
    tiny compressed and huge unpacked, which is what a zip bomb is."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            if item.filename != name:
                target.writestr(item, source.read(item.filename))
        with target.open(name, "w", force_zip64=True) as member:
            block = bytes(1024 * 1024)
            for _ in range(zeros // len(block)):
                member.write(block)
            member.write(bytes(zeros % len(block)))
    return out.getvalue()


def make_paragraph_docx(paragraphs: int, *, letters: str = "x") -> bytes:
    """A real .docx whose body is ``paragraphs`` one-character paragraphs (cycling through
    ``letters``), written straight into word/document.xml: python-docx would take minutes."""
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    runs = [f"<w:p><w:r><w:t>{c}</w:t></w:r></w:p>".encode() for c in letters]
    body = b"".join(runs[i % len(runs)] for i in range(paragraphs))
    xml = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        + f'<w:document xmlns:w="{namespace}"><w:body>'.encode()
        + body
        + b"</w:body></w:document>"
    )
    return replace_zip_member(make_docx([]), "word/document.xml", xml)


def replace_zip_member(data: bytes, name: str, content: bytes) -> bytes:
    """Copy a zip (a .docx) with member ``name`` replaced by ``content``, compressed."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            if item.filename != name:
                target.writestr(item, source.read(item.filename))
        target.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()
