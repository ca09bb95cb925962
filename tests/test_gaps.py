"""Gap reports and namespace settings from chat, on SQLite and PostgreSQL: refused and
voted-down questions grouped by meaning, settled groups left out, who may see them; owner,
prompts and retention set by `/lore`, shown in `namespace info`, audited, and honoured by
the retention job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.commands import UserArg, parse_text
from core.db.models import AuditLog, Message, Namespace
from core.db.types import utcnow
from core.gaps import Alikeness, GapConfig, compared_text, group_by_meaning, question_text
from core.glossary import plain_words
from core.jobs.retention import Retention
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK

VACATION = "How many days of paid vacation do employees get?"


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    yield harness
    await harness.close()


async def _vote(bot: BotHarness, answer_id, value: int, user: str = "U2") -> None:
    await bot.container.answers.feedback(
        platform=bot.platform.value,
        workspace_id=bot.workspace,
        user_id=user,
        message_id=answer_id,
        value=value,
    )


async def test_refused_and_voted_down_questions_are_grouped_until_settled(bot) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    for i, text in enumerate(
        ("How do I reset my VPN password?", "how do I reset the VPN password", "VPN password?")
    ):
        assert (await bot.say(text, thread=f"vpn{i}")).abstained
    assert (await bot.say("Where can guests park their cars?", thread="park")).abstained
    answered = await bot.say(VACATION, thread="vac")
    assert not answered.abstained and answered.message_id is not None
    await _vote(bot, answered.message_id, -1)

    report = await bot.admin("gaps 7d")
    assert report.ok, report.text
    lines = report.text.splitlines()
    assert lines[0] == "Unanswered questions (7d): 5 asked, 3 topics", report.text
    assert lines[1].startswith("• VPN password? (3x, last ") and "#C1" in lines[1]
    assert any(line.startswith(f"• {VACATION} (1x") for line in lines)
    assert any("park" in line for line in lines)

    # a later 👍 on an answer to the same question settles its group
    again = await bot.say("how many days of paid vacation do employees get", thread="vac2")
    assert again.message_id is not None
    await _vote(bot, again.message_id, 1)
    settled = await bot.admin("gaps")  # 7d by default
    assert "vacation" not in settled.text and "VPN password?" in settled.text, settled.text
    assert settled.text.splitlines()[0].endswith("4 asked, 2 topics")


async def test_shorthand_and_plain_words_for_one_fact_are_one_row(bot) -> None:
    # MiniLM puts "PTO allowance?" at cosine 0.21 to the vacation question: apart without the
    # glossary, one row with it
    for i, text in enumerate(
        ("how many vacation days do I get", "PTO allowance?", "Where can guests park their cars?")
    ):
        assert (await bot.say(text, thread=f"t{i}")).abstained
    report = await bot.admin("gaps 7d")
    assert report.ok, report.text
    lines = report.text.splitlines()
    assert lines[0] == "Unanswered questions (7d): 3 asked, 2 topics", report.text
    assert lines[1].startswith("• ") and " (2x, last " in lines[1], report.text


def test_workplace_shorthand_is_spelled_out_and_other_words_are_kept() -> None:
    assert compared_text("hey team, PTO allowance? thx") == "vacation allowance"
    assert plain_words("Can I WFH on Fridays w/ my mgr's OK?") == (
        "Can I work from home on Fridays with my manager's OK?"
    )
    assert (
        plain_words("who acks a sev 1 page, ASAP?")
        == "who acknowledges a severity 1 page, as soon as possible?"
    )
    assert plain_words("per  diem in Tokyo? 1:1 notes") == (
        "daily allowance for meals in Tokyo? one-on-one meeting notes"
    )
    # inside a word, a path or a name it is no shorthand
    assert plain_words("reports/env-prod.yaml in the prodigal repository") == (
        "reports/env-prod.yaml in the prodigal repository"
    )


async def test_admins_and_owners_see_gaps_others_do_not(bot) -> None:
    assert (await bot.say("Where can guests park their cars?")).abstained
    refused = await bot.admin("gaps", is_admin=False, user="U7")
    assert (
        not refused.ok and refused.text == "Only admins and the namespace's owner can see its gaps."
    )
    assert not (await bot.admin("gaps 7d general", is_admin=False, user="U7")).ok
    owned = await bot.admin("namespace owner general @U7")
    assert owned.ok and owned.text.startswith("@U7 now owns general"), owned.text
    mine = await bot.admin("gaps", is_admin=False, user="U7")
    assert mine.ok and "park" in mine.text and "in general" in mine.text, mine.text
    named = await bot.admin("gaps general", is_admin=False, user="U7")  # the period left out
    assert named.ok and "park" in named.text
    await bot.admin("namespace create hr")
    other = await bot.admin("gaps today hr", is_admin=False, user="U7")
    assert not other.ok
    empty = await bot.admin("gaps today hr")
    assert empty.ok and empty.text == "No unanswered questions in hr (today)."
    cleared = await bot.admin("namespace owner general")
    assert cleared.ok and not (await bot.admin("gaps", is_admin=False, user="U7")).ok


async def test_owner_prompts_and_retention_from_chat(bot) -> None:
    await bot.admin("namespace create hr")
    await bot.admin("namespace bind hr #CHR")
    kept = await bot.admin("retention set hr 30d")
    assert kept.ok and kept.text.endswith("hr are now kept 30 days."), kept.text
    assert not (await bot.admin("retention set hr forever")).ok
    assert not (await bot.admin("retention set hr 30d", is_admin=False)).ok
    prompts = await bot.admin(
        "namespace prompts hr \"How do I book leave?\" 'Who is my HR contact?'"
    )
    assert prompts.ok and prompts.text.splitlines()[1:] == [
        "• How do I book leave?",
        "• Who is my HR contact?",
    ]
    assert not (await bot.admin('namespace prompts hr "a" "b" "c" "d" "e"')).ok
    await bot.admin("namespace owner hr @U5")
    info = (await bot.admin("namespace info hr")).text.splitlines()
    assert "Owner: @U5" in info and "Conversations kept: 30 days" in info, info
    assert info[-3:] == ["Suggested prompts:", "• How do I book leave?", "• Who is my HR contact?"]
    async with bot.container.database.session() as db:
        hr = (await db.execute(select(Namespace.id).where(Namespace.name == "hr"))).scalar_one()
    assert await bot.container.knowledge.namespace_prompts(hr) == (
        "How do I book leave?",
        "Who is my HR contact?",
    )
    async with bot.container.database.session() as db:
        audit = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    for command in ("retention set", "namespace prompts", "namespace owner"):
        assert (command, "ok") in audit
    assert ("retention set", "refused") in audit

    # the retention job keeps hr's channel 30 days, the rest 90
    await bot.say("Where can guests park their cars?", channel="CHR")
    await bot.say("Where can guests park their cars?", channel="C1")
    later = utcnow() + timedelta(days=31)
    await Retention(bot.container.database, clock=lambda: later).run()
    async with bot.container.database.session() as db:
        left = (await db.execute(select(func.count()).select_from(Message))).scalar_one()
    assert left == 2  # C1's question and answer
    assert (await bot.admin("retention set hr default")).ok
    assert "Conversations kept: the default" in (await bot.admin("namespace info hr")).text


def test_grouping_joins_rewordings_and_keeps_topics_apart() -> None:
    a, b, c = [1.0, 0.0, 0.0], [0.96, 0.28, 0.0], [0.0, 0.0, 1.0]
    assert group_by_meaning(["a", "b", "c"], [a, b, c]) == [[0, 1], [2]]
    strict = GapConfig(threshold=0.5)
    assert group_by_meaning(["a", "b", "c"], [a, b, c], strict) == [[0], [1], [2]]
    assert group_by_meaning([], []) == []


def test_the_bar_rises_where_questions_crowd() -> None:
    # p and q at cosine 0.75 join alone; among five questions each at 0.85 to both, they do not
    p, q = [1.0, 0.0] + [0.0] * 5, [0.75, (1 - 0.75**2) ** 0.5] + [0.0] * 5
    toward = [0.85 / 1.75 * (x + y) for x, y in zip(p, q, strict=True)]
    rest = (1 - sum(v * v for v in toward)) ** 0.5
    crowd = [[*toward[:2], *(rest if k == i else 0.0 for k in range(5))] for i in range(5)]
    alone = Alikeness(["p", "q"], [p, q], GapConfig()).matrix
    crowded = Alikeness(["p", "q"] + ["c"] * 5, [p, q, *crowd], GapConfig()).matrix
    assert alone[0, 1] > 0 > crowded[0, 1]
    assert group_by_meaning(["p", "q"], [p, q]) == [[0, 1]]
    groups = group_by_meaning(["p", "q"] + ["c"] * 5, [p, q, *crowd])
    assert not any({0, 1} <= set(g) for g in groups), groups


async def test_chat_rewordings_group_and_different_kinds_of_answer_stay_apart(embedder) -> None:
    texts = [
        "hey team :wave: how many vacation days do we get per year? thanks!",
        "<@U04PEOPLE> how many vacation days do I get",
        "How many days of paid vacation do employees get?",
        "Where did Harold II die?",  # cosine 0.92 to the next, but a place is no person
        "Who killed Harold II?",
        "When do carried-over PTO days expire?",  # 0.74 to the next: a date, not a number
        "How many unused PTO days carry over into the next year?",
        "Where can guests park their cars?",
    ]
    assert question_text(texts[0]) == "how many vacation days do we get per year"
    assert question_text(texts[1]) == "how many vacation days do I get"
    vectors = await embedder.embed_documents([question_text(t) for t in texts])
    assert group_by_meaning(texts, vectors) == [[0, 1, 2], [3], [4], [5], [6], [7]]


def test_user_and_phrases_arguments_parse() -> None:
    owner = parse_text("namespace owner hr <@U123>")
    assert getattr(owner, "args", {}).get("user") == UserArg("U123")
    prompts = parse_text('namespace prompts hr "How do I x?" "Where\'s y"')
    assert getattr(prompts, "args", {}).get("prompts") is not None
    from core.commands.arguments import split_words

    assert split_words(str(prompts.args["prompts"])) == ["How do I x?", "Where's y"]  # type: ignore[union-attr]
