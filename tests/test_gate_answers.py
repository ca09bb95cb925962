"""The evidence gate end to end: a paraphrased question on a tiny handbook is answered and
cited, an on-topic question the handbook does not answer abstains (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.harness import BotHarness

TIME_OFF = b"""# Time off

Everyone gets paid time off (PTO) from their first day. Full-time employees receive 25 days
of PTO per calendar year, accrued monthly.

## Carry-over

Up to five unused PTO days carry over into the next year.
"""
EXPENSES = b"""# Expenses

Submit every claim in Expensify within 30 days of the purchase, with a photo of the receipt.
When you travel for work you receive a meal per diem of 60 EUR per day.
"""
ONCALL = b"""# On-call

The platform team runs a weekly on-call rotation in PagerDuty. When PagerDuty pages you,
acknowledge the alert within 5 minutes, or it escalates to the secondary on-call.
"""


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    for name, data in (("time-off.md", TIME_OFF), ("expenses.md", EXPENSES), ("oncall.md", ONCALL)):
        assert (await harness.upload(name, data)).ok
    yield harness
    await harness.close()


async def test_a_paraphrase_is_answered_and_an_unanswered_question_abstains(bot) -> None:
    answer = await bot.say("How much PTO do I get?")
    assert not answer.abstained
    assert "25 days" in answer.text
    assert answer.citations and answer.citations[0].title == "time-off.md"
    assert "PTO" in answer.citations[0].quote

    unanswered = await bot.say("Can I expense my gym membership?", thread="T2")
    assert unanswered.abstained
    assert unanswered.text == "I couldn't find that in general."


async def test_a_question_about_something_the_handbook_never_names_abstains(bot) -> None:
    """Asked about a tool the documents never mention, the bot says it could not find it
    rather than quoting the nearest on-call sentence; the same question about the tool they
    name (misspelt, as people type) is answered."""
    unknown = await bot.say("How do I acknowledge an alert in Opsgenie?")
    assert unknown.abstained
    assert unknown.text == "I couldn't find anything about Opsgenie in general."

    known = await bot.say("How fast do I acknowledge an alert in PagerDuy?", thread="T2")
    assert not known.abstained
    assert "5 minutes" in known.text
    assert known.citations and known.citations[0].title == "oncall.md"


WELCOME = b"""# Welcome to Northwind

Northwind Traders was founded in 2009 in Lisbon. We sell specialty foods to shops across
Europe, and this handbook says how we work.
"""
BENEFITS = b"""# Benefits

The company pays up to 200 EUR every two years toward glasses or contact lenses. Health
insurance covers you and your family from your first day.
"""


async def test_a_question_naming_the_company_is_answered_from_a_passage_that_does_not(
    database_url, tmp_path, embedder
) -> None:
    """The company's name is in the handbook, just not in the passage that answers: the
    question is answered, and a name the handbook never mentions still abstains. One passage
    per answer (RETRIEVAL_TOP_K=1) keeps the welcome page out of the sources, as the many
    passages of a larger handbook do."""
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder, RETRIEVAL_TOP_K=1)
    try:
        for name, data in (
            ("welcome.md", WELCOME),
            ("benefits.md", BENEFITS),
            ("time-off.md", TIME_OFF),
            ("oncall.md", ONCALL),
        ):
            assert (await bot.upload(name, data)).ok
        answer = await bot.say("Does Northwind pay for glasses?")
        assert not answer.abstained
        assert "200 EUR" in answer.text
        assert [c.title for c in answer.citations] == ["benefits.md"]

        unknown = await bot.say("Does Contoso pay for glasses?", thread="T2")
        assert unknown.abstained
        assert unknown.text == "I couldn't find anything about Contoso in general."

        year = await bot.say("Did Northwind pay for glasses in 2015?", thread="T3")
        assert year.abstained
        assert year.text == "I couldn't find anything about 2015 in general."
    finally:
        await bot.close()
