"""The weekly gap digest on SQLite and PostgreSQL: `/lore digest on|off` (owners and admins,
audited, off by default), one message per opted-in owner with gaps, none for the others, once a
week, and one owner's failure leaving the others theirs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.commands.rich import RichText, plain_text
from core.db.models import AuditLog
from core.db.records import UserAddress
from core.digest import iso_week
from core.jobs.lock import AdvisoryLock
from core.jobs.runner import JobRunner
from tests.harness import BotHarness

PARKING = "Where can guests park their cars?"


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    yield harness
    await harness.close()


class Recording:
    """A notifier that keeps what it sends, and fails for the people in ``refuse``."""

    def __init__(self, *, refuse: tuple[str, ...] = ()) -> None:
        self.sent: list[tuple[UserAddress, RichText]] = []
        self.refuse = set(refuse)

    async def direct(self, to: UserAddress, body: RichText) -> None:
        if to.user in self.refuse:
            raise ConnectionError("the platform refused")
        self.sent.append((to, body))


async def _run(bot: BotHarness) -> dict[str, int]:
    """The digest through the job runner and its lock, as the scheduler runs it."""
    run = await JobRunner(AdvisoryLock(bot.container.database.engine)).run(
        "gap-digest", bot.container.digest.run
    )
    assert run.status == "ok", run.summary()
    return dict(run.counts)


async def _owners(bot: BotHarness) -> None:
    """U7 owns general, U8 owns hr; a refused question in each."""
    assert (await bot.admin("namespace owner general @U7")).ok
    assert (await bot.admin("namespace create hr")).ok
    assert (await bot.admin("namespace bind hr #C2")).ok
    assert (await bot.admin("namespace owner hr @U8")).ok
    assert (await bot.say(PARKING, thread="park")).abstained
    leave = "Who approves parental leave requests?"
    assert (await bot.say(leave, channel="C2", thread="leave")).abstained


async def test_only_owners_and_admins_turn_it_on_and_it_is_audited(bot) -> None:
    refused = await bot.admin("digest on", is_admin=False, user="U5")
    assert not refused.ok
    assert refused.text == "Only namespace owners and admins can get the weekly digest."
    assert (await bot.admin("namespace owner general @U7")).ok
    status = await bot.admin("digest", is_admin=False, user="U7")
    assert status.ok and status.text.startswith("Your weekly digest is off."), status.text
    on = await bot.admin("digest on", is_admin=False, user="U7")
    assert on.ok and on.text.startswith("Your weekly digest is on"), on.text
    assert (await bot.admin("digest", is_admin=False, user="U7")).text.startswith(
        "Your weekly digest is on"
    )
    admin = await bot.admin("digest on")  # an admin who owns nothing: told so
    assert admin.ok and "You own no namespace yet" in admin.text
    assert (await bot.admin("digest off", is_admin=False, user="U7")).text.startswith(
        "Your weekly digest is off."
    )
    async with bot.container.database.session() as db:
        rows = await db.execute(
            select(AuditLog.actor, AuditLog.outcome, AuditLog.arguments).where(
                AuditLog.command == "digest"
            )
        )
        audited = [(a, o, args["args"]) for a, o, args in rows]
    assert ("U5", "failed", {"state": "on"}) in audited
    assert ("U7", "ok", {"state": "on"}) in audited
    assert ("U7", "ok", {"state": "off"}) in audited


async def test_an_opted_in_owner_gets_one_message_a_week_and_others_none(bot) -> None:
    await _owners(bot)
    notifier = Recording()
    bot.container.digest.register(bot.platform.value, notifier)
    assert await _run(bot) == {
        "digests_sent": 0,
        "owners_without_gaps": 0,
        "already_sent": 0,
        "owners_unreachable": 0,
        "failed": 0,
    }  # nobody opted in: nothing, whatever the gaps
    assert (await bot.admin("digest on", is_admin=False, user="U7")).ok
    counts = await _run(bot)
    assert counts["digests_sent"] == 1, counts
    [(to, body)] = notifier.sent
    assert (to.platform, to.workspace, to.user) == (bot.platform.value, "W1", "U7")
    text = plain_text(body)
    assert text.startswith("Unanswered questions in general (7d): 1 asked, 1 topics"), text
    assert f"• {PARKING} (1x" in text and "parental" not in text
    assert "/lore digest off" in text

    again = await _run(bot)  # the same week: nothing more
    assert again["digests_sent"] == 0 and again["already_sent"] == 1, again
    assert len(notifier.sent) == 1


async def test_an_owner_without_gaps_gets_nothing(bot) -> None:
    assert (await bot.admin("namespace create hr")).ok
    assert (await bot.admin("namespace owner hr @U8")).ok
    assert (await bot.admin("digest on", is_admin=False, user="U8")).ok
    notifier = Recording()
    bot.container.digest.register(bot.platform.value, notifier)
    counts = await _run(bot)
    assert counts["owners_without_gaps"] == 1 and counts["digests_sent"] == 0, counts
    assert notifier.sent == []


async def test_one_failure_leaves_the_others_theirs_and_is_tried_again(bot) -> None:
    await _owners(bot)
    for user in ("U7", "U8"):
        assert (await bot.admin("digest on", is_admin=False, user=user)).ok
    notifier = Recording(refuse=("U7",))
    bot.container.digest.register(bot.platform.value, notifier)
    counts = await _run(bot)
    assert counts["digests_sent"] == 1 and counts["failed"] == 1, counts
    assert [to.user for to, _ in notifier.sent] == ["U8"]
    assert "parental leave" in plain_text(notifier.sent[0][1])

    notifier.refuse.clear()  # the next run that week sends the failed one only
    counts = await _run(bot)
    assert counts["digests_sent"] == 1 and counts["already_sent"] == 1, counts
    assert [to.user for to, _ in notifier.sent] == ["U8", "U7"]


def test_the_week_is_the_iso_week() -> None:
    assert iso_week(datetime(2026, 12, 31, tzinfo=UTC)) == "2026-W53"
    assert iso_week(datetime(2027, 1, 4, tzinfo=UTC)) == "2027-W01"
