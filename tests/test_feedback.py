"""Votes on answers, on SQLite and PostgreSQL: only the answer's own workspace may vote."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import func, select

from core.db.models import Feedback, Message, Workspace
from core.errors import NotAllowed
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    yield harness
    await harness.close()


async def _count(bot: BotHarness, model: type, *where: object) -> int:
    async with bot.container.database.session() as db:
        stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await db.execute(stmt)).scalar_one())


async def test_only_the_answers_own_workspace_may_vote(bot, caplog) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    answer = await bot.say("How many days of paid vacation do employees get?")
    assert answer.message_id is not None
    async with bot.container.database.session() as db:
        question = (await db.execute(select(Message.id).where(Message.role == "user"))).scalar()
    vote = bot.container.answers.feedback
    here = {"platform": bot.platform.value, "workspace_id": bot.workspace}
    refused = [
        {**here, "workspace_id": "W2", "message_id": answer.message_id},  # another workspace
        {**here, "platform": "slack", "message_id": answer.message_id},  # same id, other platform
        {**here, "message_id": uuid.uuid4()},  # no such answer
        {**here, "message_id": question},  # a question, not an answer
    ]
    caplog.set_level(logging.WARNING, logger="core.answer")
    for where in refused:
        with pytest.raises(NotAllowed) as caught:
            await vote(**where, user_id="U2", value=1)
        assert "couldn't record that vote" in caught.value.user_message
    assert await _count(bot, Feedback) == 0
    assert await _count(bot, Workspace, Workspace.external_id == "W2") == 0  # nothing created
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == len(refused)
    assert await vote(**here, message_id=answer.message_id, user_id="U2", value=-1) == (0, 1)
    assert await _count(bot, Feedback) == 1
