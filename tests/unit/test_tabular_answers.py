"""Offline answers from CSV and JSON sources: the matching record's identifier and the fields
the question asks about, not the whole record; the citation quote is still the chunk's text."""

from __future__ import annotations

import json
import uuid

from core.generation.base import Source
from core.generation.citations import parse_and_validate, quote_sentences
from core.generation.extractive import extractive_answer
from core.generation.records import split_records
from core.ingestion.chunking import chunk_text
from core.ingestion.extract import extract

PEOPLE_CSV = b"""name,team,email,phone,office,start_date
Ada Lovelace,Core,ada@example.com,+44 20 7946 0001,London,2019-04-01
Bob Marley,Ops,bob@example.com,+1 555 0102,Kingston,2021-09-15
Cy Twombly,Design,cy@example.com,+39 06 555 0103,Rome,2018-01-08
Dee Dee Bridgewater,Sales,dee@example.com,+1 555 0104,Memphis,2020-06-30
"""
SERVICES_JSON = json.dumps(
    [
        {
            "service": "billing",
            "owner": "Ada Lovelace",
            "oncall": "#billing-oncall",
            "port": 8443,
            "runbook": "https://wiki.example/billing",
        },
        {
            "service": "search",
            "owner": "Bob Marley",
            "oncall": "#search-oncall",
            "port": 9200,
            "runbook": "https://wiki.example/search",
        },
        {
            "service": "payments",
            "owner": "Cy Twombly",
            "oncall": "#payments-oncall",
            "port": 7000,
            "runbook": "https://wiki.example/payments",
        },
    ]
).encode()


def sources(data: bytes, filename: str) -> list[Source]:
    """The file as ingestion extracts and chunks it, one source per chunk."""
    text = extract(data, filename).text
    return [
        Source(i, str(uuid.uuid4()), str(uuid.uuid4()), filename, c.text, None, c.start, c.end, 0.5)
        for i, c in enumerate(chunk_text(text), start=1)
    ]


def answer_lines(question: str, given: list[Source]) -> list[str]:
    text = extractive_answer(question, given).text
    assert text.startswith("> "), text  # the answer opens with the quote itself
    return [line for line in text.splitlines() if line.startswith("> ")]


def fold(text: str) -> str:
    return " ".join(text.split())


def test_a_csv_answer_gives_the_row_key_and_the_field_asked_for() -> None:
    given = sources(PEOPLE_CSV, "people.csv")
    assert answer_lines("What is Bob Marley's phone number?", given) == [
        "> name: Bob Marley; phone: +1 555 0102 [1]"
    ]
    # the identifier's words in another field (her e-mail) do not pick that field
    assert answer_lines("Which office is Cy Twombly in?", given) == [
        "> name: Cy Twombly; office: Rome [1]"
    ]


def test_a_json_answer_gives_the_object_key_and_the_field_asked_for() -> None:
    given = sources(SERVICES_JSON, "services.json")
    assert answer_lines("What port does the search service listen on?", given) == [
        "> service: search; port: 9200 [1]"
    ]
    # "owns" asks for the owner
    assert answer_lines("Who owns the payments service?", given) == [
        "> service: payments; owner: Cy Twombly [1]"
    ]


def test_the_expected_answer_type_picks_the_field() -> None:
    given = sources(PEOPLE_CSV, "people.csv")
    lines = answer_lines("When did Ada Lovelace join?", given)
    assert lines == ["> name: Ada Lovelace; start_date: 2019-04-01 [1]"]


def test_a_question_naming_no_field_gets_the_whole_record() -> None:
    given = sources(PEOPLE_CSV, "people.csv")
    (line,) = answer_lines("Tell me about Dee Dee Bridgewater", given)
    assert line.startswith("> name: Dee Dee Bridgewater; team: Sales; email: dee@example.com")
    assert "start_date: 2020-06-30 [1]" in line


def test_the_citation_quotes_the_record_as_the_chunk_holds_it() -> None:
    for data, filename, question, wanted in (
        (PEOPLE_CSV, "people.csv", "What is Bob Marley's phone number?", "+1 555 0102"),
        (SERVICES_JSON, "services.json", "What port does the search service use?", "9200"),
    ):
        given = sources(data, filename)
        result = extractive_answer(question, given)
        text, citations = parse_and_validate(result.text, given)
        assert [c.n for c in citations] == [1] and "[1]" in text  # the claim is supported
        quoted = quote_sentences(citations, result.best_sentences, question)
        quote = quoted[0].quote.removeprefix("… ").removesuffix(" …")
        assert wanted in quote
        assert fold(quote) in fold(given[0].text)


def test_prose_with_colons_and_semicolons_is_not_a_table() -> None:
    for prose in (
        "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people "
        "who gave their name to Normandy.\n\nThey were descended from Norse raiders.",
        "Command: `bench/answer_quality.py --write` (signals for the fit with\n"
        "`--dump FILE`). Machine: AMD EPYC.\nDate: 2026-12-06. Corpora: the SQuAD subset\n"
        "and the handbooks.",
        "    bot/        composition root and CLI: reads settings\n"
        "    adapters/   slack/, discord/, console/: translate platform events",
    ):
        assert split_records(prose) is None, prose
