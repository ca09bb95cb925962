"""The offline extractive answerer and its sentence toolkit."""

from __future__ import annotations

from core.generation.citations import parse_and_validate, quote_sentences
from core.generation.extractive import extractive_answer
from core.text import split_paragraphs, split_sentences, stem, terms
from tests.unit.sources import make

HANDBOOK = (
    "Our office is in Lisbon. New employees receive a laptop on their first day. "
    "The vacation allowance is 25 days per calendar year. Unused vacation days expire "
    "at the end of March of the following year. Expense reports are due monthly."
)
SECURITY = (
    "All laptops use full-disk encryption. Passwords are rotated every 90 days. "
    "The security team was founded in 2017 by Dr. Ana Costa. Report incidents in #security."
)
CANTEEN = "The canteen serves lunch from noon. Vegetarian dishes are available daily."


def quoted_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("> ")]


def test_answers_with_the_supporting_sentence_and_its_marker() -> None:
    result = extractive_answer(
        "How many vacation days do we get per year?", make(SECURITY, HANDBOOK, CANTEEN)
    )
    # the answer opens with the sentence that answers, and quotes it alone
    assert result.text == "> The vacation allowance is 25 days per calendar year. [2]"
    assert "[2]" in result.text
    assert "[3]" not in result.text
    assert [s.title for s in result.used_sources] == ["Doc 2"]
    assert result.score > 0.6


def test_it_is_an_answer_not_a_pasted_chunk() -> None:
    result = extractive_answer("When was the security team founded?", make(SECURITY, HANDBOOK))
    assert "founded in 2017 by Dr. Ana Costa. [1]" in result.text
    assert "full-disk encryption" not in result.text
    assert len(result.text) < len(SECURITY) + 30


def test_max_sentences_is_respected() -> None:
    sources = make(HANDBOOK)
    result = extractive_answer("vacation days expire", sources, max_sentences=1)
    assert len(quoted_lines(result.text)) == 1
    assert "Unused vacation days expire" in result.text
    many = extractive_answer("vacation days expire", sources, max_sentences=3)
    assert 1 <= sum(line.count(". ") + 1 for line in quoted_lines(many.text)) <= 3


def test_the_following_sentence_completes_the_best_one() -> None:
    story = (
        "In April the fleet left Messina in order to reach Acre. "
        "But a storm dispersed the fleet. Several ships ran aground."
    )
    result = extractive_answer("What ruined the fleet's plan to reach Acre?", make(story))
    assert quoted_lines(result.text) == [
        "> In April the fleet left Messina in order to reach Acre. "
        "But a storm dispersed the fleet. [1]"
    ]


def test_sentences_keep_a_readable_order() -> None:
    first = "Deploys happen on Tuesdays. Rollbacks use the deploy tool."
    second = "The deploy tool is called Shipit. Shipit deploys need approval."
    result = extractive_answer("How do deploys with the deploy tool work?", make(second, first))
    lines = quoted_lines(result.text)
    assert len(lines) >= 2
    positions = [result.text.index(line) for line in lines]
    assert positions == sorted(positions)
    assert lines[0].endswith("[1]")


def test_when_questions_prefer_a_sentence_with_a_date() -> None:
    text = (
        "The bridge was designed by a team of local engineers. "
        "The bridge opened to traffic in 1932 after four years of work."
    )
    result = extractive_answer("When did the bridge open?", make(text), max_sentences=1)
    assert "1932" in result.text


def test_a_when_question_is_answered_by_a_span_of_time_in_a_team_document() -> None:
    # no word of the question is in either sentence: the span of time ("one hour") is what
    # tells the answer from the definition
    incidents = (
        "An incident is any unplanned disruption that affects customers. "
        "We grade incidents by severity."
    )
    closing = (
        "The IC closes the incident when the impact has ended and monitoring has been "
        "stable for one hour."
    )
    dense = {
        "An incident is any unplanned disruption that affects customers.": 0.44,
        "We grade incidents by severity.": 0.2,
        closing: 0.35,
    }
    result = extractive_answer(
        "When is an outage considered over?", make(closing, incidents), dense=dense
    )
    assert quoted_lines(result.text)[0].startswith("> The IC closes the incident")
    # asked as "how soon" too, and answered by a span of working days
    result = extractive_answer(
        "How soon is the postmortem due?",
        make(
            "The postmortem has a timeline. The postmortem is published within five working days."
        ),
        max_sentences=1,
    )
    assert "five working days" in result.text


