"""The Groq prompt asks for the answer first and carries only the sources that add something."""

from __future__ import annotations

from core.generation.base import Source
from core.generation.extractive import extractive_answer
from core.generation.prompt import build_messages, needed_sources


def source(n: int, text: str, cosine: float) -> Source:
    return Source(n, f"c{n}", f"d{n}", f"Doc {n}", text, None, 0, len(text), cosine)


VACATION = "Employees receive 25 days of paid vacation per year. Unused days expire in March."
CANTEEN = "The canteen serves lunch from noon. Vegetarian dishes are available daily."
PARKING = "The car park has forty spaces. Bicycles go in the racks by the door."
EXPIRY = "Vacation days that are not used by March 31 expire without pay."


def test_the_rules_ask_for_the_answer_first_and_only_the_sources_used() -> None:
    system = build_messages("q", [source(1, "x", 0.5)]).messages[0].content
    assert "Open with the direct answer in the first sentence" in system
    assert "Cite only the sources you use" in system


def test_sources_that_add_nothing_are_not_sent_and_the_rest_are_renumbered() -> None:
    question = "How many vacation days do employees get, and when do they expire?"
    given = [
        source(1, VACATION, 0.62),
        source(2, CANTEEN, 0.20),
        source(3, EXPIRY, 0.41),
        source(4, PARKING, 0.18),
    ]
    relevance = extractive_answer(question, given).source_scores
    assert len(relevance) == 4
    built = build_messages(question, given, relevance=relevance)
    assert [(s.n, s.chunk_id) for s in built.included_sources] == [(1, "c1"), (2, "c3")]
    user = built.messages[-1].content
    assert "[2] Doc 3\nVacation days that are not used" in user
    assert "canteen" not in user and "car park" not in user
    # without scores (a document summary), every source goes
    assert len(build_messages(question, given).included_sources) == 4


def test_the_first_source_and_close_cosines_always_go() -> None:
    given = [source(1, CANTEEN, 0.40), source(2, VACATION, 0.30), source(3, PARKING, 0.10)]
    question = "Where is lunch served?"
    # retrieval's first goes even when its sentences score low; a cosine within 0.15 of the
    # best goes too; the third, low on both, does not
    kept = needed_sources(question, given, [0.1, 1.0, 0.2])
    assert [s.chunk_id for s in kept] == ["c1", "c2"]
    kept = needed_sources(question, given, [1.0, 0.2, 0.2])
    assert [s.chunk_id for s in kept] == ["c1", "c2"]  # 0.30 is within 0.15 of 0.40
    assert needed_sources(question, given, [0.0, 0.0, 0.0]) == given  # nothing scored: all go
    assert needed_sources(question, given, [1.0]) == given  # not one score per source


def test_a_source_holding_the_other_part_of_the_question_goes() -> None:
    """Asked when on-call hands over and how many vacation days there are: the on-call page
    scores best, the vacation page holds the second part's words that no other source does."""
    oncall = "The on-call engineer hands over to the next one every Monday at 10:00."
    given = [source(1, oncall, 0.55), source(2, CANTEEN, 0.30), source(3, VACATION, 0.20)]
    question = "When does the on-call engineer hand over, and how many vacation days are there?"
    kept = needed_sources(question, given, [2.0, 0.1, 0.6])
    assert [s.chunk_id for s in kept] == ["c1", "c3"]
    # asked without the second part, the vacation page adds nothing
    kept = needed_sources("When does the on-call engineer hand over?", given, [2.0, 0.1, 0.6])
    assert [s.chunk_id for s in kept] == ["c1"]
