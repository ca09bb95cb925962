"""Pure functions of the Slack adapter: rendering, splitting, payload translation."""

from __future__ import annotations

import uuid

from adapters.slack import events, render
from core.admin import CommandResult
from core.commands import Invocation
from core.commands.rich import (
    ChannelRef,
    Code,
    Preformatted,
    RichText,
    Strong,
    UserRef,
    line,
    verbatim,
)
from core.types import Answer, Citation, Platform, Progress


def citation(n: int, *, url: str | None = "https://wiki.example/doc", quote: str = "q") -> Citation:
    return Citation(n, uuid.uuid4(), uuid.uuid4(), f"Doc <{n}> & co", quote, source_url=url)


def answer(text: str, n_sources: int = 2, **kw) -> Answer:
    return Answer(
        text=text,
        citations=tuple(citation(i + 1) for i in range(n_sources)),
        message_id=uuid.uuid4(),
        **kw,
    )


def all_blocks(messages: list[render.SlackMessage]) -> list[dict]:
    return [b for m in messages for b in m.blocks]


def test_markdown_becomes_mrkdwn() -> None:
    md = (
        "## Steps\n**Bold** and *italic* and __strong__ ~~gone~~ `a*b*c` "
        "[the wiki](https://x.example/a?b=1&c=2) 1 < 2\n- one\n* two\n```python\nx = a**2 < b\n```"
    )
    assert render.to_mrkdwn(md).split("\n") == [
        "*Steps*",
        "*Bold* and _italic_ and *strong* ~gone~ `a*b*c` "
        "the wiki (https://x.example/a?b=1&amp;c=2) 1 &lt; 2",
        "• one",
        "• two",
        "```",
        "x = a**2 &lt; b",
        "```",
    ]


def test_outside_text_cannot_ping_or_link() -> None:
    md = (
        "See [the IT portal](https://it.example.com/__init__) <!channel> <!here|here> "
        "<@U123> <!subteam^S1> <https://evil.example|click> @here @Everyone `@channel`"
    )
    shown = render.to_mrkdwn(md)
    assert shown.startswith("See the IT portal (https://it.example.com/__init__) &lt;!channel&gt;")
    assert "&lt;@U123&gt;" in shown and "&lt;https://evil.example|click&gt;" in shown
    assert "<" not in shown and ">" not in shown
    assert "@\u200dhere @\u200dEveryone `@\u200dchannel`" in shown
    assert render.plain("a <b> & @channel") == "a &lt;b&gt; &amp; @\u200dchannel"
    outcome = render.notice("Indexed <!channel> [x](https://evil.example).md into general.")
    assert outcome.text == "Indexed &lt;!channel&gt; [x](https://evil.example).md into general."
    assert outcome.blocks[0]["text"]["text"] == outcome.text
    progress = render.progress_text("<@U1>.md", Progress("reading", 0.5, "@everyone"))
    assert progress == "_Indexing &lt;@U1&gt;.md: reading 50% (@\u200deveryone)_"


def test_our_source_link_cannot_be_broken_open() -> None:
    evil = Citation(
        1,
        uuid.uuid4(),
        uuid.uuid4(),
        "a|b> <!here> [t](https://evil.example)",
        "go to [the portal](https://it.example.com) @here",
        source_url="https://wiki.example/x|y>z <w",
    )
    line = render.source_line(evil)
    head, quote = line.split("\n")
    assert head == (
        "*[1]* <https://wiki.example/x%7Cy%3Ez%3Cw|a¦b&gt; &lt;!here&gt; [t](https://evil.example)>"
    )
    assert quote == ">go to the portal (https://it.example.com) @\u200dhere"
    assert (
        render.source_line(
            Citation(2, uuid.uuid4(), uuid.uuid4(), "t", "", source_url="javascript:alert(1)")
        )
        == "*[2]* *t*"
    )


