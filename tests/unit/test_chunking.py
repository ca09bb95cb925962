"""chunk_text: exact offsets, structure-aware breaks, overlap, sections, pages, speed."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from core.ingestion.chunking import Chunk, chunk_text

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
]


def sentence(rng: random.Random, *, words: tuple[int, int] = (4, 30)) -> str:
    picked = [rng.choice(WORDS) for _ in range(rng.randint(*words))]
    return " ".join([picked[0].capitalize(), *picked[1:]]) + rng.choice(".!?")


def paragraph(rng: random.Random, sentences: tuple[int, int] = (1, 10)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def articles(seed: int, paragraphs: int = 60) -> str:
    """SQuAD-like: paragraphs of sentences joined by blank lines."""
    rng = random.Random(seed)
    return "\n\n".join(paragraph(rng) for _ in range(paragraphs))


def assert_invariants(text: str, chunks: list[Chunk], *, size: int, overlap: int) -> None:
    covered = bytearray(len(text))
    for position, chunk in enumerate(chunks):
        assert chunk.index == position
        assert chunk.text == text[chunk.start : chunk.end]
        assert 0 < len(chunk.text) <= size
        assert chunk.text.strip() == chunk.text, "chunks neither start nor end with whitespace"
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        assert before.end < after.end
        assert before.end - after.start <= overlap
    uncovered = [i for i, flag in enumerate(covered) if not flag and not text[i].isspace()]
    assert uncovered == [], "every non-space character is in some chunk"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, 150), (100, -1)])
def test_rejects_bad_size_and_overlap(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("some text", size=size, overlap=overlap)


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n\t ") == []


def test_short_text_is_one_chunk_without_surrounding_whitespace() -> None:
    text = "\n\n  Hello there. General Kenobi.  \n"
    [chunk] = chunk_text(text)
    assert chunk == Chunk(0, "Hello there. General Kenobi.", 4, 32, None, None)


def test_random_text_keeps_every_invariant() -> None:
    """Property-style: many random texts and sizes, including nasty characters."""
    rng = random.Random(1234)
    alphabet = ["a", "b", "Z", " ", " ", "\n", "\n\n", ".", "! ", "# ", "é", "\t", "```"]
    for _ in range(300):
        size = rng.randint(5, 300)
        overlap = rng.randint(0, size - 1)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 1500)))
        chunks = chunk_text(text, size=size, overlap=overlap)
        assert_invariants(text, chunks, size=size, overlap=overlap)
        assert chunks == chunk_text(text, size=size, overlap=overlap), "deterministic"


def test_prose_invariants_for_several_sizes() -> None:
    text = articles(7, paragraphs=80)
    for size, overlap in [(1000, 200), (400, 100), (200, 0), (120, 119)]:
        assert_invariants(
            text, chunk_text(text, size=size, overlap=overlap), size=size, overlap=overlap
        )


def test_short_paragraphs_are_packed_whole_without_overlap() -> None:
    rng = random.Random(3)
    paragraphs = [paragraph(rng, (1, 2))[:300] for _ in range(40)]
    paragraphs = [p for p in paragraphs if p]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, size=1000, overlap=200)
    assert len(chunks) > 3
    for chunk in chunks:
        pieces = chunk.text.split("\n\n")
        assert all(piece in paragraphs for piece in pieces), "only whole paragraphs"
    for before, after in itertools.pairwise(chunks):
        assert after.start > before.end, "no overlap across a paragraph break"
    assert sum(len(c.text) for c in chunks) > 0.5 * 1000 * (len(chunks) - 1)


def test_long_paragraph_splits_at_sentences_with_overlap() -> None:
    rng = random.Random(5)
    text = " ".join(sentence(rng, words=(5, 15)) for _ in range(80))
    chunks = chunk_text(text, size=500, overlap=150)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text[-1] in ".!?"
        assert chunk.start == 0 or text[chunk.start - 2 : chunk.start] in (". ", "! ", "? ")
    overlaps = [a.end - b.start for a, b in itertools.pairwise(chunks)]
    assert all(n <= 150 for n in overlaps)
    gaps = [text[a.end : b.start] for a, b in itertools.pairwise(chunks) if b.start > a.end]
    assert all(not gap.strip() for gap in gaps), "no text is skipped"
    assert sum(n > 0 for n in overlaps) >= len(overlaps) // 2, "overlap is carried"


def test_squad_like_chunks_never_start_or_end_mid_sentence() -> None:
    text = articles(11, paragraphs=150)
    chunks = chunk_text(text, size=1000, overlap=200)
    for chunk in chunks:
        assert chunk.text[-1] in ".!?"
        assert chunk.start == 0 or text[chunk.start - 2 : chunk.start] in (
            ". ",
            "! ",
            "? ",
            "\n\n",
        )


def test_text_without_sentences_splits_between_words_and_overlaps_on_words() -> None:
    rng = random.Random(9)
    text = " ".join(rng.choice(WORDS) for _ in range(2000))
    chunks = chunk_text(text, size=300, overlap=60)
    assert_invariants(text, chunks, size=300, overlap=60)
    for chunk in chunks:
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "
    overlaps = [a.end - b.start for a, b in itertools.pairwise(chunks)]
    assert min(overlaps) > 0


def test_lines_are_kept_whole_when_there_are_no_sentences() -> None:
    rows = [f"name: person {i}; team: blue; score: {i * 7}" for i in range(300)]
    text = "\n".join(rows)
    chunks = chunk_text(text, size=400, overlap=100)
    for chunk in chunks:
        assert all(line in rows for line in chunk.text.split("\n"))


def test_a_word_longer_than_size_is_hard_split() -> None:
    word = "x" * 2500
    text = f"Short intro here. {word} And an ending."
    chunks = chunk_text(text, size=1000, overlap=100)
    assert_invariants(text, chunks, size=1000, overlap=100)
    assert max(len(c.text) for c in chunks) == 1000
    joined = "".join(c.text for c in chunks if set(c.text) == {"x"})
    assert len(joined) >= 1000


def test_overlap_zero_gives_disjoint_chunks() -> None:
    text = articles(13, paragraphs=30)
    chunks = chunk_text(text, size=300, overlap=0)
    for before, after in itertools.pairwise(chunks):
        assert after.start >= before.end


def test_sections_come_from_the_nearest_heading_and_chunks_do_not_cross_them() -> None:
    rng = random.Random(21)
    parts = ["Preface text before any heading."]
    titles = []
    for number in range(6):
        titles.append(f"Part {number}")
        parts.append(f"## Part {number}")
        parts.extend(paragraph(rng) for _ in range(rng.randint(1, 4)))
    text = "\n\n".join(parts)
    chunks = chunk_text(text, size=600, overlap=100)
    assert chunks[0].section is None
    assert chunks[0].text == "Preface text before any heading."
    for chunk in chunks[1:]:
        heading_start = text.rfind("## ", 0, chunk.start + 3)
        expected = text[heading_start + 3 : text.index("\n", heading_start)]
        assert chunk.section == expected
        assert chunk.text.count("## ") <= 1
        assert "## " not in chunk.text or chunk.text.startswith("## ")
    assert {c.section for c in chunks[1:]} == set(titles)


def test_a_run_of_headings_stays_with_its_body_and_takes_the_last_title() -> None:
    text = "# Guide\n\n## Install\n\nRun the installer. Then restart.\n\n## Use\n\nOpen the app."
    chunks = chunk_text(text, size=1000, overlap=100)
    assert [c.text for c in chunks] == [
        "# Guide\n\n## Install\n\nRun the installer. Then restart.",
        "## Use\n\nOpen the app.",
    ]
    assert [c.section for c in chunks] == ["Install", "Use"]


def test_hash_lines_in_code_fences_are_not_headings() -> None:
    text = "## Setup\n\n```\n# install deps\npip install x\n```\n\nDone now."
    [chunk] = chunk_text(text, size=1000, overlap=0)
    assert chunk.section == "Setup"
    assert chunk_text("#hashtag is not a heading", size=100, overlap=0)[0].section is None


def test_heading_with_closing_hashes() -> None:
    [chunk] = chunk_text("### Closing ###\n\nBody.", size=100, overlap=0)
    assert chunk.section == "Closing"


def test_pages_map_to_the_page_a_chunk_starts_on() -> None:
    rng = random.Random(17)
    page_texts = [paragraph(rng, (8, 12)) for _ in range(5)]
    pages, offset = [], 0
    for number, page_text in enumerate(page_texts, start=1):
        pages.append((offset, number))
        offset += len(page_text) + 2
    text = "\n\n".join(page_texts)
    chunks = chunk_text(text, size=300, overlap=50, pages=pages)
    for chunk in chunks:
        expected = max(number for start, number in pages if start <= chunk.start)
        assert chunk.page == expected
    assert {c.page for c in chunks} == {1, 2, 3, 4, 5}
    assert all(c.page is None for c in chunk_text(text, size=300, overlap=50))


def test_non_ascii_offsets_are_character_offsets() -> None:
    text = "Ünïcödé façade. " * 100 + "日本語のテキスト。" * 50
    chunks = chunk_text(text, size=200, overlap=40)
    assert_invariants(text, chunks, size=200, overlap=40)


def test_five_megabytes_chunk_in_under_two_seconds() -> None:
    rng = random.Random(99)
    parts, length = [], 0
    while length < 5_000_000:
        part = paragraph(rng) if rng.random() > 0.03 else f"## Heading {length}"
        parts.append(part)
        length += len(part) + 2
    text = "\n\n".join(parts)
    for sample in (text, "x" * 5_000_000, "word " * 1_000_000):
        began = time.perf_counter()
        chunks = chunk_text(sample, size=1000, overlap=200)
        elapsed = time.perf_counter() - began
        assert elapsed < 2.0, f"{elapsed:.2f}s for {len(sample)} characters"
        assert len(chunks) >= len(sample) // 1000
        assert all(c.text == sample[c.start : c.end] for c in chunks)
