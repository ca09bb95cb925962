"""extract / detect_kind on real files built in the test, and every refusal in plain words."""

from __future__ import annotations

import codecs
import json
import time

import pytest

from core.errors import UnsupportedFile
from core.ingestion.chunking import chunk_text
from core.ingestion.extract import ExtractedText, ExtractLimits, detect_kind, extract
from tests.fixtures_files import add_zip_member, encrypt_pdf, make_docx, make_pdf

MIB = 1024 * 1024
CAN_READ = "I can read .txt, .md, .pdf, .docx, .html, .csv and .json"


def refusal(data: bytes, filename: str, **limits: int) -> str:
    with pytest.raises(UnsupportedFile) as caught:
        extract(data, filename, limits=ExtractLimits(**limits))
    assert caught.value.filename == filename
    assert caught.value.user_message == f"I can't index {filename}: {caught.value.why}."
    return caught.value.why


# --- PDF -----------------------------------------------------------------------------------


def three_page_pdf() -> bytes:
    return make_pdf(
        [["Quarterly report (draft).", "Revenue grew."], [], ["Costs fell on page three."]],
        title="Q3 Report",
    )


def test_pdf_text_pages_and_title() -> None:
    result = extract(three_page_pdf(), "report.pdf")
    assert result.kind == "pdf"
    assert result.title == "Q3 Report"
    assert "Quarterly report (draft)." in result.text
    assert "Costs fell on page three." in result.text
    # Page 2 has no text, so it has no entry; page 3 keeps its real number.
    assert [number for _, number in result.pages] == [1, 3]
    assert result.text[result.pages[0][0] :].startswith("Quarterly report")
    assert result.text[result.pages[1][0] :].startswith("Costs fell")


def test_pdf_pages_flow_into_chunk_pages() -> None:
    pages = [[f"Page {n} sentence {i} talks about topic {n}." for i in range(12)] for n in (1, 2)]
    result = extract(make_pdf(pages), "two.pdf")
    chunks = chunk_text(result.text, size=200, overlap=40, pages=result.pages)
    for chunk in chunks:
        assert chunk.page == int(chunk.text.split()[1]), chunk.text
    assert {c.page for c in chunks} == {1, 2}


def test_pdf_detected_by_content_whatever_the_name() -> None:
    assert detect_kind(three_page_pdf(), "report.txt") == "pdf"
    assert detect_kind(three_page_pdf(), "report") == "pdf"
    assert extract(three_page_pdf(), "scan-0001").kind == "pdf"