def test_command_results_keep_only_core_markup() -> None:
    outside = "*hr*: <!channel> <@U1> <#C1|x> <https://e.x|y> @here `x`"
    result = CommandResult(
        RichText(
            (
                line(ChannelRef("C0ABC12", "general"), " now searches ", Strong("hr"), "."),
                line("• ", Strong("hr"), f": {outside}"),
                line(
                    ChannelRef("not-an-id", "lost"),
                    " ",
                    Code("/lore a`b"),
                    " ",
                    UserRef("U061F7AUR"),
                ),
            )
        )
    )
    shown = render.command_response(result)
    text = shown.blocks[0]["text"]["text"]
    assert text.startswith("<#C0ABC12> now searches *hr*.")
    assert (
        "*hr*: &lt;!channel&gt; &lt;@U1&gt; &lt;#C1|x&gt; &lt;https://e.x|y&gt; @\u200dhere `x`"
        in text
    )
    assert text.endswith("#lost `/lore a'b` <@U061F7AUR>")
    assert shown.text == text and "<!" not in shown.text


def test_a_usage_table_stays_one_code_block() -> None:
    table = "user  tokens\n<@U1>  10\n```oops"
    shown = render.mrkdwn(RichText((line("Usage 7d by user:"), Preformatted(table))))
    assert shown.startswith("Usage 7d by user:\n```\nuser  tokens\n&lt;@U1&gt;  10\n")
    assert shown.endswith("\n```") and shown.count("```") == 2


def test_sources_are_numbered_title_links_with_short_quotes() -> None:
    c = citation(3, quote="word " * 200)
    line = render.source_line(c)
    assert line.startswith("*[3]* <https://wiki.example/doc|Doc &lt;3&gt; &amp; co>\n>")
    assert len(line) < 300 and line.endswith("…")
    assert render.source_line(citation(1, url=None)).startswith("*[1]* *Doc")


def test_short_answer_is_one_message_with_sources_then_buttons() -> None:
    a = answer("Yes [1][2].")
    [message] = render.answer_messages(a)
    kinds = [b.get("block_id", b["type"]) for b in message.blocks]
    assert kinds == [
        "section",
        "divider",
        "lore_sources",
        "lore_source_1",
        "lore_source_2",
        "lore_feedback",
    ]
    buttons = message.blocks[-1]["elements"]
    assert {b["value"] for b in buttons} == {str(a.message_id)}
    assert [b["action_id"] for b in buttons] == ["lore_feedback_up", "lore_feedback_down"]


def test_long_answer_is_split_without_losing_sources_or_buttons() -> None:
    paragraph = ("The quick brown fox jumps over the lazy dog. " * 20).strip()
    text = "\n\n".join(f"{i}. {paragraph}" for i in range(200))  # ~180k characters
    a = answer(text, n_sources=12)
    messages = render.answer_messages(a)
    assert len(messages) > 1
    for m in messages:
        assert len(m.blocks) <= render.BLOCK_LIMIT
        assert all(len(b["text"]["text"]) <= 3000 for b in m.blocks if b["type"] == "section")
    blocks = all_blocks(messages)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "block_id" not in b]
    assert "".join(sections).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )
    ids = [b.get("block_id") for b in blocks]
    assert [i for i in ids if i and i.startswith("lore_source_")] == [
        f"lore_source_{n}" for n in range(1, 13)
    ]
    assert messages[-1].blocks[-1]["block_id"] == "lore_feedback"
    assert ids.count("lore_feedback") == 1


def test_split_keeps_code_blocks_closed() -> None:
    code = "```\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(100)) + "\n```"
    pieces = render.split_text(code, limit=1000)
    assert len(pieces) > 5
    assert all(p.count("```") % 2 == 0 and len(p) <= 1000 for p in pieces)


