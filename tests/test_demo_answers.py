"""The demo's own questions, asked of this repository's docs/ as `make demo` indexes them:
each answer leads with the sentence that answers it (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from tests.harness import BotHarness

DOCS = Path(__file__).resolve().parents[1] / "docs"
QUESTIONS = {
    "What does the retention job delete?": "> The retention job deletes messages older than",
    "How do I bind a namespace to a channel?": (
        "> To bind a namespace to a channel, an admin runs `/lore namespace bind NAME"
    ),
}


async def test_the_demo_questions_lead_with_the_sentence_that_answers(
    database_url, tmp_path, embedder
) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        for path in sorted(DOCS.glob("*.md")):
            assert (await bot.upload(path.name, path.read_bytes())).ok, path.name
        for n, (question, lead) in enumerate(QUESTIONS.items()):
            answer = await bot.say(question, thread=f"T{n}")
            assert not answer.abstained, question
            assert answer.text.startswith(lead), answer.text
            assert answer.citations, question
    finally:
        await bot.close()
