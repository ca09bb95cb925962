"""The abstention gate: its signals and its decision rule."""

from __future__ import annotations

import uuid

from core.generation.base import Source
from core.generation.extractive import extractive_answer
from core.generation.gate import (
    DEFAULT_THRESHOLD,
    Evidence,
    answer_probability,
    evidence,
    should_answer,
)
from core.text import is_year, mentioned, unknown_names

TIME_OFF = (
    "Everyone gets paid time off (PTO) from their first day. Full-time employees receive "
    "25 days of PTO per calendar year. Up to five unused PTO days carry over."
)
EXPENSES = (
    "Submit every claim in Expensify within 30 days. When you travel for work you receive a "
    "meal per diem of 60 EUR per day. Alcohol is never reimbursed."
)


def make(*texts: str, cosines: tuple[float, ...]) -> list[Source]:
    return [
        Source(i, str(uuid.uuid4()), str(uuid.uuid4()), f"Doc {i}", t, None, 0, len(t), c)
        for i, (t, c) in enumerate(zip(texts, cosines, strict=True), start=1)
    ]


def signals(**values: float) -> Evidence:
    base = dict.fromkeys(Evidence.__dataclass_fields__, 0.5)
    return Evidence(**{**base, **values})


def test_signals_of_the_supporting_sentence() -> None:
    sources = make(EXPENSES, TIME_OFF, cosines=(0.40, 0.30))
    result = extractive_answer("How many days of PTO do full-time employees get?", sources)
    found = evidence(sources, result)
    assert found is not None
    assert found.similarity == 0.40  # the best chunk's cosine
    assert found.support_similarity == 0.30  # the chunk that holds the sentence
    assert found.dense_agrees == 0.5  # it is second by cosine
    assert found.lexical_agrees == 0.0  # and second in retrieval order
    assert found.coverage > 0.5  # "get" is not in the sentence
    assert found.names == 1.0  # "PTO" is in the sentence
    assert found.typed == 1.0  # "how many" expects a number, "25" is there
    assert found.negation_kept == 1.0


def test_a_missing_name_a_missing_number_and_a_lost_negation_show() -> None:
    sources = make(TIME_OFF, cosines=(0.5,))
    named = evidence(sources, extractive_answer("How many PTO days does Globex give?", sources))
    assert named is not None and named.names == 0.5  # PTO yes, Globex no
    untyped = evidence(sources, extractive_answer("When did PTO carry over start?", sources))
    assert untyped is not None and untyped.typed == 0.0
    negated = evidence(sources, extractive_answer("Which PTO days never carry over?", sources))
    assert negated is not None and negated.negation_kept == 0.0


def test_the_negation_may_be_in_the_sentence_quoted_after_the_best() -> None:
    """A question asking "if I don't answer" is answered by the passage's "If nobody
    acknowledges": the best sentence opens it, the one quoted after it holds the negation."""
    paging = (
        "When PagerDuty pages you, acknowledge the alert within 5 minutes. If nobody "
        "acknowledges within 5 minutes, the page escalates to the secondary on-call."
    )
    sources = make(paging, TIME_OFF, cosines=(0.45, 0.2))
    result = extractive_answer("What happens if I don't answer a page?", sources)
    assert result.text.startswith("> When PagerDuty pages you")
    assert "If nobody acknowledges" in result.text
    found = evidence(sources, result)
    assert found is not None and found.negation_kept == 1.0
    other = make(TIME_OFF, paging, cosines=(0.45, 0.2))  # only another passage says "no"
    lost = evidence(other, extractive_answer("Which PTO days do not carry over?", other))
    assert lost is not None and lost.negation_kept == 0.0


def test_the_pronoun_i_is_not_a_name() -> None:
    """A question in the first person ("Can I…", "I'm…") names nobody: the sentence that
    answers it holds no "I", and that must not count as a missing name."""
    sources = make(TIME_OFF, cosines=(0.5,))
    for question in (
        "How many days of PTO do I get?",
        "I'm full-time, how many PTO days carry over?",
    ):
        found = evidence(sources, extractive_answer(question, sources))
        assert found is not None and found.names == 1.0, question
    named = evidence(sources, extractive_answer("Can I carry PTO over to Globex?", sources))
    assert named is not None and named.names == 0.5  # PTO yes, Globex no; "I" is no name


def test_the_sentence_cosine_bridges_a_paraphrase() -> None:
    sources = make(TIME_OFF, EXPENSES, cosines=(0.30, 0.35))
    question = "How much money do I get for food on a business trip?"
    meal = "When you travel for work you receive a meal per diem of 60 EUR per day."
    plain = extractive_answer(question, sources)
    bridged = extractive_answer(question, sources, dense={meal: 0.62})
    assert "60 EUR" not in plain.text
    assert "60 EUR" in bridged.text and "[2]" in bridged.text
    found = evidence(sources, bridged)
    assert found is not None and found.sentence_similarity == 0.62