def test_notices_warnings_and_labels() -> None:
    shown = all_blocks(render.answer_messages(answer("Maybe.", n_sources=0, grounded=False)))
    assert render.NOT_GROUNDED in str(shown)
    quoted = render.answer_messages(answer("Quote [1].", mode="extractive", notice="LLM down."))
    text = str(quoted[0].blocks)
    assert render.EXTRACTIVE in text and "LLM down." in text
    abstained = Answer("I couldn't find that.", abstained=True, grounded=False, mode="abstain")
    assert render.NOT_GROUNDED not in str(render.answer_messages(abstained))


def test_feedback_counts_replace_previous_counts() -> None:
    blocks = render.answer_messages(answer("Yes [1]."))[0].blocks
    once = render.with_feedback_counts(blocks, 1, 0)
    twice = render.with_feedback_counts(once, 2, 1)
    counts = [b for b in twice if b.get("block_id") == render.COUNTS_BLOCK]
    assert len(counts) == 1 and counts[0]["elements"][0]["text"] == "👍 2 · 👎 1"
    at = [b.get("block_id") for b in twice].index(render.FEEDBACK_BLOCK)
    assert twice[at + 1] is counts[0]


def test_command_response_keeps_sources_of_a_private_answer() -> None:
    a = answer("Yes [1].", n_sources=1)
    shown = render.command_response(CommandResult(verbatim("Yes [1]."), answer=a))
    assert any(b.get("block_id") == "lore_source_1" for b in shown.blocks)
    assert not any(b["type"] == "actions" for b in shown.blocks)


def test_mention_event_becomes_incoming_message() -> None:
    event = {
        "type": "app_mention",
        "user": "U061F7AUR",
        "text": "<@U0LAN0Z89> is it everything <@U999|bob> expected?",
        "ts": "1515449522.000016",
        "channel": "C0LAN2Q65",
        "event_ts": "1515449522000016",
    }
    message = events.message_from_event(event, team_id="T1", bot_user_id="U0LAN0Z89")
    assert message.platform is Platform.SLACK
    assert message.text == "is it everything <@U999|bob> expected?"
    assert message.thread_id == "1515449522.000016"  # top level: the answer threads under it
    assert message.event_id == "T1:C0LAN2Q65:1515449522.000016"
    reply = dict(event, thread_ts="1515449000.000001", ts="1515449600.000002")
    assert events.message_from_event(reply, team_id="T1", bot_user_id=None).thread_id == (
        "1515449000.000001"
    )


def test_files_stubs_commands_and_clicks() -> None:
    stub, full = events.files_of(
        {
            "files": [
                {"id": "F1", "file_access": "check_file_info", "mode": "file_access"},
                {
                    "id": "F2",
                    "name": "a.pdf",
                    "size": 10,
                    "mimetype": "application/pdf",
                    "url_private_download": "https://files.slack.com/F2/download/a.pdf",
                    "permalink": "https://x.slack.com/files/U1/F2/a.pdf",
                },
            ]
        }
    )
    assert stub.stub and not full.stub
    assert full.incoming().url == "https://x.slack.com/files/U1/F2/a.pdf"
    cmd = events.command_from_payload(
        {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": "quota show"},
        is_admin=True,
    )
    assert (cmd.workspace_id, cmd.is_platform_admin) == ("T1", True)
    assert isinstance(cmd.request, Invocation) and cmd.request.command.path == ("quota", "show")
    mid = uuid.uuid4()
    click = events.feedback_from_action(
        {
            "user": {"id": "U2"},
            "team": {"id": "T1"},
            "channel": {"id": "C1"},
            "message": {"ts": "1.2"},
            "actions": [{"action_id": "lore_feedback_down", "value": str(mid)}],
        }
    )
    assert click == events.FeedbackClick("T1", "U2", "C1", "1.2", mid, -1)
    assert events.is_ignored(
        {"user": "U1", "subtype": "message_changed"}, bot_user_id="UB", bot_id=None
    )
    assert events.is_ignored({"user": "UB", "text": "hi"}, bot_user_id="UB", bot_id=None)
    assert not events.is_ignored({"user": "U1", "text": "hi"}, bot_user_id="UB", bot_id=None)
