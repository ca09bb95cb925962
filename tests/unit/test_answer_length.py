"""The form of an offline answer: it opens with the sentence that answers and quotes a second
only when that one may hold what the first lacks."""

from __future__ import annotations

from core.generation.citations import parse_and_validate, quote_sentences
from core.generation.extractive import extractive_answer
from tests.unit.sources import make

# A Wikipedia-style passage: every sentence is on the topic, one answers.
TAPESTRY = (
    "By far the most famous work of Norman art is the Bayeux Tapestry, which is not a "
    "tapestry but a work of embroidery. It was commissioned by Odo. The embroidery is nearly "
    "seventy metres long and shows the events leading up to the Norman conquest. Today it "
    "hangs in a museum in Normandy, where visitors walk along its full length."
)
ONCALL = (
    "The on-call engineer owns the pager for one week. Handover happens every Monday at "
    "10:00 in the ops channel. The outgoing engineer writes a short summary of open "
    "incidents. Pages must be acknowledged within five minutes."
)


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_one_sentence_answers_when_it_holds_the_answer() -> None:
    result = extractive_answer("When does the on-call handover happen?", make(ONCALL))
    assert result.text == "> Handover happens every Monday at 10:00 in the ops channel. [1]"


def test_a_sentence_that_goes_on_with_the_best_one_is_quoted_with_it() -> None:
    """The best sentence names the tapestry; the next ("It was commissioned by Odo") answers,
    in words the question does not use."""
    result = extractive_answer("Who ordered the Bayeux Tapestry?", make(TAPESTRY))
    (line,) = lines(result.text)
    assert line.startswith("> By far the most famous work of Norman art is the Bayeux Tapestry")
    assert line.endswith("It was commissioned by Odo. [1]")


def test_the_next_sentence_is_left_out_when_it_adds_nothing_asked() -> None:
    result = extractive_answer("How long is the embroidery?", make(TAPESTRY))
    assert result.text == (
        "> The embroidery is nearly seventy metres long and shows the events leading up to the "
        "Norman conquest. [1]"
    )


def test_the_next_sentence_is_quoted_when_it_holds_the_asked_date() -> None:
    text = (
        "The security team was set up to answer incidents around the clock. "
        "Its first members joined in 2017. The team sits on the second floor."
    )
    result = extractive_answer("When was the security team set up?", make(text))
    assert lines(result.text) == [
        "> The security team was set up to answer incidents around the clock. "
        "Its first members joined in 2017. [1]"
    ]


def test_sentences_the_scores_cannot_tell_apart_are_both_quoted() -> None:
    sources = make(
        "Team A holds its weekly retro on Friday afternoon.",
        "Team B holds its weekly retro on Thursday morning.",
    )
    result = extractive_answer("When is the weekly retro?", sources)
    assert lines(result.text) == [
        "> Team A holds its weekly retro on Friday afternoon. [1]",
        "> Team B holds its weekly retro on Thursday morning. [2]",
    ]


def test_the_shortened_answer_still_validates_and_its_quote_is_checkable() -> None:
    question = "Who ordered the Bayeux Tapestry?"
    sources = make(ONCALL, TAPESTRY)
    result = extractive_answer(question, sources)
    text, citations = parse_and_validate(result.text, sources)
    assert text.endswith("[1]") and len(citations) == 1
    assert citations[0].title == "Doc 2"
    quoted = quote_sentences(citations, result.best_sentences, question)
    # the citation quotes the source verbatim: the answer's best sentence, cut to length
    assert quoted[0].quote.strip(" …") in TAPESTRY
    assert quoted[0].quote.startswith("By far the most famous work of Norman art")


def test_a_long_sentence_keeps_its_clauses_about_the_question() -> None:
    sentence = (
        "After years of planning and several delays caused by the weather, the new bridge over "
        "the river opened to traffic in 1932, carrying about four thousand cars a day in its "
        "first year, which made it the busiest crossing in the region for two decades."
    )
    question = "When did the new bridge open to traffic?"
    sources = make(sentence)
    result = extractive_answer(question, sources)
    assert result.text == (
        "> After years of planning and several delays caused by the weather, the new bridge "
        "over the river opened to traffic in 1932, carrying about four thousand cars a day in "
        "its first year … [1]"
    )
    # the marker still holds: the cut text is the source's own words; the citation quotes
    # the whole sentence (cut to the quote's length)
    text, citations = parse_and_validate(result.text, sources)
    assert text == result.text and len(citations) == 1
    quoted = quote_sentences(citations, result.best_sentences, question)
    assert quoted[0].quote.strip(" …") in sentence and "1932" in quoted[0].quote


def test_the_cut_keeps_the_date_a_when_question_asks_for() -> None:
    sentence = (
        "The new bridge opened to traffic after a long winter of storms, strikes at the steel "
        "works and a dispute between the contractors over the cost of the approach roads, in "
        "April 1932, a year later than the city had planned for it."
    )
    result = extractive_answer("When did the new bridge open to traffic?", make(sentence))
    assert "April 1932" in result.text


def test_a_sentence_of_ordinary_length_is_never_cut() -> None:
    result = extractive_answer("When does the on-call handover happen?", make(ONCALL))
    assert "…" not in result.text


INCIDENTS = """# Incident response

## Declaring an incident

Anyone can declare an incident by typing /incident in Slack. The bot opens a dedicated
channel, starts a Zoom bridge and pages the incident commander.

## Closing

The incident commander closes the incident when the impact has ended, writes the summary in
the incident channel, and hands the follow-up over to the owning team for the postmortem.
"""


def test_a_paraphrase_gets_the_whole_of_a_short_two_sentence_paragraph_in_its_order() -> None:
    """Asked in other words than the handbook's, the nearest sentence by meaning is the second
    of its paragraph; the first, which says what to type, comes with it, in reading order."""
    question = "How do I start a war room for an outage?"
    nearest = (
        "The bot opens a dedicated channel, starts a Zoom bridge and pages the incident commander."
    )
    result = extractive_answer(question, make(INCIDENTS), dense={nearest: 0.55})
    assert lines(result.text) == [
        "> Anyone can declare an incident by typing /incident in Slack. " + nearest + " [1]"
    ]


def test_a_question_in_the_documents_words_keeps_its_one_sentence() -> None:
    """The same paragraph asked in its own words: the best sentence says it, alone."""
    result = extractive_answer("What does the bot open for an incident?", make(INCIDENTS))
    assert lines(result.text) == [
        "> The bot opens a dedicated channel, starts a Zoom bridge and pages the incident "
        "commander. [1]"
    ]


def test_a_long_paragraph_is_not_quoted_whole() -> None:
    """Two sentences over 200 characters together are not a short paragraph."""
    nearest = (
        "The bot opens a dedicated channel, starts a Zoom bridge and pages the incident commander."
    )
    handbook = (
        "Anyone in the company, engineer or not, can declare an incident at any hour of the day "
        "or night by typing /incident in Slack. " + nearest
    )
    question = "How do I start a war room for an outage?"
    result = extractive_answer(question, make(handbook), dense={nearest: 0.55})
    assert lines(result.text) == [f"> {nearest} [1]"]