def test_no_sources_never_answer_and_threshold_zero_always_does() -> None:
    assert evidence([], extractive_answer("anything?", [])) is None
    assert not should_answer(None, 0.0)
    weak = signals(similarity=0.0, typed=0.0, negation_kept=0.0, extractive=0.0)
    assert should_answer(weak, 0.0)
    assert not should_answer(weak)


def test_the_rule_weighs_evidence_not_one_cosine() -> None:
    # a paraphrase: low chunk cosine, but the sentence holds the expected number
    paraphrase = signals(similarity=0.22, typed=1.0, negation_kept=1.0, extractive=0.3)
    # on topic but unanswerable: higher cosine, the asked-for date is nowhere
    unanswerable = signals(similarity=0.30, typed=0.0, negation_kept=1.0, extractive=0.3)
    assert answer_probability(paraphrase) > answer_probability(unanswerable)
    assert should_answer(paraphrase, DEFAULT_THRESHOLD)
    assert not should_answer(unanswerable, DEFAULT_THRESHOLD)
    # the probability grows with the cosine, all else equal
    assert answer_probability(signals(similarity=0.6)) > answer_probability(signals(similarity=0.3))


def test_a_name_no_source_mentions_vetoes_the_answer() -> None:
    """Asked about a tool the handbook never mentions, the bot abstains however on topic the
    rest of the question is; spelt a little off, or as a stem or a part of a name the
    sources use, the name still counts as mentioned."""
    laptops = (
        "Laptops are enrolled in Kandji, which keeps macOS up to date. Light personal use of "
        "your laptop is fine. Engineers receive a MacBook Pro with 32 GB of memory."
    )
    sources = make(laptops, cosines=(0.62,))
    for question in ("Can I use Linux on my work laptop?", "Can I install ChatGPT on my laptop?"):
        found = evidence(sources, extractive_answer(question, sources))
        assert found is not None and found.unknown_names == 1.0, question
        assert answer_probability(found) == 0.0
        assert not should_answer(found)
        assert should_answer(found, 0.0)  # a threshold of 0 still always answers
    for question in (
        "Does Kandij keep my laptop updated?",  # misspelt
        "How much memory does the Mac have?",  # the start of macOS and MacBook
        "Is personal use of a laptop fine for Engineering?",  # the stem of "Engineers"
        "How much RAM do Engineers get?",  # an abbreviation is no name
    ):
        found = evidence(sources, extractive_answer(question, sources))
        assert found is not None and found.unknown_names == 0.0, question


def test_names_are_not_read_into_title_case_or_a_language_that_capitalises_nouns() -> None:
    assert unknown_names("How Do I Reset My Okta Password?", ["Passwords expire."]) == ()
    assert unknown_names("Hi. Where is Datadog?", ["Grafana shows the metrics."]) == ("Datadog",)
    german = (
        "Jeder Mitarbeiter erhält pro Kalenderjahr 30 Tage Urlaub. Der Urlaub muss im "
        "Personalportal beantragt werden. Nicht genommene Urlaubstage verfallen am 31. März "
        "des Folgejahres. Bei Krankheit ist ab dem dritten Tag eine Bescheinigung vorzulegen. "
        "Reisekosten werden über das Spesenportal abgerechnet."
    )
    assert unknown_names("Wer zahlt die Hotelkosten auf Reisen?", [german]) == ()
    english = "Hotel costs are paid by the company. " * 8
    assert unknown_names("Who pays the Reisekosten?", [english]) == ("Reisekosten",)


def test_a_year_no_source_mentions_is_unknown_and_a_decade_is_any_year_in_it() -> None:
    history = ["The Normans fought in 1150. Cook's paper appeared in 1971."]
    assert unknown_names("What did Cook invent in 1974?", history) == ("1974",)
    assert unknown_names("What did Cook write in 1971?", history) == ()
    assert unknown_names("What happened in the 1100s?", history) == ()  # 1150
    assert unknown_names("What happened in the 1970's?", history) == ()  # 1971
    assert unknown_names("What happened in the 1960s?", history) == ("1960s",)
    assert unknown_names("How many days after 3 years of service?", history) == ()  # no year


def test_a_word_looked_up_alone_is_mentioned_as_the_veto_counts_a_mention() -> None:
    welcome = ["Northwind Traders was founded in 2009 in Lisbon."]
    assert mentioned("Northwind", welcome) and mentioned("Nortwind", welcome)  # a typo too
    assert not mentioned("Contoso", welcome)
    assert mentioned("2009", welcome) and mentioned("2000s", welcome)
    assert not mentioned("2015", welcome)
    assert is_year("1970s") and is_year("2009") and not is_year("Northwind")
    assert not is_year("3000")


def test_weekdays_months_greetings_and_word_parts_are_no_names() -> None:
    office = ["Standup is every day at 9:30. The office wifi is called NW-Staff."]
    for question in (
        "Hi Lorekeeper, when is standup?",
        "Thanks Sam! When is standup on Fridays?",
        "Is the office open in December?",
        "What is the Wi-Fi called?",
    ):
        assert unknown_names(question, office) == (), question
    assert unknown_names("Hey Sam, can I use Zoom for standup?", office) == ("Zoom",)