@pytest.mark.parametrize(
    "damage",
    [
        lambda pdf: pdf[: len(pdf) // 2],
        lambda pdf: pdf[:9] + bytes(range(256)) * 4,
        lambda pdf: b"%PDF-1.7\n" + b"garbage " * 50,
    ],
)
def test_damaged_pdf_is_refused(damage) -> None:
    assert refusal(damage(three_page_pdf()), "broken.pdf") == "the PDF is damaged and can't be read"


def test_file_named_pdf_that_is_not_a_pdf_is_refused() -> None:
    why = refusal(b"Just some notes, not a PDF at all.", "notes.pdf")
    assert why == "it is named .pdf but is not a PDF (damaged or misnamed)"
    with pytest.raises(UnsupportedFile):
        detect_kind(b"<html><body>hi</body></html>", "page.pdf")


def test_password_protected_pdf_is_refused() -> None:
    locked = encrypt_pdf(three_page_pdf(), user_password="s3cret")
    assert refusal(locked, "locked.pdf") == "the PDF is password-protected"


def test_pdf_with_only_an_owner_password_is_read() -> None:
    restricted = encrypt_pdf(three_page_pdf(), user_password="")
    assert "Revenue grew." in extract(restricted, "restricted.pdf").text


def test_pdf_without_text_is_refused_as_empty() -> None:
    why = refusal(make_pdf([[], []]), "scan.pdf")
    assert why.startswith("it contains no text")


def test_pdf_expanding_past_the_text_cap_is_refused() -> None:
    pages = [[f"Line {i} of page {n} has some words on it." for i in range(40)] for n in range(30)]
    pdf = make_pdf(pages)
    assert len(extract(pdf, "big.pdf").text) > 10_000
    assert refusal(pdf, "big.pdf", max_chars=10_000) == (
        "it expands to more than 10,000 characters of text"
    )


# --- DOCX ----------------------------------------------------------------------------------


def sample_docx(**kwargs) -> bytes:
    return make_docx(
        [
            ("title", "Onboarding Guide"),
            ("p", "Welcome to the team."),
            ("h1", "Accounts"),
            ("p", "Ask IT for a laptop."),
            ("bullet", "Email"),
            ("bullet", "Chat"),
            ("h2", "Passwords"),
            ("p", "Use the password manager."),
        ],
        table=[["Tool", "Owner"], ["VPN", "Ops"]],
        **kwargs,
    )


def test_docx_paragraphs_headings_lists_and_tables() -> None:
    result = extract(sample_docx(), "guide.docx")
    assert result.kind == "docx"
    assert result.title == "Onboarding Guide"
    assert result.text == (
        "# Onboarding Guide\n\nWelcome to the team.\n\n# Accounts\n\nAsk IT for a laptop.\n\n"
        "- Email\n\n- Chat\n\n## Passwords\n\nUse the password manager.\n\nTool | Owner\nVPN | Ops"
    )
    sections = {c.section for c in chunk_text(result.text, size=60, overlap=10)}
    assert {"Accounts", "Passwords"} <= sections


def test_docx_core_title_wins_over_title_paragraph() -> None:
    assert extract(sample_docx(title="Official title"), "g.docx").title == "Official title"


def test_docx_detected_by_content() -> None:
    assert detect_kind(sample_docx(), "guide") == "docx"
    assert detect_kind(sample_docx(), "guide.txt") == "docx"


def test_damaged_docx_is_refused() -> None:
    data = sample_docx()
    assert refusal(data[: len(data) // 2], "half.docx") == (
        "the Word document is damaged and can't be read"
    )
    assert refusal(b"plain text pretending", "fake.docx") == (
        "the Word document is damaged and can't be read"
    )
    broken_xml = add_zip_member(make_docx([]), "word/document.xml", zeros=10)
    assert refusal(broken_xml, "broken.docx") == "the Word document is damaged and can't be read"


def test_docx_zip_bomb_is_refused_before_unpacking() -> None:
    bomb = add_zip_member(sample_docx(), "word/media/image1.png", zeros=64 * MIB)
    assert len(bomb) < MIB
    began = time.perf_counter()
    why = refusal(bomb, "bomb.docx", max_bytes=MIB, max_chars=100_000)
    assert why == "it expands to more than 4 MB when unpacked"
    assert time.perf_counter() - began < 0.5, "refused from the zip directory, not by unpacking"


def test_docx_expanding_past_the_text_cap_is_refused() -> None:
    data = make_docx([("p", f"Paragraph number {i} with some text.") for i in range(300)])
    assert refusal(data, "long.docx", max_chars=2_000) == (
        "it expands to more than 2,000 characters of text"
    )


def test_encrypted_and_legacy_word_files_are_told_apart() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    encrypted = ole + "EncryptedPackage".encode("utf-16-le") + bytes(100)
    assert refusal(encrypted, "secret.docx") == "the Word document is password-protected"
    assert refusal(ole, "old.docx").startswith("it is an old-style Word file (.doc)")
    assert refusal(ole, "old-file").startswith("it is an old-style Office file")


# --- HTML ----------------------------------------------------------------------------------

PAGE = b"""<!DOCTYPE html>
<html><head><title>Team   Wiki</title><style>body { color: red }</style>
<script>alert("no")</script></head>
<body><noscript>enable js</noscript><template><p>hidden</p></template>
<h1>Deploys</h1><p>We deploy on <b>Tuesdays</b>.<br>Never on Fridays.</p>
<ul><li>Build</li><li>Ship</li></ul>
<h2>Rollback</h2><table><tr><th>Step</th><th>Who</th></tr><tr><td>Revert</td><td>On-call</td></tr>
</table><script>track()</script></body></html>"""


def test_html_drops_scripts_and_keeps_structure() -> None:
    result = extract(PAGE, "wiki.html")
    assert result.kind == "html"
    assert result.title == "Team Wiki"
    assert result.text == (
        "# Deploys\n\nWe deploy on Tuesdays.\nNever on Fridays.\n\n- Build\n- Ship\n\n"
        "## Rollback\n\nStep | Who\nRevert | On-call"
    )
    for hidden in ("alert", "track", "color", "enable js", "hidden"):
        assert hidden not in result.text


def test_a_txt_file_holding_a_whole_html_page_is_read_as_html() -> None:
    """Decision: a full HTML document is parsed as HTML whatever its name, so markup never
    reaches the index. An HTML-looking line inside ordinary text does not count."""
    assert extract(PAGE, "saved-page.txt").kind == "html"
    assert detect_kind(PAGE, "no-extension") == "html"
    assert detect_kind(b"Use <html> tags carefully.", "tips.txt") == "txt"


def test_html_fragment_named_html() -> None:
    result = extract(b"<p>Just a <em>fragment</em></p>", "frag.htm")
    assert (result.kind, result.text, result.title) == ("html", "Just a fragment", None)


def test_html_without_visible_text_is_empty() -> None:
    assert refusal(b"<html><script>x()</script></html>", "blank.html") == "it contains no text"


# --- CSV and JSON --------------------------------------------------------------------------


def test_csv_rows_become_named_pairs() -> None:
    data = b'name,team,note\r\nAda,Core,"likes, commas"\r\nBob,,\r\n,,\r\nCy,Ops,x,extra\r\n'
    result = extract(data, "people.csv")
    assert result.kind == "csv"
    assert result.text.split("\n") == [
        "name: Ada; team: Core; note: likes, commas",
        "name: Bob",
        "name: Cy; team: Ops; note: x; column 4: extra",
    ]


def test_csv_with_semicolons_and_header_only() -> None:
    assert extract(b"a;b\n1;2\n3;4\n", "semi.csv").text == "a: 1; b: 2\na: 3; b: 4"
    assert refusal(b"only,a,header\n", "head.csv") == "it contains no text"


def test_malformed_csv_is_refused() -> None:
    data = b'a,b\n"' + b"x" * 200_000 + b'",1\n'
    assert refusal(data, "huge-field.csv") == "the CSV file is malformed and can't be read"


def test_csv_expanding_past_the_text_cap_is_refused() -> None:
    header = ",".join(f"a_rather_long_column_name_{i}" for i in range(20))
    rows = "\n".join(",".join(["v"] * 20) for _ in range(100))
    data = (header + "\n" + rows).encode()
    assert len(data) < 10_000
    assert refusal(data, "wide.csv", max_chars=10_000).startswith("it expands to more than")


def test_json_is_flattened_to_searchable_paths() -> None:
    data = json.dumps(
        {"service": {"name": "billing", "ports": [80, 443]}, "owner": None, "on": True}
    )
    result = extract(data.encode(), "config.json")
    assert result.kind == "json"
    assert result.text.split("\n") == [
        "service.name: billing",
        "service.ports[0]: 80",
        "service.ports[1]: 443",
        "owner: null",
        "on: true",
    ]


def test_json_records_and_json_lines_are_separated_by_blank_lines() -> None:
    records = [{"id": 1, "q": "Où est la gare?"}, {"id": 2, "q": "Why?"}]
    expected = "id: 1\nq: Où est la gare?\n\nid: 2\nq: Why?"
    assert extract(json.dumps(records).encode(), "faq.json").text == expected
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    assert extract(lines, "faq.json").text == expected


def test_invalid_or_too_deep_json_is_indexed_as_text() -> None:
    """Decision: a .json file that doesn't parse (comments, trailing commas) keeps its text."""
    result = extract(b'{"a": 1, // comment\n}', "tsconfig.json")
    assert (result.kind, result.text) == ("txt", '{"a": 1, // comment\n}')
    deep = b"[" * 100_000 + b"]" * 100_000
    assert extract(deep, "deep.json").kind == "txt"


def test_json_with_no_values_is_empty() -> None:
    assert refusal(b'{"a": {}, "b": []}', "empty.json") == "it contains no text"


# --- text, decoding and sniffing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + "Zoë's\r\nline two\rthree".encode(), "Zoë's\nline two\nthree"),
        ("UTF-16 with BOM: naïve".encode("utf-16"), "UTF-16 with BOM: naïve"),
        ("Windows “quotes” café".encode("cp1252"), "Windows “quotes” café"),
        ("Latin-1 \x81 café".encode("latin-1"), "Latin-1 \x81 café"),
    ],
)  # fmt: skip
def test_text_decoding(data: bytes, expected: str) -> None:
    result = extract(data, "notes.txt")
    assert (result.kind, result.text, result.pages, result.title) == ("txt", expected, (), None)


