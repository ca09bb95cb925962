"""Citation parsing against hostile model output."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from core.generation.base import Source
from core.generation.citations import (
    QUOTE_CHARS,
    best_quote,
    parse_and_validate,
)
from core.types import Citation


def make_sources() -> list[Source]:
    texts = [
        ("Handbook", "Paris is the capital of France. It has about two million residents."),
        ("Atlas", "The Eiffel Tower is 330 metres tall. It was completed in 1889 for a fair."),
        ("Guide", "Berlin is the capital of Germany. The Spree flows through it."),
    ]
    return [
        Source(
            n=i,
            chunk_id=str(uuid.uuid4()),
            document_id=str(uuid.uuid4()),
            title=title,
            text=text,
            source_url=f"https://example.test/{i}",
            start=10 * i,
            end=10 * i + len(text),
            score=1.0 / i,
        )
        for i, (title, text) in enumerate(texts, start=1)
    ]


SOURCES = make_sources()


def numbers(citations: Sequence[Citation]) -> list[tuple[int, str]]:
    return [(c.n, c.title) for c in citations]


def test_valid_citations_build_full_entries() -> None:
    text, citations = parse_and_validate(
        "Paris is the capital of France [1]. The tower was completed in 1889 [2].", SOURCES
    )
    assert text == "Paris is the capital of France [1]. The tower was completed in 1889 [2]."
    first, second = citations
    assert first.chunk_id == uuid.UUID(SOURCES[0].chunk_id)
    assert first.document_id == uuid.UUID(SOURCES[0].document_id)
    assert (first.n, first.title, first.source_url) == (1, "Handbook", "https://example.test/1")
    assert (first.start, first.end, first.score) == (SOURCES[0].start, SOURCES[0].end, 1.0)
    assert first.quote == "Paris is the capital of France."
    assert second.quote == "It was completed in 1889 for a fair."


def test_markers_are_renumbered_in_order_of_first_use() -> None:
    text, citations = parse_and_validate("Berlin [3]. Paris [1]. Berlin again [3].", SOURCES)
    assert text == "Berlin [1]. Paris [2]. Berlin again [1]."
    assert numbers(citations) == [(1, "Guide"), (2, "Handbook")]


def test_markers_beyond_the_sources_are_dropped() -> None:
    text, citations = parse_and_validate("Paris is big [7]. It is old [1][9].", SOURCES)
    assert text == "Paris is big. It is old [1]."
    assert numbers(citations) == [(1, "Handbook")]


@pytest.mark.parametrize("marker", ["[0]", "[-1]", "[99999999999999999999]", "[4]"])
def test_impossible_numbers_are_dropped(marker: str) -> None:
    text, citations = parse_and_validate(f"Paris is the capital {marker} of France.", SOURCES)
    assert text == "Paris is the capital of France."
    assert citations == []


def test_repeats_collapse() -> None:
    text, citations = parse_and_validate("Paris [1][1] and [2] [2], [2].", SOURCES)
    assert text == "Paris [1] and [2]."
    assert len(citations) == 2


def test_list_forms_and_ranges() -> None:
    text, citations = parse_and_validate("Capitals [1,3]. All [1-3]. Two [2; 1].", SOURCES)
    assert text == "Capitals [1][2]. All [1][3][2]. Two [3][1]."
    assert numbers(citations) == [(1, "Handbook"), (2, "Guide"), (3, "Atlas")]


def test_footnote_and_nested_forms() -> None:
    text, citations = parse_and_validate("Paris [^1]. Berlin [[3]]. Tower [[2], [1]].", SOURCES)
    assert text.startswith("Paris [1]. Berlin [2].")
    assert numbers(citations)[:2] == [(1, "Handbook"), (2, "Guide")]


def test_brackets_inside_code_are_left_alone() -> None:
    answer = (
        "The Eiffel Tower, `items[2]` in Python, is 330 metres tall [2].\n\n"
        "```python\nvalues[1] = values[3]\n```\n"
        "Then read `[1]`: Berlin is the capital of Germany [3]."
    )
    text, citations = parse_and_validate(answer, SOURCES)
    assert "`items[2]`" in text
    assert "values[1] = values[3]" in text
    assert "`[1]`" in text
    assert text.endswith("capital of Germany [2].")
    assert numbers(citations) == [(1, "Atlas"), (2, "Guide")]


def test_unclosed_fence_protects_to_the_end() -> None:
    text, citations = parse_and_validate("See [1].\n```\nx[2] and [3]", SOURCES)
    assert text == "See [1].\n```\nx[2] and [3]"
    assert numbers(citations) == [(1, "Handbook")]


def test_no_citations_at_all() -> None:
    text, citations = parse_and_validate("The sources don't say.", SOURCES)
    assert text == "The sources don't say."
    assert citations == []


def test_citations_gathered_at_the_end() -> None:
    answer = "Paris is the capital of France and the tower is 330 metres tall.\n\n[2][1]"
    text, citations = parse_and_validate(answer, SOURCES)
    assert text.endswith("\n\n[1][2]")
    assert numbers(citations) == [(1, "Atlas"), (2, "Handbook")]
    assert citations[0].quote == "The Eiffel Tower is 330 metres tall."


def test_marker_leading_a_line_quotes_the_following_claim() -> None:
    text, citations = parse_and_validate("[3] The Spree flows through Berlin.", SOURCES)
    assert text == "[1] The Spree flows through Berlin."
    assert citations[0].quote == "The Spree flows through it."


def test_markdown_links_and_words_in_brackets_are_not_citations() -> None:
    answer = (
        "The Eiffel Tower is 330 metres tall; see [the docs](https://x.test) and "
        "[1](https://y.test) [citation needed] [2]."
    )
    text, citations = parse_and_validate(answer, SOURCES)
    assert "[the docs](https://x.test)" in text
    assert "[1](https://y.test)" in text
    assert "[citation needed]" in text
    assert numbers(citations) == [(1, "Atlas")]


def test_dropped_marker_between_words_keeps_them_apart() -> None:
    text, _ = parse_and_validate("Paris[9]is nice [8]\nNext line.", SOURCES)
    assert text == "Paris is nice\nNext line."


def test_empty_sources_drop_every_marker() -> None:
    text, citations = parse_and_validate("Paris [1].", [])
    assert (text, citations) == ("Paris.", [])


def test_quote_is_short_and_centred_on_the_claim() -> None:
    filler = "This clause talks about unrelated municipal matters at great length, "
    long_sentence = filler * 6 + "while the harbour lighthouse was rebuilt in 1921 by engineers."
    quote = best_quote(long_sentence, "The harbour lighthouse was rebuilt in 1921.")
    assert len(quote) <= QUOTE_CHARS + 4
    assert "lighthouse was rebuilt in 1921" in quote
    assert quote.startswith("… ")


def test_the_quote_is_the_sentence_with_the_claims_rare_terms_not_the_longest_overlap() -> None:
    source = (
        "The Normans of Normandy ruled England, and the Normans of England held Normandy for a "
        "century after the conquest. "
        "In 1107 Bohemond besieged Dyrrachium. "
        "The Normans of England spoke French."
    )
    # the claim repeats the context's common words (four of them in the first sentence), and
    # its news (Bohemond, Dyrrachium, 1107) is in the second sentence only
    claim = "After the conquest the Normans of Normandy and England attacked Dyrrachium under "
    claim += "Bohemond in 1107."
    assert best_quote(source, claim) == "In 1107 Bohemond besieged Dyrrachium."


def test_the_window_over_a_long_sentence_keeps_the_rare_terms() -> None:
    common = "Normans " * 8
    sentence = (
        f"{common}held lands everywhere, and much later, after many further campaigns and "
        "sieges across the south of Italy and the island of Sicily, Bohemond took the city "
        "of Valona in the spring of 1107."
    )
    other = "The Normans held lands. The Normans were many."
    quote = best_quote(f"{other} {sentence}", "The Normans: Bohemond took Valona in 1107.")
    assert "Bohemond took the city of Valona" in quote
    assert len(quote) <= QUOTE_CHARS + 4


def test_source_references_are_stripped_from_quotes() -> None:
    quote = best_quote("Rome was founded in 753 BC.[12] It grew.", "Rome was founded")
    assert quote == "Rome was founded in 753 BC."


def test_a_claim_cited_to_the_wrong_source_is_re_pointed_to_the_one_that_holds_it() -> None:
    text, citations = parse_and_validate(
        "Paris is the capital of France [1]. The Eiffel Tower was completed in 1889 [1].",
        SOURCES,
    )
    assert text == (
        "Paris is the capital of France [1]. The Eiffel Tower was completed in 1889 [2]."
    )
    assert numbers(citations) == [(1, "Handbook"), (2, "Atlas")]
    assert citations[1].quote == "It was completed in 1889 for a fair."


def test_a_claim_no_source_holds_loses_its_marker() -> None:
    text, citations = parse_and_validate(
        "The on-call engineer hands over every Monday at 10:00 [2].", SOURCES
    )
    assert text == "The on-call engineer hands over every Monday at 10:00."
    assert citations == []


def test_a_wrong_number_is_not_supported_by_a_source_with_the_same_words() -> None:
    text, citations = parse_and_validate("The Eiffel Tower is 500 metres tall [2].", SOURCES)
    assert "[" not in text and citations == []


def test_a_claim_two_sources_hold_together_keeps_both() -> None:
    text, citations = parse_and_validate(
        "Paris is the capital of France and the tower is 330 metres tall [1][2].", SOURCES
    )
    assert text.endswith("tall [1][2].")
    assert numbers(citations) == [(1, "Handbook"), (2, "Atlas")]
