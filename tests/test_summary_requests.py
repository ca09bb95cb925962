"""A request for a document in brief ("Summarise time-off.md", what the assistant panel
suggests) is answered from that document, in order, with citations; a document the place cannot
read is not summarised (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from core.generation.summary import matches, requested_title
from tests.harness import BotHarness

TIME_OFF = b"""# Time off

Everyone gets paid time off (PTO) from their first day. Full-time employees receive 25 days
of PTO per calendar year, accrued monthly.

## Carry-over

Up to five unused PTO days carry over into the next year.
"""
ONCALL = b"""# On-call

The platform team runs a weekly on-call rotation in PagerDuty. When PagerDuty pages you,
acknowledge the alert within 5 minutes, or it escalates to the secondary on-call.
"""


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Summarise time-off.md", "time-off.md"),
        ("please summarize the Team handbook.", "Team handbook"),
        ("Give me an overview of our on-call guide?", "on-call guide"),
        ("tl;dr oncall.md", "oncall.md"),
        ("How many PTO days do I get?", None),
        ("summary", None),
    ],
)
def test_summary_requests_name_their_document(text: str, title: str | None) -> None:
    assert requested_title(text) == title


def test_a_title_matches_without_its_extension_or_case() -> None:
    assert matches("time off", "time-off.md")
    assert matches("Time-Off.md", "time-off.md")
    assert matches("the on-call guide", "On-call")  # the title's words are all asked for
    assert not matches("expenses", "time-off.md")


async def test_a_summary_request_is_answered_from_that_document(
    database_url, tmp_path, embedder
) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        for name, data in (("time-off.md", TIME_OFF), ("oncall.md", ONCALL)):
            assert (await bot.upload(name, data)).ok
        answer = await bot.say("Summarise time-off.md")
        assert not answer.abstained, answer.text
        assert answer.text.startswith("time-off.md in brief:")
        assert "25 days" in answer.text and "carry over" in answer.text
        assert answer.citations and {c.title for c in answer.citations} == {"time-off.md"}
        assert all(c.quote in TIME_OFF.decode().replace("\n", " ") for c in answer.citations)
        elsewhere = await bot.say("Summarise time-off.md", channel="C-other", thread="T9")
        assert "25 days" not in elsewhere.text  # that channel cannot read the file
    finally:
        await bot.close()