def test_a_sentence_holding_the_expected_time_is_relevant_at_a_lower_cosine() -> None:
    paid = "Approved claims are paid on the 25th of each month."
    rest = "Unused budget does not roll over."
    question = "When does my expense money hit my bank account?"
    result = extractive_answer(question, make(rest, paid), dense={paid: 0.31, rest: 0.29})
    assert quoted_lines(result.text) == [f"> {paid} [2]"]
    # without the date the same cosine is too far in meaning to quote
    undated = "Approved claims are paid with the salary."
    assert extractive_answer(question, make(undated), dense={undated: 0.31}).text == ""


def test_when_inside_a_yes_no_question_expects_no_date() -> None:
    # "when I leave" is a condition: a sentence's date does not make it the answer
    sources = make(
        "Laptops are returned to the IT desk on your last day. "
        "Light personal use of your laptop is fine since 2019."
    )
    result = extractive_answer(
        "Can I take my laptop home when I leave the company?", sources, max_sentences=1
    )
    assert "last day" in result.text
    assert result.support is not None and result.support.typed == 0.5


def test_a_sentence_opening_with_this_is_quoted_after_the_one_it_points_back_to() -> None:
    text = (
        "Sorting is a common task. For example, consider the sorting algorithm quicksort. "
        "This solves the problem of sorting a list of integers given as the input."
    )
    result = extractive_answer(
        "What solves the problem of sorting a list of integers?", make(text), max_sentences=1
    )
    assert quoted_lines(result.text) == [
        "> For example, consider the sorting algorithm quicksort. This solves the problem of "
        "sorting a list of integers given as the input. [1]"
    ]
    # a sentence opening a paragraph has nothing before it to bring
    alone = "This solves the problem of sorting a list of integers given as the input."
    result = extractive_answer(
        "What solves the problem of sorting a list of integers?",
        make("Sorting is a common task.\n\n" + alone),
        max_sentences=1,
    )
    assert quoted_lines(result.text) == [f"> {alone} [1]"]


def test_retrieval_rank_breaks_ties() -> None:
    same = "The wifi password is on the fridge."
    result = extractive_answer("Where is the wifi password?", make(same, same), max_sentences=1)
    assert result.text.endswith("[1]")


def test_off_topic_questions_score_low() -> None:
    sources = make(HANDBOOK, SECURITY)
    on_topic = extractive_answer("How often are passwords rotated?", sources)
    off_topic = extractive_answer("Which stadium hosts the football final?", sources)
    assert off_topic.score < 0.2 < 0.7 < on_topic.score


def test_nothing_relevant_gives_empty_text_and_zero() -> None:
    result = extractive_answer("Zebra migration patterns?", make(CANTEEN))
    assert (result.text, result.used_sources, result.score) == ("", (), 0.0)
    assert extractive_answer("Anything?", []).score == 0.0
    assert extractive_answer("what is it?", make(CANTEEN)).text == ""


def test_unknown_names_lower_the_confidence() -> None:
    sources = make(SECURITY)
    known = extractive_answer("Who founded the security team?", sources)
    unknown = extractive_answer("Who founded the security team at Globex?", sources)
    assert unknown.score < known.score * 0.6


def test_a_negated_question_needs_a_negated_sentence() -> None:
    sources = make(SECURITY)
    plain = extractive_answer("Which laptops use full-disk encryption?", sources)
    negated = extractive_answer("Which laptops never use full-disk encryption?", sources)
    assert negated.score < plain.score * 0.7


def test_score_is_between_zero_and_one() -> None:
    for question in ("passwords", "security team founded 2017 Ana Costa", "lunch noon"):
        score = extractive_answer(question, make(SECURITY, CANTEEN)).score
        assert 0.0 <= score <= 1.0