def test_markdown_keeps_its_text_and_takes_its_title_from_the_first_heading() -> None:
    text = "Intro line\n\n# Handbook\n\n## Leave\n\nTake it."
    assert extract(text.encode(), "handbook.md") == ExtractedText(text, "md", (), "Handbook")
    assert extract(text.encode(), "handbook.markdown").kind == "md"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"# Title\n\nSome markdown.", "md"),
        (b"Just a plain note.\nWith two lines.", "txt"),
        (b'{"key": "value"}', "json"),
        (b"[1, 2, 3]", "json"),
        (b"id,name,team\n1,Ada,core\n2,Bob,ops\n3,Cy,ops\n", "csv"),
        (b"<!doctype html><p>hi</p>", "html"),
        (b"{not json at all", "txt"),
    ],
)
def test_files_without_an_extension_are_sniffed(data: bytes, kind: str) -> None:
    assert detect_kind(data, "README") == kind
    assert extract(data, "README").kind == kind


def test_a_dot_that_is_not_an_extension_does_not_refuse_the_file() -> None:
    assert detect_kind(b"Release notes text.", "Release notes 1.2") == "txt"
    assert detect_kind(b"Release notes text.", "v2.0 plan") == "txt"


def test_json_in_a_txt_file_stays_text() -> None:
    assert detect_kind(b'{"key": "value"}', "data.txt") == "txt"


