"""A long answer on Discord, through the real discord.py against FakeDiscord: it streams into
one message, then ends split over several, with the Sources embed and the 👍/👎 buttons on
the last piece only, and nothing of the text lost."""

from __future__ import annotations

from sqlalchemy import select

from adapters.discord.render import EMBED_LIMIT, LIMIT
from core.db.models import Feedback
from tests.discord.driver import DiscordDriver, custom_ids, start_client, stop_client
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.groq_server import FakeGroq
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK

QUESTION = "How are travel expenses reimbursed?"
CLAIM = "Travel expenses are reimbursed within 14 days when the receipt is uploaded to the portal"
# about 5,000 characters: three messages' worth
PARTS = [f"Part {i}. " + " ".join([f"{CLAIM} [1]."] * 5) for i in range(10)]
LONG = "\n\n".join(PARTS)


async def test_a_long_answer_is_split_keeping_sources_and_buttons_on_the_last(
    sqlite_url, tmp_path, embedder
) -> None:
    async with (
        FakeGroq(responder=lambda messages: LONG, chunk_delay=0.002) as groq,
        FakeDiscord() as fake,
    ):
        harness = await BotHarness.start(
            sqlite_url, tmp_path, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            client, task = await start_client(fake, harness.container)
            try:
                bot = DiscordDriver(fake, client, harness.container, groq)
                await bot.upload("handbook.md", HANDBOOK)
                thread = await bot.mention(QUESTION)
                messages = fake.messages_in(int(thread.thread))
                assert len(LONG) > 2 * LIMIT and len(messages) >= 3

                first, *_, last = messages
                # the placeholder streamed (its text so far) and became the first piece
                assert first.history[0]["content"].startswith("🔎 Searching")
                assert any(h["content"].endswith("▌") for h in first.history[1:])
                contents = [m.payload["content"] for m in messages]
                assert all(0 < len(c) <= LIMIT and "▌" not in c for c in contents)
                # nothing lost or repeated across the split, in order
                joined = "\n\n".join(contents)
                assert [joined.count(f"Part {i}.") for i in range(10)] == [1] * 10
                assert joined.index("Part 0.") < joined.index("Part 9.")
                assert joined.count(CLAIM) == 50
                # Sources and buttons on the last piece only
                [embed] = last.payload["embeds"]
                assert embed["title"] == "Sources" and "handbook.md" in embed["description"]
                assert len(embed["description"]) <= EMBED_LIMIT
                votes = [i for i in custom_ids(last) if i.startswith("lore:fb:")]
                assert len(votes) == 2
                for piece in messages[:-1]:
                    assert piece.payload["embeds"] == [] and custom_ids(piece) == []

                # the buttons on the last piece work
                await bot.click_feedback(thread, 1, user="U7")
                after = fake.messages_in(int(thread.thread))
                assert [m.id for m in after] == [m.id for m in messages]
                labels = [
                    c["label"] for row in after[-1].payload["components"] for c in row["components"]
                ]
                assert labels == ["👍 1", "👎 0"]
                assert [m.payload["embeds"] for m in after[:-1]] == [[]] * (len(after) - 1)
                assert after[-1].payload["embeds"] == [embed]  # the vote kept the Sources
            finally:
                await stop_client(client, task)
            async with harness.container.database.session() as db:
                assert list((await db.execute(select(Feedback.value))).scalars()) == [1]
        finally:
            await harness.close()
