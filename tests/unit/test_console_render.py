"""Nothing from a document drives the terminal: control characters never reach it."""

from __future__ import annotations

import asyncio
import io
import re
import uuid

from adapters.console.chat import ConsoleReply, styling
from adapters.console.render import render_answer
from core.types import Answer, Citation, Progress

HOSTILE = "Reset\x1b[2J your \x1b]0;pwned\x07password\x9b31m now.\tTabs\nand lines stay."


def test_answers_footnotes_and_progress_carry_no_control_characters() -> None:
    citation = Citation(1, uuid.uuid4(), uuid.uuid4(), "evil\x1b[31m.md", HOSTILE)
    shown = render_answer(Answer(text=HOSTILE, citations=(citation,), mode="extractive"))
    out = io.StringIO()
    reply = ConsoleReply(out)
    asyncio.run(reply.stream(HOSTILE))
    asyncio.run(reply.progress(Progress("reading", 0.0, "evil\x1b[31m.md")))
    for text in (shown, out.getvalue()):
        assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)
    assert "Reset[2J your ]0;pwnedpassword31m now.\tTabs\nand lines stay." in shown
    assert "evil[31m.md" in shown


def _answer(text: str) -> Answer:
    return Answer(text=text, citations=(), mode="extractive")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_terminal_gets_the_markdown_drawn_and_wrapped_at_words() -> None:
    text = (
        "**Vacation** is `25 days` per year; see [the portal](https://hr.example/leave) and ask "
        "your manager well ahead of the first day you plan to take off. [1]\n\n"
        "- one list item\n- another [2]"
    )
    shown = render_answer(_answer(text), styled=True, width=40)
    plain = _ANSI.sub("", shown)
    assert "\x1b[1m" in shown or "\x1b[1;" in shown  # bold is drawn, not written
    assert "**" not in plain and "`" not in plain
    assert "the portal (https://hr.example/leave)" in " ".join(plain.split())  # URL visible
    assert "• one list item" in plain
    lines = plain.splitlines()
    assert all(len(line) <= 40 for line in lines)
    tokens = {w for line in lines for w in line.split()}
    for word in ("Vacation", "manager", "ahead", "first", "another"):  # none cut in two
        assert word in tokens, (word, lines)
    assert "[1]" in plain and "[2]" in plain  # the markers the footnotes number


def test_plain_output_keeps_the_text_as_written() -> None:
    text = "**Vacation** is `25 days` per year. [1]"
    assert render_answer(_answer(text)) == text
    assert "\x1b" not in render_answer(_answer(text))


def test_a_document_cannot_drive_the_terminal_through_the_styled_path() -> None:
    shown = render_answer(_answer("Reset \x1b]0;owned\x07 your password \x1b[2J now."), styled=True)
    assert "\x1b]" not in shown and "\x1b[2J" not in shown
    assert "Reset" in _ANSI.sub("", shown)


def test_only_a_terminal_is_styled() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert styling(io.StringIO()) == {"styled": False}  # a pipe or a file: plain text
    shown = styling(Terminal())
    assert shown["styled"] is True and 20 <= shown["width"] <= 100
