"""Knowledge that grows from the team, the same on every chat platform: a question the bot
could not answer shows in the owner's gap report, the owner is asked in the thread, answers
there and saves the thread in one click, the same question is then answered with a citation of
the saved thread (and its gap settles on a 👍), and deleting the thread's root on the platform
removes the saved document; a member who may not save a thread suggests it to the owner.
Run by ``tests/slack/test_knowledge.py`` and
``tests/discord/test_knowledge.py`` with their drivers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from core.owners import ALREADY_ASKED, NO_OWNER_TO_SAVE, SUGGESTED
from tests.scenarios.driver import ChatDriver, Thread, saved_in

QUESTION = "Where do we park bikes at the new office?"
ANSWER = "Bikes go in the basement rack, level -1."
OWNER = "U0ANA"


class OwnerDriver(ChatDriver, Protocol):
    async def make_owner(self, namespace: str, user: str) -> str:
        """An admin names ``user`` the namespace's owner; what the admin was shown."""
        ...

    async def click_ask_owner(self, thread: Thread, *, user: str) -> None:
        """Click "Ask an owner" under the bot's abstention in ``thread``."""
        ...

    async def click_offered_save(self, thread: Thread, *, user: str) -> str:
        """Click the "Save thread" offered to ``user`` in ``thread``; what they were shown."""
        ...

    async def delete_root(self, thread: Thread) -> None:
        """Delete, on the platform, the message ``thread`` hangs from."""
        ...

    async def member_saves(self, thread: Thread, *, user: str) -> str:
        """A member (no admin, no owner) uses "Save thread to Lorekeeper" on the message
        ``thread`` hangs from; what they were told."""
        ...


async def a_gap_is_filled_from_the_thread_its_owner_saves(bot: OwnerDriver) -> None:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    assert "now owns" in await bot.make_owner("team", OWNER)

    asked = await bot.mention(QUESTION, user="U3")
    assert "couldn't find" in (await bot.bot_messages(asked))[-1].text
    report = await bot.command("gaps 7d", user=OWNER)  # the owner's own namespace
    assert QUESTION in report and "(1x, last" in report, report

    await bot.click_ask_owner(asked, user="U3")
    await bot.say_in_thread(asked, ANSWER, user=OWNER)
    assert "into team" in await bot.click_offered_save(asked, user=OWNER)
    [(title, namespace)] = await saved_in(bot)
    assert namespace == "team" and title.startswith(QUESTION.rstrip("?"))

    again = await bot.mention(QUESTION, user="U2")
    answer = (await bot.bot_messages(again))[-1]
    assert "couldn't find" not in answer.text, answer.text
    assert answer.sources and QUESTION.rstrip("?") in answer.sources[0]
    await bot.click_feedback(again, 1, user="U2")
    settled = await bot.command("gaps 7d", user=OWNER)
    assert QUESTION not in settled, settled

    await bot.delete_root(asked)
    assert await saved_in(bot) == []
    later = await bot.mention(QUESTION, user="U2")
    assert "couldn't find" in (await bot.bot_messages(later))[-1].text


async def a_member_suggests_the_save_to_the_owner(bot: OwnerDriver) -> None:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    asked = await bot.mention(QUESTION, user="U3")
    await bot.say_in_thread(asked, ANSWER, user="U4")
    assert await bot.member_saves(asked, user="U4") == NO_OWNER_TO_SAVE  # nobody to suggest to

    assert "now owns" in await bot.make_owner("team", OWNER)
    assert await bot.member_saves(asked, user="U4") == SUGGESTED.format(namespace="team")
    suggestion = (await bot.bot_messages(asked))[-1].text
    assert "suggests saving this thread" in suggestion, suggestion
    assert await saved_in(bot) == []  # a suggestion saves nothing
    # once per thread: a second member does not ping the owner again
    assert await bot.member_saves(asked, user="U5") == ALREADY_ASKED.format(namespace="team")
    assert (await bot.bot_messages(asked))[-1].text == suggestion

    # a member clicking the suggestion's button may still not save; the owner does
    await bot.click_offered_save(asked, user="U5")
    assert await saved_in(bot) == []
    assert "into team" in await bot.click_offered_save(asked, user=OWNER)
    [(title, namespace)] = await saved_in(bot)
    assert namespace == "team" and title.startswith(QUESTION.rstrip("?"))


Scenario = Callable[[Any], Awaitable[None]]
KNOWLEDGE: list[Scenario] = [
    a_gap_is_filled_from_the_thread_its_owner_saves,
    a_member_suggests_the_save_to_the_owner,
]
