"""Rendering for Discord: the 2,000-character split, the Sources embed, the buttons."""

from __future__ import annotations

import re
import uuid

from adapters.discord.render import (
    FEEDBACK_TEMPLATE,
    LIMIT,
    SHARE_TEMPLATE,
    answer_body,
    feedback_view,
    from_short_id,
    plain,
    preview,
    progress_line,
    render_answer,
    render_text,
    share_view,
    source_line,
    sources_embed,
    split_content,
    unmask,
)
from core.types import Answer, Citation, Progress


def citation(n: int, *, title: str = "handbook.md", url: str | None = "https://x/h") -> Citation:
    return Citation(n, uuid.uuid4(), uuid.uuid4(), title, "Employees receive 25 days " * 20, url)


def test_short_text_is_one_piece() -> None:
    assert split_content("Hello there.") == ["Hello there."]
    assert split_content("   ") == []


def test_split_prefers_paragraphs() -> None:
    first, second = "a" * 1500, "b" * 1500
    assert split_content(f"{first}\n\n{second}") == [first, second]


def test_split_packs_small_paragraphs_together() -> None:
    paragraphs = [f"Paragraph {i}. " + "x" * 300 for i in range(12)]
    pieces = split_content("\n\n".join(paragraphs))
    assert all(len(p) <= LIMIT for p in pieces)
    assert "\n\n".join(pieces) == "\n\n".join(paragraphs)
    assert [p.count("Paragraph") for p in pieces] == [6, 6]  # 6 x 314 characters fit in one


def test_long_paragraph_is_cut_at_sentences() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(100)]
    pieces = split_content(" ".join(sentences))
    assert len(pieces) > 1 and all(len(p) <= LIMIT for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == " ".join(sentences)


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    pieces = split_content("start " + "y" * 4500 + " end")
    assert all(len(p) <= LIMIT for p in pieces)
    assert "".join(pieces).replace(" ", "") == "start" + "y" * 4500 + "end"


def test_sources_embed_numbers_links_and_shortens_quotes() -> None:
    embed = sources_embed([citation(1), citation(2, title="faq_2024.md", url=None)])
    assert embed is not None and embed.title == "Sources"
    lines = embed.description.splitlines()
    assert lines[0] == "**1.** [handbook.md](https://x/h)"
    assert lines[1].startswith("> Employees receive 25 days") and lines[1].endswith("…")
    assert len(lines[1]) <= 160
    assert lines[2] == r"**2.** faq\_2024.md"
    assert sources_embed([]) is None


def test_sources_embed_stays_within_discord_limit() -> None:
    embed = sources_embed([citation(n, title="t" * 250) for n in range(1, 40)])
    assert embed is not None and len(embed.description) <= 4096


async def test_answer_gets_embed_and_buttons_on_its_last_piece() -> None:
    mid = uuid.uuid4()
    answer = Answer("word " * 900, citations=(citation(1),), message_id=mid)
    pieces = render_answer(answer)
    assert len(pieces) == 3
    assert [bool(p.embeds) for p in pieces] == [False, False, True]
    assert [p.feedback_for for p in pieces] == [None, None, mid]


async def test_abstained_answer_has_no_buttons() -> None:
    answer = Answer(
        "I couldn't find that.",
        abstained=True,
        mode="abstain",
        grounded=False,
        message_id=uuid.uuid4(),
    )
    [piece] = render_answer(answer)
    assert piece.feedback_for is None and not piece.embeds
    assert "not grounded" not in piece.content


def test_notice_warning_and_extractive_label() -> None:
    outage = Answer(
        "quoted",
        citations=(citation(1),),
        mode="extractive",
        notice="The language model is unavailable.",
    )
    body = answer_body(outage)
    assert "The language model is unavailable." in body and "Quoted from the sources" in body
    ungrounded = answer_body(Answer("made up", grounded=False, mode="llm"))
    assert "not grounded in the sources" in ungrounded


async def test_feedback_buttons_carry_the_message_id() -> None:
    mid = uuid.uuid4()
    view = feedback_view(mid, up=3, down=1)
    rows = view.to_components()
    buttons = rows[0]["components"]
    assert [b["custom_id"] for b in buttons] == [f"lore:fb:up:{mid}", f"lore:fb:down:{mid}"]
    assert [b["label"] for b in buttons] == ["👍 3", "👎 1"]
    assert all(re.fullmatch(FEEDBACK_TEMPLATE, b["custom_id"]) for b in buttons)
    assert view.timeout is None and view.is_persistent()


async def test_share_buttons_fit_discords_custom_id_limit() -> None:
    doc = uuid.uuid4()
    longest = "n" * 64  # the longest namespace name core accepts
    names = ["general", longest, "hr", "a", "b", "c"]
    view = share_view(doc, [*names[:2], "Not A Name", *names[2:]])
    assert view is not None and view.timeout is None and view.is_persistent()
    buttons = [b for row in view.to_components() for b in row["components"]]
    assert [b["label"] for b in buttons] == [f"Share with {n}" for n in names[:5]]
    for button in buttons:
        match = re.fullmatch(SHARE_TEMPLATE, button["custom_id"])
        assert match and len(button["custom_id"]) <= 100 and len(button["label"]) <= 80
        assert from_short_id(match["doc"]) == doc
    assert share_view(doc, []) is None and share_view(None, ["general"]) is None


def test_masked_links_from_outside_text_show_their_url() -> None:
    assert unmask("see [the IT portal](https://it.example.com).") == (
        "see the IT portal (<https://it.example.com>)."
    )
    assert unmask("[[x](https://a.example)](https://b.example)") == (
        "x (<https://a.example>) (<https://b.example>)"
    )
    assert unmask("[a](https://x.example/(y))") == r"\[a](https://x.example/(y))"
    assert unmask("cited [1][2] and [1](see below)") == "cited [1][2] and [1](see below)"
    text = "Use [the portal](https://it.example.com) @everyone"
    body = answer_body(Answer(text, notice="[n](https://n.example)"))
    assert "](" not in body and "the portal (<https://it.example.com>) @everyone" in body
    assert render_text("`1` [t](https://e.example) (hr)")[0].content == (
        "`1` t (<https://e.example>) (hr)"
    )
    assert "](" not in preview("so far [x](https://e.example)")


def test_file_names_lose_links_and_markdown() -> None:
    name = "<!channel> [x](https://evil.example) **big**_v2.md"
    line = progress_line(name, Progress("reading", 0.5, name))
    assert line == (
        r"📄 <!channel> x (<https://evil.example>) \*\*big\*\*\_v2.md: reading 50% "
        r"(<!channel> x (<https://evil.example>) \*\*big\*\*\_v2.md)"
    )
    assert plain("I can't index a_b.md: it is empty.") == r"I can't index a\_b.md: it is empty."


def test_our_source_link_cannot_be_broken_open() -> None:
    evil = Citation(
        1,
        uuid.uuid4(),
        uuid.uuid4(),
        "a] [t](https://evil.example)",
        "go to [the portal](https://it.example.com)",
        "https://wiki.example/a)b (c)<d>",
    )
    head, quote = source_line(evil).split("\n")
    assert head == (
        r"**1.** [a\] t (<https://evil.example>)](https://wiki.example/a%29b%20%28c%29%3Cd%3E)"
    )
    assert quote == "> go to the portal (<https://it.example.com>)"
    assert source_line(citation(2, url="javascript:alert(1)")).startswith("**2.** handbook.md")


def test_preview_stays_within_one_message() -> None:
    assert preview("short") == "short ▌"
    assert len(preview("z" * 5000)) == LIMIT
