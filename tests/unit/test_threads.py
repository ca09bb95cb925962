"""A thread as a Markdown document."""

from __future__ import annotations

from datetime import UTC, datetime

from core.threads import TITLE_CHARS, ThreadPost, render_thread

AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def test_posts_become_authored_timed_lines_under_the_first_message() -> None:
    saved = render_thread(
        [
            ThreadPost("Ana", AT, "Where do we park bikes?\nAsking for the team."),
            ThreadPost("**Bo**", AT.replace(minute=5), "Basement rack."),
            ThreadPost("Cy", AT, "   "),
        ]
    )
    assert saved.title == "Where do we park bikes?"
    assert saved.filename == "Where do we park bikes.md"
    assert saved.markdown.splitlines()[:5] == [
        "# Where do we park bikes?",
        "",
        "**Ana** (2026-12-06 10:00): Where do we park bikes?",
        "Asking for the team.",
        "",
    ]
    assert "**Bo** (2026-12-06 10:05): Basement rack." in saved.markdown
    assert "Cy" not in saved.markdown


def test_long_or_hostile_first_lines_make_a_short_safe_title() -> None:
    saved = render_thread([ThreadPost("Ana", AT, "## ../../" + "x" * 200)])
    assert len(saved.title) == TITLE_CHARS and saved.title.endswith("…")
    assert "/" not in saved.filename and saved.filename.endswith(".md")
    assert render_thread([]).title == "Saved thread"