def test_nul_bytes_are_stripped_from_extracted_text() -> None:
    data = b"A long enough text " * 600 + b"with a late NUL\x00 byte."
    assert "\x00" not in extract(data, "late-nul.txt").text


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["setup.exe", "photo.PNG", "sheet.xlsx", "archive.tar.gz"])
def test_unsupported_extensions_are_refused_in_plain_words(name: str) -> None:
    extension = "." + name.rsplit(".", 1)[1].lower()
    assert refusal(b"MZ\x90\x00binary", name) == f"it is a {extension} file, and {CAN_READ}"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00", "it is a Windows program"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "it is a PNG image"),
        (b"\x7fELF\x02\x01\x01\x00", "it is a program"),
        (b"PK\x03\x04" + bytes(40), "it is a zip archive"),
        (bytes(range(256)) * 8, "it looks like a binary file, not text"),
        (bytes(range(1, 256)) * 8, "it looks like a binary file, not text"),
        (b"text with a NUL \x00 early", "it looks like a binary file, not text"),
    ],
)
def test_binary_content_is_refused_whatever_the_name(data: bytes, why: str) -> None:
    for name in ("mystery", "notes.txt", "data.csv"):
        assert refusal(data, name) == f"{why}, and {CAN_READ}"


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", "\ufeff".encode()])
def test_empty_files_are_refused(data: bytes) -> None:
    assert refusal(data, "empty.txt") == "it contains no text"


def test_oversized_file_is_refused_before_reading() -> None:
    data = b"a" * (25 * MIB)
    assert refusal(data, "huge.txt") == "it is 25.0 MB and the limit is 20 MB"
    assert refusal(b"x" * 3000, "small.txt", max_bytes=2048) == "it is 2.9 KB and the limit is 2 KB"


def test_text_over_the_character_cap_is_refused() -> None:
    assert refusal(b"word " * 300, "long.txt", max_chars=1000) == (
        "it has more than 1,000 characters of text"
    )
    assert extract(b"word " * 200, "ok.txt", limits=ExtractLimits(max_chars=1000)).kind == "txt"


def test_html_over_the_character_cap_is_refused() -> None:
    data = b"<html><body>" + b"<p>some words here</p>" * 200 + b"</body></html>"
    assert refusal(data, "long.html", max_chars=1000) == (
        "it expands to more than 1,000 characters of text"
    )
