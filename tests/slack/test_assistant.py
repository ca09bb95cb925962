"""Lorekeeper in Slack's assistant panel: the events Slack documents for AI apps, signed and
POSTed to the real bolt app, answered through the real core against the fake Slack server.

A public channel C1 reads the namespace ``team`` (the handbook); the private channel C9 holds
its own file (the reorg plan). The panel answers from what the channel its user is viewing
reads, under the same rules as everywhere else."""

from __future__ import annotations

import pytest

from adapters.slack.assistant import CONTEXT_EVENT, GREETING, PanelReply, prompts, viewed_channel
from tests.scenarios.driver import Thread
from tests.scenarios.suite import HANDBOOK, SECRET, SECRET_QUESTION
from tests.slack.driver import SlackDriver, bot_message

VACATION = "How many days of paid vacation do employees get?"


async def knowledge(bot: SlackDriver) -> None:
    """``team`` bound to the public C1 with the handbook in it; C9's own file is private."""
    await bot.make_private("C9")
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", channel="C1", admin=True)
    await bot.upload("handbook.md", HANDBOOK, channel="C1")
    await bot.upload("reorg.md", SECRET, channel="C9", user="U2")


async def open_panel(bot: SlackDriver, *, user: str = "U2", viewing: str | None) -> Thread:
    event = bot.slack.start_assistant_thread(user, viewing=viewing)
    assert await bot.send_event(event) == 200
    await bot.bot.idle()
    started = event["assistant_thread"]
    return Thread(started["channel_id"], started["thread_ts"])


async def view(bot: SlackDriver, thread: Thread, channel: str) -> None:
    event = bot.slack.context_changed(thread.channel, thread.thread, viewing=channel)
    assert await bot.send_event(event) == 200
    await bot.bot.idle()


async def ask(bot: SlackDriver, thread: Thread, text: str, *, user: str = "U2") -> dict:
    event = bot.slack.people_say(thread.channel, thread.thread, text, user=user)
    assert await bot.send_event(event) == 200
    await bot.bot.idle()
    return bot.slack.thread(thread.channel, thread.thread)[-1]


@pytest.fixture
async def panel(sqlite_slack) -> SlackDriver:
    await knowledge(sqlite_slack)
    return sqlite_slack


async def test_a_new_thread_is_greeted_with_prompts_from_what_its_user_may_read(panel) -> None:
    # beside C1: what C1 reads; beside nothing: a DM's public knowledge; beside the private
    # C9 (only its members see it): its own file (it reads no namespace with documents)
    expected = {
        "C1": ["Summarise handbook.md"],
        None: ["Summarise handbook.md"],
        "C9": ["Summarise reorg.md"],
    }
    for viewing, wanted in expected.items():
        thread = await open_panel(panel, viewing=viewing)
        greeting = panel.slack.thread(thread.channel, thread.thread)[0]
        assert greeting["text"] == GREETING
        assert greeting["metadata"]["event_type"] == CONTEXT_EVENT
        shown = panel.slack.assistant[(thread.channel, thread.thread)]
        assert [p["message"] for p in shown.prompts] == wanted, viewing
        assert shown.prompts[0]["title"] and shown.prompts_title


async def test_a_retried_start_is_greeted_once(panel) -> None:
    event = panel.slack.start_assistant_thread("U2", viewing="C1")
    event_id = "Ev0RETRIED1"
    assert await panel.send_event(event, event_id=event_id) == 200
    await panel.bot.idle()
    assert await panel.send_event(event, event_id=event_id, retry=1) == 200
    await panel.bot.idle()
    started = event["assistant_thread"]
    assert len(panel.slack.thread(started["channel_id"], started["thread_ts"])) == 1