def test_reference_marks_in_sources_do_not_leak_into_the_answer() -> None:
    text = "Rome was founded in 753 BC.[12] It grew into an empire.[13]"
    result = extractive_answer("When was Rome founded?", make(text), max_sentences=1)
    assert "[12]" not in result.text
    assert result.text.endswith("753 BC. [1]")


def test_the_answer_survives_citation_validation() -> None:
    sources = make(CANTEEN, HANDBOOK)
    result = extractive_answer("When do unused vacation days expire?", sources)
    text, citations = parse_and_validate(result.text, sources)
    assert [c.title for c in citations] == ["Doc 2"]
    assert "expire at the end of March" in citations[0].quote
    assert "[1]" in text and "[2]" not in text


def test_split_sentences_handles_abbreviations_lists_and_wraps() -> None:
    text = (
        "Dr. Smith met J. R. Tolkien in the U.S. in 1937. It cost 3.5 dollars.\n"
        "This line wraps\nonto the next one.\n\n"
        "Steps:\n- install it\n- run it\n1. done"
    )
    assert split_sentences(text) == [
        "Dr. Smith met J. R. Tolkien in the U.S. in 1937.",
        "It cost 3.5 dollars.",
        "This line wraps onto the next one.",
        "Steps:",
        "- install it",
        "- run it",
        "1. done",
    ]
    assert split_paragraphs(text) == [  # a blank line ends a paragraph; a list item is one
        [
            "Dr. Smith met J. R. Tolkien in the U.S. in 1937.",
            "It cost 3.5 dollars.",
            "This line wraps onto the next one.",
        ],
        ["Steps:"],
        ["- install it"],
        ["- run it"],
        ["1. done"],
    ]
    # Markdown: a sentence may open with code or emphasis
    assert split_sentences(
        "Start it with `lorekeeper run --slack`. `docs/slack.md` has the steps. **Never** commit"
        " the token. see `x`. lowercase goes on."
    ) == [
        "Start it with `lorekeeper run --slack`.",
        "`docs/slack.md` has the steps.",
        "**Never** commit the token. see `x`. lowercase goes on.",
    ]


def test_stemming_and_terms() -> None:
    assert {stem(w) for w in ("rule", "ruled", "rules", "ruling")} == {"rul"}
    assert stem("countries") == stem("country")
    assert stem("stopped") == stem("stop")
    assert stem("called") == stem("call")
    assert stem("Normans") == stem("Norman")
    assert stem("status") == "status"
    assert terms("What is the capital of France?") == ["capital", "franc"]
    # an abbreviation spelt like a stopword is a term, kept as written, unless all is capitals
    assert terms("File a request with IT") == ["fil", "request", "IT"]
    assert terms("Request it in the catalogue.") == ["request", "catalogu"]
    assert terms("WHERE IS IT") == []


def test_the_it_desk_is_not_the_pronoun_it() -> None:
    sources = make(
        "Need new software? Request it in the Kandji self-service catalogue.",
        "To ask the IT desk for help, file a ticket in Jira Service Management.",
    )
    result = extractive_answer("Where do I file a request with IT?", sources)
    assert quoted_lines(result.text)[0].endswith("Jira Service Management. [2]")


def test_accents_fold_so_a_question_typed_without_them_still_matches() -> None:
    assert stem("fiancée") == stem("fiancee") == stem("Fiancée")
    assert terms("naïve café Über") == terms("naive cafe uber")
    assert stem("ﬁle") == stem("file")  # a ligature from a PDF's text layer
    # letters without a base letter, and other scripts, stay as they are
    assert terms("Norðmaðr Ægir 東京") == ["norðmaðr", "ægir", "東京"]


def test_headings_tables_and_code_are_not_answer_sentences() -> None:
    from core.text import split_sentences

    text = (
        "# Setup\nCreate the app from the manifest. Then install it.\n\n"
        "| scope | why |\n|---|---|\n| chat:write | answers |\n\n"
        "```\nlorekeeper run --slack\n```\nRun it with the bot token."
    )
    assert split_sentences(text) == [
        "Create the app from the manifest.",
        "Then install it.",
        "Run it with the bot token.",
    ]


