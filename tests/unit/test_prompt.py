"""Prompt building: numbering, the token budget, and follow-up condensing."""

from __future__ import annotations

from core.generation.base import ChatMessage
from core.generation.prompt import (
    NO_ANSWER,
    Source,
    build_messages,
    condense_heuristic,
    condense_messages,
    estimate_tokens,
)


def source(n: int, text: str, *, title: str = "Doc", start: int | None = 0) -> Source:
    end = None if start is None else start + len(text)
    return Source(n, f"c{n}", f"d{n}", title, text, None, start, end, 1.0 / n)


def test_sources_are_numbered_and_rules_are_stated() -> None:
    sources = [source(4, "Alpha text.", title="A"), source(9, "Beta text.", title="B")]
    messages, included = build_messages("Why alpha?", sources)
    assert [m.role for m in messages] == ["system", "user"]
    system, user = messages[0].content, messages[1].content
    assert "[1]" in system and NO_ANSWER in system
    assert "[1] A\nAlpha text." in user
    assert "[2] B\nBeta text." in user
    assert user.index("[1] A") < user.index("[2] B") < user.index("Question: Why alpha?")
    assert [s.n for s in included] == [1, 2]
    assert [s.chunk_id for s in included] == ["c4", "c9"]


def test_source_url_is_shown() -> None:
    with_url = Source(1, "c", "d", "Wiki", "Text.", "https://wiki.test/page", None, None, 0.5)
    messages, _ = build_messages("q", [with_url])
    assert "[1] Wiki <https://wiki.test/page>" in messages[-1].content


def test_history_sits_between_system_and_question() -> None:
    history = [
        ChatMessage("user", "What is alpha?"),
        ChatMessage("assistant", "Alpha is a letter [1]."),
        ChatMessage("system", "ignored: only user/assistant turns are replayed"),
    ]
    messages, _ = build_messages("And beta?", [source(1, "Beta.")], history=history)
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "What is alpha?"
    assert messages[-1].content.endswith("Question: And beta?")


def test_custom_system_prompt_keeps_the_citation_rules() -> None:
    messages, _ = build_messages("q", [source(1, "x")], system_prompt="You help the HR team.")
    system = messages[0].content
    assert system.startswith("You help the HR team.")
    assert "Lorekeeper" not in system
    assert NO_ANSWER in system and "square brackets" in system


def test_lowest_ranked_sources_are_dropped_first() -> None:
    sources = [source(i, f"Source number {i}. " + "word " * 200) for i in range(1, 6)]
    _, included = build_messages("q", sources, context_tokens=700)  # ~2.7 of ~1000 chars
    assert [s.chunk_id for s in included] == ["c1", "c2", "c3"]
    assert included[1].text == sources[1].text
    assert included[2].text.endswith("…")  # the last one kept is cut to fit
    total = sum(estimate_tokens(s.text) for s in included)
    assert total <= 700


def test_the_last_source_is_truncated_to_the_budget() -> None:
    first = source(1, "First. " * 40)  # 280 chars, 70 tokens
    second = source(2, "Second sentence here. " * 100, start=1000)  # 2200 chars
    messages, included = build_messages("q", [first, second], context_tokens=300)
    assert len(included) == 2
    cut = included[1]
    assert cut.text.endswith(" …")
    assert len(cut.text) < len(second.text)
    assert cut.end == 1000 + len(cut.text) - 2
    assert second.text.startswith(cut.text[:-2])
    block = messages[-1].content.split("Question:")[0]
    assert estimate_tokens(block) <= 300 + 10


def test_a_small_remainder_is_not_worth_a_fragment() -> None:
    first = source(1, "a" * 1100)
    second = source(2, "b" * 2000)
    _, included = build_messages("q", [first, second], context_tokens=300)
    assert [s.chunk_id for s in included] == ["c1"]


def test_one_source_is_always_kept_even_if_too_long() -> None:
    _, included = build_messages("q", [source(1, "word " * 5000)], context_tokens=100)
    assert len(included) == 1
    assert estimate_tokens(included[0].text) <= 100


def test_no_sources_still_asks() -> None:
    messages, included = build_messages("Anything?", [])
    assert included == ()
    assert "(no sources were found)" in messages[-1].content


def test_condense_messages_asks_for_a_standalone_question() -> None:
    history = [
        ChatMessage("user", "How do I rotate the API keys?"),
        ChatMessage("assistant", "Open the console and press Rotate [1][2]." + " more" * 300),
    ]
    messages = condense_messages(history, "and how often should we do it?")
    assert [m.role for m in messages] == ["system", "user"]
    assert "standalone" in messages[0].content
    user = messages[1].content
    assert "User: How do I rotate the API keys?" in user
    assert "[1]" not in user
    assert "Follow-up question: and how often should we do it?" in user
    assert len(user) < 1000


def test_heuristic_appends_previous_terms_for_pronouns() -> None:
    query = condense_heuristic(
        ["How do I rotate the Stripe API keys?"], "How often should we do it?"
    )
    assert query.startswith("How often should we do it?")
    for term in ("rotate", "Stripe", "API", "keys"):
        assert term in query


def test_heuristic_appends_for_short_fragments() -> None:
    query = condense_heuristic(["What is the vacation policy in Germany?"], "And in France?")
    assert query == "And in France? vacation policy Germany"


def test_heuristic_leaves_standalone_questions_alone() -> None:
    follow_up = "Which database does the billing service use in production today?"
    assert condense_heuristic(["How do I deploy?"], follow_up) == follow_up


def test_heuristic_without_history_returns_the_follow_up() -> None:
    assert condense_heuristic([], "  What about it?  ") == "What about it?"


def test_heuristic_uses_the_most_recent_question_with_new_terms() -> None:
    query = condense_heuristic(
        ["Who maintains the billing service?", "Tell me about it"], "When was that?"
    )
    assert query == "When was that? Tell maintains billing service"