async def test_a_suggested_prompt_is_answered_with_sources_and_a_status(panel) -> None:
    said = await panel.command(f'namespace prompts team "{VACATION}"', admin=True)
    assert VACATION in said
    thread = await open_panel(panel, viewing="C1")
    shown = panel.slack.assistant[(thread.channel, thread.thread)]
    assert [p["message"] for p in shown.prompts] == [VACATION]  # the admin's, not the titles
    answer = bot_message(await ask(panel, thread, shown.prompts[0]["message"]))
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]
    assert answer.has_feedback_buttons
    assert shown.statuses[0] == "is searching team…"
    assert "is writing…" in shown.statuses
    assert shown.titles == [VACATION]
    follow_up = bot_message(await ask(panel, thread, "And when do unused days expire?"))
    assert "March 31" in follow_up.text and follow_up.sources
    assert shown.titles == [VACATION]  # titled from the first question only
    assert all(status == 200 for status in panel.statuses)


async def test_the_viewed_private_channel_answers_and_a_public_one_does_not(panel) -> None:
    thread = await open_panel(panel, viewing="C1")
    outside = bot_message(await ask(panel, thread, SECRET_QUESTION))
    assert "February 3" not in outside.text and not outside.sources
    await view(panel, thread, "C9")
    greeting = panel.slack.thread(thread.channel, thread.thread)[0]
    assert greeting["metadata"]["event_payload"]["channel_id"] == "C9"
    inside = bot_message(await ask(panel, thread, SECRET_QUESTION))
    assert "February 3" in inside.text and "reorg.md" in inside.sources[0]
    await view(panel, thread, "C2")
    again = bot_message(await ask(panel, thread, SECRET_QUESTION))
    assert "February 3" not in again.text and not again.sources


async def test_a_thread_without_a_channel_reads_as_a_dm(panel) -> None:
    thread = await open_panel(panel, viewing=None)
    public = bot_message(await ask(panel, thread, VACATION))
    assert "25 days" in public.text and public.sources
    private = bot_message(await ask(panel, thread, SECRET_QUESTION))
    assert "February 3" not in private.text and not private.sources


async def test_an_ordinary_dm_thread_is_answered_the_ordinary_way(panel) -> None:
    dm = await panel.dm(VACATION, user="U3")
    before = len(panel.slack.calls)
    reply = bot_message(await ask(panel, dm, "And when do unused days expire?", user="U3"))
    assert "March 31" in reply.text and reply.sources
    # no title, no prompts, no panel status line: only the answer's own loading status
    assistant = [c for c in panel.slack.calls[before:] if c.method.startswith("assistant.")]
    assert {c.method for c in assistant} <= {"assistant.threads.setStatus"}
    assert all(c.params["status"].startswith("is searching") for c in assistant)


def test_only_a_channel_of_this_workspace_is_read_beside() -> None:
    assert viewed_channel({"channel_id": "C1", "team_id": "T1"}, team_id="T1") == "C1"
    assert viewed_channel({"channel_id": "C1", "team_id": "T2"}, team_id="T1") is None
    assert viewed_channel({"channel_id": "D1", "team_id": "T1"}, team_id="T1") is None
    assert viewed_channel({}, team_id="T1") is None
    assert viewed_channel(None, team_id="T1") is None


def test_prompts_from_document_titles_are_inert_and_short() -> None:
    shown = prompts(["Summarise <!channel> @here " + "x" * 300, "a", "b", "c", "d"])
    assert len(shown) == 4
    first = shown[0]
    assert "<" not in first["message"] and "@here" not in first["message"]
    assert len(first["title"]) <= 40 and len(first["message"]) <= 200


class _Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def thinking(self, namespaces) -> None:
        self.calls.append(("thinking", tuple(namespaces)))

    async def stream(self, text) -> None:
        self.calls.append(("stream", text))

    async def discard(self) -> None:
        self.calls.append(("discard", None))


async def test_a_refused_status_falls_back_to_the_placeholder() -> None:
    statuses: list[str] = []

    async def refused(text: str) -> bool:
        statuses.append(text)
        return False

    inner = _Recorded()
    reply = PanelReply(inner, refused)  # type: ignore[arg-type]
    await reply.thinking(["team"])
    await reply.stream("Employees ")
    await reply.stream("Employees receive")
    await reply.discard()
    assert statuses == ["is searching team…", "is writing…", ""]
    assert inner.calls[0] == ("thinking", ("team",))