def test_the_citation_quotes_the_answering_sentence_not_the_last_of_its_run() -> None:
    fleet = (
        "Richard left Sicily in April. A storm dispersed Richard's fleet near Crete. "
        "Three ships were later found off the southern coast of Cyprus, together with the "
        "wrecks of several others, and the king's sister was safe on board one of them."
    )
    question = "What dispersed Richard's fleet, and where were the ships found?"
    sources = make(fleet)
    result = extractive_answer(question, sources)
    text, citations = parse_and_validate(result.text, sources)
    # the answer quotes the best sentence and the one after it, closed by one marker
    assert "A storm dispersed Richard's fleet near Crete. Three ships" in text
    assert text.rstrip().endswith("[1]")
    assert "storm" not in citations[0].quote  # the marker's closing sentence, by itself
    quoted = quote_sentences(citations, result.best_sentences, question)
    assert quoted[0].quote == "A storm dispersed Richard's fleet near Crete."
    assert quoted[0].chunk_id == citations[0].chunk_id and quoted[0].n == 1
    # a citation of a chunk the answer did not quote from keeps its quote
    assert quote_sentences(citations, {}, question) == citations


def test_the_sentence_that_answers_leads() -> None:
    """'When is team A standup?' opens with team A's time, not team B's that comes first in
    retrieval order: "A" there is a name, not an article."""
    sources = make(  # team B's page ranked first by retrieval
        "Team B holds its daily standup at 9:30 in the small room.",
        "Team A holds its daily standup at 10:15 in the big room.",
    )
    result = extractive_answer("When is the team A daily standup?", sources)
    lines = quoted_lines(result.text)
    assert "10:15" in lines[0], lines
    assert not any("9:30" in line for line in lines)  # team B's is no answer at all


def test_memoised_words_and_sentences_come_back_unchanged_and_long_texts_are_not_kept() -> None:
    """Every question weighs its chunks' sentences again: the work is memoised, but what a
    caller gets is its own copy, and a long text (a whole thread) is not kept."""
    from core import text

    sentence = "The on-call engineer owns the pager for one week."
    first = terms(sentence)
    first.append("tampered")
    assert terms(sentence) == ["call", "engineer", "own", "pager", "one", "week"]
    paragraphs = split_paragraphs("One. Two.\n\nThree.")
    paragraphs[0].append("tampered")
    assert split_paragraphs("One. Two.\n\nThree.") == [["One.", "Two."], ["Three."]]
    kept = text._terms.cache_info().currsize
    long_text = "A very long thread about the pager. " * 200
    assert terms(long_text)[:3] == ["long", "thread", "pager"]  # "very" is a stopword
    assert text._terms.cache_info().currsize == kept


def test_a_question_in_a_source_is_answered_by_the_sentence_after_it() -> None:
    # a saved thread: the first post asks exactly what is asked again, the reply answers
    thread = (
        "**Ana** (2026-12-07 10:00): Where do we park bikes at the new office?\n\n"
        "**Ben** (2026-12-07 10:05): Bikes go in the basement rack, level -1.\n"
    )
    result = extractive_answer("Where do we park bikes at the new office?", make(thread))
    assert quoted_lines(result.text) == [
        "> **Ben** (2026-12-07 10:05): Bikes go in the basement rack, level -1. [1]"
    ]
    # in one paragraph, the question comes with its answer, as one reads them
    faq = "Need new software? Request it in the self-service catalogue. Printers are on 2."
    result = extractive_answer("How do I get new software?", make(faq))
    assert quoted_lines(result.text) == [
        "> Need new software? Request it in the self-service catalogue. [1]"
    ]
    # a question that holds the value asked for is quoted as any sentence would be
    tour = "Is there a route of at most 2000 kilometres through the 15 largest cities? Yes."
    result = extractive_answer(
        "How many kilometres is the route through the 15 cities?", make(tour)
    )
    assert "2000 kilometres" in quoted_lines(result.text)[0]


def test_the_sentence_answering_a_question_is_the_best_one_quoted() -> None:
    faq = "Need new software? Request it in the self-service catalogue."
    result = extractive_answer("How do I get new software?", make(faq))
    assert list(result.best_sentences.values()) == ["Request it in the self-service catalogue."]
