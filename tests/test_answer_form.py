"""The form of an answer end to end on the real core (real ingestion, milvus-lite, embeddings):
what the Groq prompt asks for and carries, and offline answers from a CSV upload."""

from __future__ import annotations

import re

from core.context import ContextResolver
from core.retrieval.retriever import Retrieval
from tests.fakes.groq_server import FakeGroq, quoting_responder
from tests.harness import BotHarness

HANDBOOK = b"""# Vacation policy

Employees receive 25 days of paid vacation per year. Unused days expire on March 31.
Vacation requests go to your manager at least two weeks ahead.
"""
CANTEEN = b"""# Canteen

The canteen on the ground floor serves lunch from noon to two. Vegetarian and vegan dishes
are on the menu every day, and the coffee machine is free for everyone.
"""
PARKING = b"""# Parking

The car park behind building C has forty spaces. Bicycles go in the racks by the main door;
electric scooters may be charged at the wall sockets of level minus one.
"""
PEOPLE_CSV = b"""name,team,email,phone,office
Ada Lovelace,Core,ada@example.com,+44 20 7946 0001,London
Bob Marley,Ops,bob@example.com,+1 555 0102,Kingston
Cy Twombly,Design,cy@example.com,+39 06 555 0103,Rome
"""


QUESTION = "How many days of paid vacation do employees get per year?"


async def _retrieve(bot: BotHarness, question: str) -> Retrieval:
    """What the answer's retrieval finds, in the place the harness asks."""
    c = bot.container
    ctx = await ContextResolver(
        c.identity,
        c.knowledge,
        embedding_model=c.embedder.model_name,
        places=c.places,
        organisation=c.organisation,
    ).resolve(bot.message("probe", thread="probe"))
    return await c.retriever.search(
        question,
        workspace_id=ctx.workspace_ids,
        namespace_ids=[n.id for n in ctx.namespaces],
        limit=c.settings.retrieval_top_k,
    )


def numbered(prompt: str) -> dict[int, str]:
    """The [n] title lines of the sources block."""
    return {int(n): title for n, title in re.findall(r"^\[(\d+)\] ([^\n]*)$", prompt, re.M)}


async def test_the_groq_prompt_asks_for_the_answer_first_from_the_sources_it_needs(
    database_url, tmp_path, embedder
) -> None:
    async with FakeGroq(responder=quoting_responder) as fake:
        bot = await BotHarness.start(
            database_url, tmp_path, embedder=embedder, groq_base_url=fake.base_url
        )
        try:
            await bot.admin("namespace uploads general")
            for name, data in (
                ("handbook.md", HANDBOOK),
                ("canteen.md", CANTEEN),
                ("parking.md", PARKING),
            ):
                assert (await bot.upload(name, data)).ok
            answer = await bot.say(QUESTION)
            retrieved = await _retrieve(bot, QUESTION)
        finally:
            await bot.close()
    assert answer.mode == "llm" and answer.grounded
    system, user = fake.last_messages[0], fake.last_messages[-1]
    assert system["role"] == "system" and user["role"] == "user"
    assert "Open with the direct answer in the first sentence" in system["content"]
    assert "Cite only the sources you use" in system["content"]
    assert "square brackets, like [1]" in system["content"]
    # the numbered source that answers, then the question
    content = user["content"]
    assert "[1] handbook.md\n# Vacation policy\n\nEmployees receive 25 days" in content
    assert content.rstrip().endswith(f"Question: {QUESTION}")
    # retrieval found the other pages too; they add nothing and are not sent
    assert {c.chunk.title for c in retrieved.chunks} == {"handbook.md", "canteen.md", "parking.md"}
    assert numbered(content) == {1: "handbook.md"}
    assert "canteen" not in content.lower() and "parking" not in content.lower()


async def test_an_offline_answer_from_a_csv_gives_the_row_and_the_field(
    database_url, tmp_path, embedder
) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        assert (await bot.upload("people.csv", PEOPLE_CSV)).ok
        answer = await bot.say("What is Bob Marley's phone number?")
    finally:
        await bot.close()
    assert answer.mode == "extractive" and answer.grounded
    assert "> name: Bob Marley; phone: +1 555 0102 [1]" in answer.text
    for unrelated in ("Ops", "bob@example.com", "Kingston", "Ada Lovelace", "Cy Twombly"):
        assert unrelated not in answer.text
    assert answer.citations[0].title == "people.csv"
    assert "+1 555 0102" in answer.citations[0].quote
